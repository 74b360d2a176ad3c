// The JSON messages of the terminal ↔ HQ sync protocol (sync/PROTOCOL.md, version 1): plain
// structs and their codecs, shared by HQ (loyalty-hq) and the terminal's sync client.
//
// Every FromJson is strict and never throws: a missing field, a wrong JSON type, a float
// where an integer is due, a value out of range or a malformed id/hash is a Status with
// code `bad_request` whose message names the field by its path ("entries[3].seq must be an
// integer ≥ 1"). Keys a message does not define are ignored, so a later protocol version
// may add fields. ToJson writes every field; FromJson(ToJson(x)) == x for every valid x.
// ParseMessage/SerializeMessage do the same from/to a request or response body.
//
// Wire forms: member ids are decimal strings of a uint64 (no sign, no leading zero except
// "0"); hashes are lower-case hex (entry hashes 64 characters, entry ids 32); times are
// unix milliseconds (*_ms) or seconds (*_s). Hashes and ids are kept in these wire forms in
// the structs too; converting to raw bytes (HexDecode) is the caller's business.
//
// All functions are pure and thread-safe; the structs are plain values.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "loyalty/base/json.h"
#include "loyalty/base/status.h"
#include "loyalty/model/coupon.h"
#include "loyalty/model/entry.h"
#include "loyalty/model/sale.h"

namespace loyalty::sync {

inline constexpr int kProtocolVersion = 1;
// Limits of PROTOCOL.md (and a few of this codec's own, documented there).
inline constexpr size_t kMaxUploadEntries = 500;
inline constexpr size_t kMaxUploadCheckouts = 2000;  // checkouts or refunds per upload batch
inline constexpr size_t kMaxFetchIds = 1000;
inline constexpr size_t kMaxMemberIds = 1000;
inline constexpr int64_t kMaxChangesLimit = 2000;
inline constexpr int64_t kDefaultChangesLimit = 1000;
inline constexpr size_t kMaxCheckoutLines = 500;
inline constexpr size_t kMaxIdChars = 64;     // checkout, refund, coupon ids
inline constexpr size_t kMaxShortText = 256;  // kinds, tiers, reasons, versions, skus …
inline constexpr size_t kMaxDetailBytes = 64 * 1024;
inline constexpr size_t kMaxDocumentBytes = 1 << 20;  // request_json, response_json
inline constexpr size_t kMaxReceiptBytes = 4096;      // a refund's return token (docs/pos-api.md)

// The table of value limits, enforced by FromJson at both ends (HQ reading an upload, a
// terminal reading HQ's pages) and checked by HQ before it sends anything: HQ never emits a
// value a terminal would refuse. sync/PROTOCOL.md lists them.
//   points of an entry, a lot, a balance, a checkout's earned/redeemed points, a refund's
//   clawed-back/restored points: |x| <= kMaxPoints;
//   cents of a line, a checkout, a refund: 0..kMaxCents (500 lines x 10,000 units x
//   1,000,000 yuan, the Limits of loyalty-rules.md); a unit price 0..kMaxUnitPriceCents;
//   a month's spend 0..kMaxSpendCents;
//   times: 0..kMaxTimeMs (unix ms, the year 9999);
//   a frozen reason: at most kMaxReasonBytes.
inline constexpr int64_t kMaxPoints = 1'000'000'000'000'000;  // 10^15
inline constexpr int64_t kMaxCents = 500'000'000'000'000;     // 5 x 10^14
inline constexpr int64_t kMaxUnitPriceCents = 100'000'000;
// A line's qty and unit price as the codec takes them: any integer. The Limits of
// loyalty-rules.md (qty 1..10000, a unit price 0..kMaxUnitPriceCents, sku and category) are
// HQ's upload checks': a record past them is refused alone (value_out_of_range), never the
// whole upload ("One bad record never stops the chain").
inline constexpr int64_t kMinWireInt = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kMaxWireInt = std::numeric_limits<int64_t>::max();
inline constexpr int64_t kMaxSpendCents = 1'000'000'000'000'000'000;  // 10^18
inline constexpr int64_t kMaxTimeMs = 253'402'300'799'999;
inline constexpr int64_t kMaxTimeS = kMaxTimeMs / 1000;
inline constexpr size_t kMaxReasonBytes = 64;
inline constexpr size_t kMaxSnapshotLots = 100000;

// Entry kinds (pos-api.md). Terminal kinds first, then HQ's.
bool IsEntryKind(std::string_view kind);
// [A-Za-z0-9_-]{1,32}
bool IsTerminalId(std::string_view id);
// [A-Za-z0-9_-]{1,64} (kMaxIdChars): an optional client id such as a cashier's, when given.
bool IsClientId(std::string_view id);
// Lower-case hex of exactly `len` characters, or "" when allow_empty: the protocol's hashes
// and entry ids on the wire.
bool IsHexField(std::string_view s, size_t len, bool allow_empty = false);
// The kinds a terminal may write (pos-api.md): earn, redeem, clawback, restore, freeze,
// tier_upgrade, correction.
bool IsTerminalEntryKind(std::string_view kind);
// Decimal uint64 as the protocol writes it; nullopt for anything else.
std::optional<uint64_t> ParseMemberId(std::string_view dec);

// The domain types travel as they are held (loyalty/model): one model at both ends. The
// codec below checks every field against the limits table and spells the entry's raw
// chain hashes in hex.
using model::Checkout;
using model::CheckoutLine;
using model::Entry;
using model::Refund;
using model::RefundLine;

struct SnapshotLot {
  int64_t points = 0;
  int64_t expires_at_s = 0;
  bool operator==(const SnapshotLot&) const = default;
};

// One of HQ's own entries of a member (pos-api.md: adjust, expire, unfreeze, tier_change,
// and freeze when HQ froze the member), as a snapshot carries it for the terminal to show
// beside its own entries. Its points are already in the snapshot's balance and lots.
inline constexpr size_t kMaxSnapshotHqEntries = 20;  // the member view's "last 20"
struct HqEntry {
  std::string entry_id;  // 32 hex
  std::string kind;
  int64_t points = 0;
  int64_t at_ms = 0;
  bool operator==(const HqEntry&) const = default;
};
// The kinds HQ writes: adjust, expire, unfreeze, tier_change, freeze.
bool IsHqEntryKind(std::string_view kind);

// What a terminal may know of a member (最小必要): masked name and phone, never clear text.
struct Snapshot {
  uint64_t member_id = 0;
  std::optional<std::string> display_name;  // masked ("张*"), null when HQ has none
  std::optional<std::string> phone;         // masked ("138****5678"), null when HQ has none
  std::string phone_hash;                   // hex keyed hash, "" when no phone
  std::string tier = "member";              // member | vip | black
  std::string status = "active";            // active | frozen
  std::string frozen_reason;
  int64_t birthday_month = 0;  // 0..12, 0 unknown
  int64_t balance = 0;
  std::vector<SnapshotLot> lots;
  int64_t month_spend_cents = 0;
  int64_t unfrozen_at_ms = 0;
  int64_t snapshot_at_s = 0;
  int64_t terminal_seq = 0;  // ≥ 0
  // The look-up key phone_hash was made with (docs/pos-api.md, "Phone look-up"): the
  // store's key number, 0 when phone_hash is not a store look-up hash (no consent).
  int64_t phone_key_id = 0;
  // HQ's own entries of the member, newest first, at most kMaxSnapshotHqEntries ("hq_entries"
  // on the wire, left out when empty).
  std::vector<HqEntry> hq_entries;
  bool operator==(const Snapshot&) const = default;
};

// A store's phone look-up key (docs/pos-api.md, "Phone look-up").
inline constexpr int64_t kMaxPhoneKeyId = int64_t{1} << 31;
struct PhoneKey {
  int64_t key_id = 0;  // 1..kMaxPhoneKeyId
  std::string key;     // raw 32 bytes (base64url on the wire)
  bool operator==(const PhoneKey&) const = default;
};

struct Identity {
  std::string channel, external_id;
  uint64_t member_id = 0;
  bool operator==(const Identity&) const = default;
};

// A coupon on the wire: the offer, and whether HQ knows of a use.
struct Coupon : model::Coupon {
  bool used = false;
  bool operator==(const Coupon&) const = default;
};

struct ChainHead {
  int64_t seq = 0;
  std::string hash;  // 64 hex, or "" when seq = 0
  bool operator==(const ChainHead&) const = default;
};

struct HelloRequest {
  int64_t protocol = kProtocolVersion;  // must be 1
  std::string store_id;
  std::string agent_version;
  ChainHead head;
  int64_t entries = 0;
  // The changes cursor the terminal holds ("" before its first page): pages HQ sent past it
  // never arrived (docs/hq.md, "What the terminal could know"). Absent from older terminals.
  std::optional<std::string> cursor;
  bool operator==(const HelloRequest&) const = default;
};

struct HelloResponse {
  int64_t protocol = kProtocolVersion;
  int64_t hq_time_ms = 0;
  bool terminal_known = false;
  int64_t hq_entries = 0;
  ChainHead hq_head;
  bool operator==(const HelloResponse&) const = default;
};

struct UploadRequest {
  std::vector<Entry> entries;  // ≤ 500, in seq order
  std::vector<Checkout> checkouts;
  std::vector<Refund> refunds;
  bool operator==(const UploadRequest&) const = default;
};

struct UploadResult {
  std::string entry_id;
  std::string status;  // created | exists | conflict | invalid | refused
  bool operator==(const UploadResult&) const = default;
};

struct UploadResponse {
  std::vector<UploadResult> results;
  bool operator==(const UploadResponse&) const = default;
};

struct ChangesResponse {
  std::string cursor;
  bool more = false;
  int64_t hq_time_ms = 0;
  std::vector<Snapshot> members;
  std::vector<Identity> identities;
  std::vector<Coupon> coupons;
  std::vector<std::string> revocations;  // base64url device public keys (32 bytes)
  std::optional<nlohmann::json> rules;   // an object with a string "version", or null
  // On the last page (more = false): members this terminal holds that left its store's
  // scope, to drop (PROTOCOL.md, "Eviction"); ≤ kMaxEvictions.
  std::vector<uint64_t> evict;
  // On the last page: the terminal's store's phone look-up key (absent for a terminal of
  // no store).
  std::optional<PhoneKey> phone_key;
  bool operator==(const ChangesResponse&) const = default;
};

struct FetchRequest {
  std::vector<std::string> entry_ids;  // ≤ 1000, 32 hex each
  // A terminal restored from an empty disk (PROTOCOL.md, "fetch"): also its checkouts that
  // have no entries (made without a member), with their refunds, in checkout id order after
  // this id ("" from the first); absent: none.
  std::optional<std::string> without_entries_after;
  bool operator==(const FetchRequest&) const = default;
};

// Checkouts without entries a fetch answers at most (their refunds: at most kMaxFetchIds).
inline constexpr size_t kMaxFetchCheckoutsWithoutEntries = 100;

struct FetchResponse {
  std::vector<Entry> entries;
  std::vector<Checkout> checkouts;
  std::vector<Refund> refunds;
  // With without_entries_after: the id to ask after next, absent when there are no more.
  std::optional<std::string> next_without_entries;
  bool operator==(const FetchResponse&) const = default;
};

// A member a terminal looks up by a card it scanned (channel "card" for a printed card,
// or a channel member card): PROTOCOL.md, "members".
struct IdentityKey {
  std::string channel, external_id;
  bool operator==(const IdentityKey&) const = default;
};
inline constexpr size_t kMaxLookupIdentities = 16;

struct MembersRequest {
  std::vector<uint64_t> member_ids;  // ≤ 1000
  // A look-up (a member identified online): the cards to resolve (≤ 16), and the answer
  // carries the identities of the members it holds. nullopt: a repair, as before.
  std::optional<std::vector<IdentityKey>> identities;
  // A look-up by phone number: its look-up digits (base/phone.h, 5..20 digits); HQ answers
  // a member who consented to phone look-up.
  std::optional<std::string> phone;
  // A look-up's: the terminal's store as its hello names it (0..kMaxIdChars bytes), so HQ
  // counts the member in that store's scope before it has had a hello from the terminal.
  // nullopt (an older terminal, or a repair): the store of the terminal's last hello.
  std::optional<std::string> store_id;
  bool operator==(const MembersRequest&) const = default;
};

struct MembersResponse {
  std::vector<Snapshot> members;
  std::optional<std::vector<Identity>> identities;  // present when the request had them
  bool operator==(const MembersResponse&) const = default;
};

inline constexpr size_t kMaxEvictions = 1000;

// The members a terminal dropped after `changes` named them in `evict` (PROTOCOL.md,
// "Eviction"): HQ forgets that the terminal holds them.
struct EvictedRequest {
  std::vector<uint64_t> member_ids;  // ≤ kMaxEvictions
  bool operator==(const EvictedRequest&) const = default;
};
struct EvictedResponse {
  int64_t forgotten = 0;
  bool operator==(const EvictedResponse&) const = default;
};

// A sale of another terminal, asked for to refund it here (docs/pos-api.md, "Returns
// anywhere"): PROTOCOL.md, "sale".
struct SaleRequest {
  std::string terminal_id;  // the terminal that sold it
  std::string checkout_id;
  // The asking terminal's store, as for a look-up (MembersRequest::store_id).
  std::optional<std::string> store_id;
  bool operator==(const SaleRequest&) const = default;
};

struct SaleResponse {
  std::optional<Checkout> checkout;  // nullopt: HQ holds no accepted checkout of that id
  // The refunds of it HQ accepted from terminals other than the one asking, each naming
  // the terminal that made it (≤ kMaxSaleRefunds).
  struct OtherRefund {
    std::string terminal_id;
    Refund refund;
    bool operator==(const OtherRefund&) const = default;
  };
  std::vector<OtherRefund> refunds;
  std::vector<Snapshot> members;     // the checkout's member (0 or 1), now held by the asker
  std::vector<Identity> identities;  // that member's
  bool operator==(const SaleResponse&) const = default;
};
inline constexpr size_t kMaxSaleRefunds = 1000;

// A terminal's receipt key, to certify (PROTOCOL.md, "receipt-key").
struct ReceiptKeyRequest {
  std::string public_key;  // raw 32 bytes (base64url on the wire)
  bool operator==(const ReceiptKeyRequest&) const = default;
};
struct ReceiptKeyResponse {
  std::string certificate;  // raw bytes (base64url on the wire), codes/return_token.h
  bool operator==(const ReceiptKeyResponse&) const = default;
};

// `GET changes` query: cursor (opaque, "" first) and limit (1..2000, default 1000).
struct ChangesQuery {
  std::string cursor;
  int64_t limit = kDefaultChangesLimit;
};

#define LOYALTY_SYNC_CODEC(T)        \
  nlohmann::json ToJson(const T& v); \
  Status FromJson(const nlohmann::json& j, T* out);

LOYALTY_SYNC_CODEC(Entry)
LOYALTY_SYNC_CODEC(CheckoutLine)
LOYALTY_SYNC_CODEC(Checkout)
LOYALTY_SYNC_CODEC(RefundLine)
LOYALTY_SYNC_CODEC(Refund)
LOYALTY_SYNC_CODEC(SnapshotLot)
LOYALTY_SYNC_CODEC(Snapshot)
LOYALTY_SYNC_CODEC(Identity)
LOYALTY_SYNC_CODEC(Coupon)
LOYALTY_SYNC_CODEC(ChainHead)
LOYALTY_SYNC_CODEC(HelloRequest)
LOYALTY_SYNC_CODEC(HelloResponse)
LOYALTY_SYNC_CODEC(UploadRequest)
LOYALTY_SYNC_CODEC(UploadResult)
LOYALTY_SYNC_CODEC(UploadResponse)
LOYALTY_SYNC_CODEC(ChangesResponse)
LOYALTY_SYNC_CODEC(FetchRequest)
LOYALTY_SYNC_CODEC(FetchResponse)
LOYALTY_SYNC_CODEC(MembersRequest)
LOYALTY_SYNC_CODEC(MembersResponse)
LOYALTY_SYNC_CODEC(EvictedRequest)
LOYALTY_SYNC_CODEC(EvictedResponse)
LOYALTY_SYNC_CODEC(SaleRequest)
LOYALTY_SYNC_CODEC(SaleResponse)
LOYALTY_SYNC_CODEC(ReceiptKeyRequest)
LOYALTY_SYNC_CODEC(ReceiptKeyResponse)
#undef LOYALTY_SYNC_CODEC

// A refund as an upload carries it (a line's qty any integer, which HQ's checks refuse alone
// past the limits): how HQ reads back the refunds it stored, refused ones included.
Status FromJsonAsUploaded(const nlohmann::json& j, Refund* out);

// Whether a snapshot is one FromJson accepts (HQ checks before it sends one); the message
// names the first field that is not.
Status ValidateSnapshot(const Snapshot& s);

// Parses a body: valid UTF-8 JSON whose top level is an object, nested at most
// kMaxJsonDepth (32) levels deep (loyalty::ParseJsonObject, base/json.h, the one parser),
// then FromJson. Malformed or too deep JSON is
// bad_request too. Never throws. Both ends use it: HQ for what terminals send, the terminal
// for what HQ answers.
template <typename T>
Result<T> ParseMessage(std::string_view body) {
  auto j = ParseJsonObject(body);
  if (!j.ok()) return j.status();
  T out;
  if (Status s = FromJson(*j, &out); !s.ok()) return s;
  return out;
}

// An upload's body, as ParseMessage<UploadRequest> reads it — the same value or the same
// error — at a fraction of the cost for the bodies terminals send: ParseUploadFast first, the
// tree reader when it declines.
Result<UploadRequest> ParseUploadRequest(std::string_view body);
// The fast path (upload_fast.cc): a strict scanner of the text (json_scan.h) driving a SAX
// handler straight into the message. True, with *out, only for a body
// ParseMessage<UploadRequest> reads to that same value; false (and *out unspecified) for
// anything it is not sure of — any problem, a key twice in one object, any refund — whose
// answer is then the tree reader's.
bool ParseUploadFast(std::string_view body, UploadRequest* out);

// Compact JSON; strings that are not valid UTF-8 are written with U+FFFD instead of
// throwing (FromJson never produces such strings).
std::string Dump(const nlohmann::json& j);
template <typename T>
std::string SerializeMessage(const T& v) {
  return Dump(ToJson(v));
}

// The query of `GET /v1/sync/{tid}/changes` from its decoded key/value pairs: `cursor`
// optional (≤ 256 bytes), `limit` optional decimal 1..2000. bad_request otherwise.
Result<ChangesQuery> ParseChangesQuery(const std::map<std::string, std::string>& query);

}  // namespace loyalty::sync
