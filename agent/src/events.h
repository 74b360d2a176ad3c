// The catalogue of log events: every event loyaltyd writes, with its level and fields and
// what store IT should do about it. docs/operations.md lists the same table (a test keeps
// them equal); LogEvent() flags a name that is not here.
#pragma once

#include <string_view>

#include "loyalty/base/event_catalogue.h"

namespace loyalty::agent {

using loyalty::EventInfo;

inline constexpr EventInfo kEventCatalogue[] = {
    {"agent_started", "info", "version, terminal_id, store_id, listen, entries, rules_version",
     "-"},
    {"agent_stopping", "info", "signal", "-"},
    {"agent_stopped", "info", "", "-"},
    {"agent_crashed", "critical", "message",
     "systemd restarts the service; send the journal around it to support"},
    {"api_listen_failed", "critical", "listen, message",
     "another process holds the port, or the address is wrong: check api.listen"},
    {"config_warning", "warn", "message",
     "read the message; the configuration works but is unusual (e.g. plain HTTP to HQ)"},
    {"config_reloaded", "info", "rules_version, log_level", "-"},
    {"config_reload_failed", "error", "message",
     "fix the file named in the message and send SIGHUP again; the old configuration stays in "
     "force"},
    {"clock_untrusted", "warn", "wall_clock, trusted_time",
     "the terminal's clock is off by more than codes.clock_skew_s: fix NTP; codes are judged by "
     "HQ's time meanwhile"},
    {"clock_trusted", "info", "wall_clock", "-"},
    {"ledger_migrating", "info", "database, from, to",
     "- (the first start of a new version upgrades the ledger in one transaction each step; a "
     "large ledger takes a while, and the start timeout is extended for it)"},
    {"ledger_damaged", "critical", "database, reason",
     "SQLite reports the ledger file damaged (a bad disk sector, a file changed behind the agent), "
     "at start-up or later; the agent runs on degraded: commits and refunds are refused with 503 "
     "ledger_damaged until the file is replaced; follow "
     "\"A damaged ledger\" in docs/operations.md (move it aside; the next sync restores the "
     "history)"},
    {"ledger_checked", "info", "check, ok, problems, duration_ms",
     "- (the start-up check of the ledger file, run after READY; a failed one also logs "
     "ledger_damaged)"},
    {"ledger_error", "error",
     "phase, message (at start-up); method, path, status, code, message (a request)",
     "the ledger cannot be written (disk full, I/O error, locked): check disk space and the file "
     "system; checkouts are refused until it is fixed. At phase open the agent does not start: "
     "the message names the file and why (not an SQLite database, a newer schema, permissions, "
     "another terminal's ledger)"},
    {"request_rejected", "info", "method, path, status, code, message",
     "- (bad input from the POS; many in a row point at a POS integration bug)"},
    {"request_unauthorized", "warn", "method, path",
     "a caller without the token: check the POS configuration or look for an intruder"},
    {"member_identified", "info", "member_id, kind", "-"},
    {"checkout_committed", "info",
     "checkout_id, member_id, total_due_cents, points_earned, points_redeemed, entries", "-"},
    {"refund_committed", "info",
     "refund_id, checkout_id, sold_at, from, reason, refund_cents, points_clawed_back, "
     "points_restored",
     "- (sold_at: the selling terminal when not this one, null otherwise; from: ledger, hq or "
     "receipt)"},
    {"enrolment_offered", "info", "checkout_id, format, expires_at",
     "- (the POS asked for the sign-up link or QR code of a sale made without a member: "
     "format json, png or svg; docs/pos-api.md, \"Sign-up at the till\")"},
    {"member_frozen", "warn", "member_id, reason, checkout_id",
     "the member earned more than max_points_per_hour: HQ's risk team reviews and unfreezes"},
    {"tier_upgraded", "info", "member_id, tier", "-"},
    {"scan_accepted", "info", "scanner_id, code_hash, kind, member_id", "-"},
    {"scan_rejected", "warn",
     "scanner_id, code, code_hash (reason instead, for a scan over 4096 bytes)",
     "- (a code that failed; many code_expired in a row: check the terminal clock)"},
    {"scan_not_member_code", "info", "scanner_id, code_hash, bytes", "-"},
    {"scanner_connected", "info", "scanner_id, detail", "-"},
    {"scanner_disconnected", "warn", "scanner_id, detail",
     "check the cable; the agent reopens the scanner by itself when it comes back (a fifo or "
     "image folder that cannot be used at start or reload, e.g. its folder is missing, is logged "
     "once and tried again every second until it can)"},
    {"scanner_error", "error",
     "scanner_id, detail (message alone, for scanner settings refused at start)",
     "the scanner cannot be opened (permissions: udev rules; wrong path or ids in [[scanners]])"},
    {"scanner_garbage", "warn", "scanner_id, what",
     "- (unreadable input from a scanner, logged once per burst; persistent: wrong scanner mode or "
     "baud)"},
    {"scanner_image_refused", "warn",
     "scanner_id, file, width, height, channels, bytes_per_channel, decoded_bytes, reason",
     "- (an image whose decoded size is over 64 MiB, refused before decoding; many: check what "
     "writes to the image "
     "folder)"},
    {"sync_started", "info", "run_id, trigger", "-"},
    {"sync_finished", "info",
     "run_id, uploaded, downloaded, repaired, conflicts, round_trips, bytes_sent, bytes_received, "
     "duration_ms",
     "-"},
    {"sync_failed", "error",
     "run_id, error, uploaded, downloaded, repaired, conflicts, round_trips, bytes_sent, "
     "bytes_received, duration_ms",
     "HQ unreachable or refusing: check the network, hq.url and the terminal certificate; the next "
     "run retries"},
    {"sync_interrupted", "warn", "runs",
     "- (the agent was stopped or killed during a sync run; the next run repeats it safely)"},
    {"sync_cursor_reset", "warn", "cursor, reason",
     "- (HQ refused the download cursor this ledger held, as after HQ was restored from an "
     "older backup: the run downloads the store's members again from the beginning)"},
    {"rules_updated", "info", "rules_version", "-"},
    {"rules_refused", "warn", "rules_version, reason, in_force",
     "HQ sent rules this agent cannot take (a value out of range, or keys of a newer HQ): the "
     "rules in_force stay; HQ's IT fixes the rules or the agent is upgraded"},
    {"sync_conflict", "warn", "kind, entry_id, seq (seq: a conflict met while uploading)",
     "HQ recorded a conflict (e.g. a coupon used at two stores): nothing to do at the store; HQ "
     "reviews it"},
    {"member_lookup", "info", "kind, code_hash, found, member_id, ms",
     "- (a member this store does not hold, asked of HQ at identify; found: now held here)"},
    {"member_lookup_failed", "warn", "kind, code_hash, reason, paused_s",
     "HQ did not answer the look-up in time: the offline rules apply, and look-ups pause for "
     "paused_s; many: check the network to HQ"},
    {"members_evicted", "info", "asked, dropped, forgotten",
     "- (a sync run dropped members that left the store's scope, as HQ asked; those with "
     "entries not yet acknowledged stay until a later run)"},
    {"sale_fetch", "info", "sold_at, checkout_id, found, refunds_elsewhere, ms",
     "- (a refund asked HQ for its sale: a return of another terminal's checkout, or units "
     "refunded elsewhere)"},
    {"sale_fetch_failed", "warn", "sold_at, checkout_id, reason, paused_s",
     "HQ did not answer: a return of another terminal's sale needs the receipt's return code "
     "until it does; look-ups pause for paused_s"},
    {"phone_lookup", "info", "found, via, member_id, ms",
     "- (a member asked for by phone number: via ledger, hq or none; never the number)"},
    {"phone_lookup_limited", "warn", "per_hour",
     "more phone look-ups in an hour than [api] phone_lookups_per_hour allows: someone may be "
     "trying numbers at this till; the cashier scans the member's code meanwhile"},
    {"phone_keys_unreadable", "warn", "reason",
     "the store's phone look-up keys could not be read at start: phone look-up finds members "
     "online only until the next sync"},
    {"receipt_key_unreadable", "warn", "reason",
     "the ledger's receipt key could not be read at start: commits carry no return token until "
     "the next sync renews it"},
    {"log_event_uncatalogued", "error", "name", "a defect: report it"},
};

inline const EventInfo* FindEvent(std::string_view name) {
  return loyalty::FindEvent(kEventCatalogue, name);
}

}  // namespace loyalty::agent
