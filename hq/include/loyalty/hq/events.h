// The catalogue of loyalty-hq's log events: every event the program writes (hq/src/main.cc)
// and every event the service reports through HqOptions::on_event, with its level, its
// fields and what the operator should do about it. docs/operations.md, "loyalty-hq's event
// catalogue", lists the same table (a test keeps them equal, and another that every event
// the sources name is here); the program logs `log_event_uncatalogued` for a name that is not.
#pragma once

#include <string_view>

#include "loyalty/base/event_catalogue.h"

namespace loyalty::hq {

inline constexpr EventInfo kHqEventCatalogue[] = {
    {"hq_started", "info",
     "listen, database, timezone, rules_version, tls, max_connections, "
     "max_connections_per_address, workers, crl_file",
     "-"},
    {"hq_plain_http", "warn", "reason",
     "- (expected on a loopback demo or test; anywhere else configure tls_cert_file, "
     "tls_key_file and client_ca_file)"},
    {"stopping", "info", "signal", "-"},
    {"hq_stopped", "info", "", "-"},
    {"hq_crashed", "critical", "reason",
     "systemd restarts the service; send the journal around it to the developers"},
    {"config_invalid", "error", "reason",
     "fix the file and key named in the reason; HQ does not start until then"},
    {"config_warning", "warn", "reason",
     "read the reason; HQ runs, but the setting is unusual (e.g. LimitNOFILE= too low for "
     "max_connections)"},
    {"database_error", "error", "reason",
     "the database cannot be opened (a SQLite file's folder or permissions; PostgreSQL down, "
     "unreachable or refusing the password): fix it and start HQ again"},
    {"listen_failed", "error", "reason",
     "another process holds the port, or the address is wrong: check hq.listen"},
    {"terminal_refused", "warn", "terminal_id, peer_cn, remote, reason",
     "a terminal route without a client certificate naming that terminal: one terminal again and "
     "again is a certificate to reissue (tls.md); many from one address, look for an intruder"},
    {"points_expired", "info", "members, points", "-"},
    {"daily_job_failed", "error", "reason",
     "the hourly run of the daily job (expiry, tiers) failed, usually the database: fix it; the "
     "next run catches up"},
    {"crl_loaded", "info", "crl_file, revoked", "-"},
    {"crl_reload_failed", "error", "crl_file, reason",
     "the CRL named did not load on SIGHUP and the previous one stays in use: fix the file and "
     "send SIGHUP again"},
    {"crl_not_configured", "info", "reason", "- (SIGHUP without crl_file: nothing to reload)"},
    {"entry_refused", "warn", "terminal_id, entry_id, kind, reason",
     "an uploaded entry HQ could not check is kept but applied to no balance (an entry_refused "
     "conflict): many from one terminal, check that terminal's software and rules"},
    {"record_refused", "warn", "terminal_id, checkout_id or refund_id, reason",
     "as entry_refused, for an uploaded checkout or refund; reason refund_reused: the same units "
     "were refunded at two terminals offline (the entry_refused conflict names both): loss "
     "prevention "
     "reviews the two refunds and their cashiers"},
    {"refund_rounding_corrected", "info", "terminal_id, refund_id, member_id, points",
     "- (two lanes refunded one sale offline, the later computed without the other's refund: "
     "HQ's adjust entry makes the sale's claw-back exact)"},
    {"members_evicted", "info", "terminal_id, dropped, forgotten",
     "- (a terminal dropped members that left its store's scope; HQ no longer counts them "
     "held there)"},
    {"sale_fetch_limited", "warn", "terminal_id, per_hour",
     "a terminal asked for more sales in an hour than returns explain: look at what that till "
     "runs (a till walking the chain's sales and members is a stolen or rooted one)"},
    {"phone_consent_changed", "info", "member_id, consent",
     "- (a member gave or withdrew consent to phone look-up at the till)"},
    {"phone_lookup", "info", "terminal_id, found, member_id",
     "- (a terminal asked for a member by phone number; never the number)"},
    {"phone_lookup_limited", "warn", "terminal_id, per_hour",
     "a terminal asked for more phone numbers in an hour than a lane serves: a till trying "
     "numbers to enumerate members is a stolen or rooted one"},
    {"sale_fetched", "info", "terminal_id, sold_at, checkout_id, found, refunds",
     "- (a terminal asked for a sale to refund it: a return at another lane or store)"},
    {"receipt_key_certified", "info", "terminal_id, key_id, not_after",
     "- (a terminal's receipt key, certified for its return tokens; every 60 days or so)"},
    {"claim_recorded", "info", "terminal_id, checkout_id, member_id, status",
     "- (a member joined with, or added, the claim of a sale made without a member: status "
     "credited, or pending until the selling terminal uploads the sale)"},
    {"claim_credited", "info", "terminal_id, checkout_id, member_id, points",
     "- (a claimed sale's points credited to the member, once)"},
    {"claim_refused", "warn", "terminal_id, checkout_id, member_id, reason",
     "- (a claim HQ did not credit: used already, expired, refunded, a sale with a member, or "
     "one that does not verify; many code_signature_invalid from one join page: someone is "
     "forging claims)"},
    {"claim_clawed_back", "info", "terminal_id, checkout_id, refund_id, member_id, points",
     "- (a refund of a claimed sale took back its share of the credited points)"},
    {"claim_clawback_failed", "error", "terminal_id, checkout_id, refund_id, reason",
     "a defect: the refund stands but the claimed points were not taken back; report it with "
     "the sale"},
    {"member_frozen", "warn", "member_id, reason, source",
     "HQ froze the member for chain-wide velocity (source hq): the risk team reviews and "
     "unfreezes"},
    {"snapshot_not_sent", "warn", "terminal_id, member_id, reason",
     "a member's snapshot a terminal's codec would refuse was left out of a page: a defect to "
     "report, with the member id"},
    {"log_event_uncatalogued", "error", "name", "a defect: report it"},
};

inline const EventInfo* FindHqEvent(std::string_view name) {
  return FindEvent(kHqEventCatalogue, name);
}

}  // namespace loyalty::hq
