// The fast path of an upload's body (messages.h, ParseUploadFast): a strict scanner of the
// text (json_scan.h) driving a SAX handler straight into the message, with no tree. It takes
// only what it is sure of — a body that FromJson would read to the same value — and declines
// the rest (returns false), leaving the answer, and every error message, to the tree reader. So its
// rules are those of ReadEntry, ReadCheckout and ReadCheckoutLine (messages.cc) for a value that
// fits, and "decline" for anything else: a field missing, null where a value is required, of
// another kind or out of range; a key twice in one object, known or not (the tree refuses it); any
// refund (the tree reader reads those). Unknown keys are skipped, as the tree reader ignores them.
// tests/hq/upload_fast_test.cc and the differential fuzz target fuzz_upload_fast hold it
// to that.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/base/json.h"  // kMaxJsonDepth
#include "loyalty/sync/messages.h"

#include "json_scan.h"

namespace loyalty::sync {
namespace {

// The fields, one numbering per object kind; kUnknown is a key the readers do not ask for.
enum Field : int {
  kUnknown = -1,
  // entry
  kEntryId = 0,
  kTerminalId,
  kSeq,
  kKind,
  kMemberId,
  kPoints,
  kAtMs,
  kCheckoutId,
  kRefundId,
  kDetail,
  kPrevHash,
  kHash,
  kEntryFields,
  // checkout
  kCoCheckoutId = 0,
  kCoRequestHash,
  kCoMemberId,
  kCoRulesVersion,
  kCoCommittedAtMs,
  kCoSubtotal,
  kCoTotalDue,
  kCoPointsEarned,
  kCoRedeemedPoints,
  kCoEligible,
  kCoRedeemable,
  kCoCodeHash,
  kCoTender,
  kCoCouponId,
  kCoCashierId,  // optional
  kCoRequestJson,
  kCoResponseJson,
  kCoLines,
  kCheckoutFields,
  // line
  kLnLine = 0,
  kLnSku,
  kLnCategory,
  kLnQty,
  kLnUnitPrice,
  kLnTierDiscount,
  kLnCoupon,
  kLnRedeem,
  kLnNet,
  kLnNetBeforeRedeem,
  kLnPointsEligible,
  kLnRedeemable,
  kLineFields,
  // the message
  kUpEntries = 0,
  kUpCheckouts,
  kUpRefunds,
  kUploadFields,
};

template <size_t N>
int Find(const std::string_view (&names)[N], std::string_view key) {
  for (size_t i = 0; i < N; ++i)
    if (key == names[i]) return static_cast<int>(i);  // the sizes first: most differ
  return kUnknown;
}

constexpr std::string_view kEntryNames[] = {"entry_id",  "terminal_id", "seq",       "kind",
                                            "member_id", "points",      "at_ms",     "checkout_id",
                                            "refund_id", "detail",      "prev_hash", "hash"};
constexpr std::string_view kCheckoutNames[] = {
    "checkout_id",      "request_hash",    "member_id",     "rules_version",   "committed_at_ms",
    "subtotal_cents",   "total_due_cents", "points_earned", "redeemed_points", "eligible_cents",
    "redeemable_cents", "code_hash",       "tender",        "coupon_id",       "cashier_id",
    "request_json",     "response_json",   "lines"};
constexpr std::string_view kLineNames[] = {"line",
                                           "sku",
                                           "category",
                                           "qty",
                                           "unit_price_cents",
                                           "tier_discount_cents",
                                           "coupon_cents",
                                           "redeem_cents",
                                           "net_cents",
                                           "net_before_redeem_cents",
                                           "points_eligible",
                                           "redeemable"};
constexpr std::string_view kUploadNames[] = {"entries", "checkouts", "refunds"};
static_assert(std::size(kEntryNames) == kEntryFields);
static_assert(std::size(kCheckoutNames) == kCheckoutFields);
static_assert(std::size(kLineNames) == kLineFields);
static_assert(std::size(kUploadNames) == kUploadFields);

// Where the parser is: each open object or array (the root object, the arrays of entries,
// checkouts and lines and their elements, and a value of an unknown key being skipped).
enum class At { kRoot, kEntries, kEntry, kCheckouts, kCheckout, kLines, kLine, kRefunds, kSkip };

class UploadSax {
 public:
  explicit UploadSax(UploadRequest* out) : out_(out) {}

  bool done() const { return done_; }

  // --- values
  bool null() {
    if (Skipping()) return true;
    if (stack_.empty()) return false;  // a scalar at the top: the tree reader refuses it
    if (stack_.back() == At::kCheckout && field_ == kCoMemberId) {
      checkout().member_id.reset();
      return Took();
    }
    if (stack_.back() == At::kCheckout && field_ == kCoCashierId) {
      checkout().cashier_id.clear();
      return Took();
    }
    return Scalar();
  }
  bool boolean(bool v) {
    if (Skipping()) return true;
    if (stack_.empty()) return false;
    if (stack_.back() == At::kLine && (field_ == kLnPointsEligible || field_ == kLnRedeemable)) {
      (field_ == kLnPointsEligible ? line().points_eligible : line().redeemable) = v;
      return Took();
    }
    return Scalar();
  }
  bool number_integer(int64_t v) { return Skipping() || (!stack_.empty() && Int(v)); }
  bool number_unsigned(uint64_t v) {
    if (Skipping()) return true;
    if (stack_.empty()) return false;
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Scalar();
    return Int(static_cast<int64_t>(v));
  }
  bool number_float(double, const std::string&) {
    return Skipping() || (!stack_.empty() && Scalar());
  }
  bool string(std::string& v) { return Skipping() || (!stack_.empty() && String(v)); }

  // --- containers
  bool start_object(size_t) {
    if (Skipping()) return Deeper();
    if (stack_.empty()) return Push(At::kRoot);
    switch (stack_.back()) {
      case At::kEntries:
        if (out_->entries.size() == kMaxUploadEntries) return false;
        out_->entries.emplace_back();
        return Push(At::kEntry);
      case At::kCheckouts:
        if (out_->checkouts.size() == kMaxUploadCheckouts) return false;
        out_->checkouts.emplace_back();
        return Push(At::kCheckout);
      case At::kLines:
        if (checkout().lines.size() == kMaxCheckoutLines) return false;
        checkout().lines.emplace_back();
        return Push(At::kLine);
      default:
        return Container();
    }
  }
  bool start_array(size_t) {
    if (Skipping()) return Deeper();
    if (stack_.empty()) return false;  // not an object: the tree reader says so
    const At at = stack_.back();
    if (at == At::kRoot && field_ == kUpEntries) return Took() && Push(At::kEntries);
    if (at == At::kRoot && field_ == kUpCheckouts) return Took() && Push(At::kCheckouts);
    if (at == At::kRoot && field_ == kUpRefunds) return Took() && Push(At::kRefunds);
    if (at == At::kCheckout && field_ == kCoLines) return Took() && Push(At::kLines);
    return Container();
  }
  bool end_object() {
    if (Skipping()) return CloseOtherKeys() && Shallower();
    if (stack_.empty()) return false;
    const At at = stack_.back();
    const uint32_t all = at == At::kRoot    ? (1u << kUploadFields) - 1
                         : at == At::kEntry ? (1u << kEntryFields) - 1
                         : at == At::kCheckout
                             ? ((1u << kCheckoutFields) - 1) & ~(1u << kCoCashierId)
                             : (1u << kLineFields) - 1;
    if ((seen_.back() & all) != all) return false;  // a field missing
    if (at == At::kRoot) done_ = true;
    return Pop();
  }
  bool end_array() {
    if (Skipping()) return CloseOtherKeys() && Shallower();
    return !stack_.empty() && Pop();
  }
  bool key(std::string& k) {
    if (Skipping()) return NewOtherKey(k);
    if (stack_.empty()) return false;
    switch (stack_.back()) {
      case At::kRoot:
        field_ = Find(kUploadNames, k);
        break;
      case At::kEntry:
        field_ = Find(kEntryNames, k);
        break;
      case At::kCheckout:
        field_ = Find(kCheckoutNames, k);
        break;
      case At::kLine:
        field_ = Find(kLineNames, k);
        break;
      default:
        return false;
    }
    if (field_ == kUnknown) return NewOtherKey(k);
    const uint32_t bit = 1u << field_;
    if (seen_.back() & bit) return false;  // twice: the tree refuses it
    seen_.back() |= bit;
    return true;
  }

 private:
  Entry& entry() { return out_->entries.back(); }
  Checkout& checkout() { return out_->checkouts.back(); }
  CheckoutLine& line() { return checkout().lines.back(); }

  bool Skipping() const { return skip_depth_ > 0; }
  bool Deeper() {  // the limit counts every open object and array (json.h, JsonDepth)
    ++skip_depth_;
    return stack_.size() + static_cast<size_t>(skip_depth_) <= static_cast<size_t>(kMaxJsonDepth);
  }
  bool Shallower() {
    --skip_depth_;
    return true;
  }
  bool Push(At at) {
    if (stack_.size() >= static_cast<size_t>(kMaxJsonDepth)) return false;
    stack_.push_back(at);
    seen_.push_back(0);
    field_ = kUnknown;
    return true;
  }
  bool Pop() {
    CloseOtherKeys();
    stack_.pop_back();
    seen_.pop_back();
    field_ = kUnknown;
    return true;
  }
  // The keys no rule asks for, each with the depth of the object it is in: the innermost
  // open container's are always last. Honest uploads have none; an object with more than
  // kMaxOtherKeys of them is declined (the tree reader's check is linear, this one is not).
  static constexpr int kMaxOtherKeys = 16;
  size_t Depth() const { return stack_.size() + static_cast<size_t>(skip_depth_); }
  bool NewOtherKey(const std::string& k) {
    const size_t depth = Depth();
    int in_object = 0;
    for (auto it = other_keys_.rbegin(); it != other_keys_.rend() && it->first == depth; ++it) {
      if (it->second == k) return false;  // twice in one object
      if (++in_object == kMaxOtherKeys) return false;
    }
    other_keys_.emplace_back(depth, k);
    return true;
  }
  bool CloseOtherKeys() {  // as the innermost open container closes
    const size_t depth = Depth();
    while (!other_keys_.empty() && other_keys_.back().first == depth) other_keys_.pop_back();
    return true;
  }
  bool Took() {
    field_ = kUnknown;
    return true;
  }
  // A scalar no rule took: ignored under an unknown key of an object, declined otherwise.
  bool Scalar() const { return InObject() && field_ == kUnknown; }
  // An object or array no rule took: skipped whole under an unknown key, declined otherwise.
  bool Container() { return Scalar() && Deeper(); }
  bool InObject() const {
    const At at = stack_.back();
    return at == At::kRoot || at == At::kEntry || at == At::kCheckout || at == At::kLine;
  }

  static bool In(int64_t v, int64_t lo, int64_t hi) { return v >= lo && v <= hi; }

  bool Int(int64_t v) {
    const int64_t kAny = std::numeric_limits<int64_t>::max();
    switch (stack_.back()) {
      case At::kEntry:
        switch (field_) {
          case kSeq:
            return In(v, 1, kAny) && Set(&entry().seq, v);
          case kPoints:
            return In(v, -kMaxPoints, kMaxPoints) && Set(&entry().points, v);
          case kAtMs:
            return In(v, 0, kMaxTimeMs) && Set(&entry().at_ms, v);
          default:
            return Scalar();
        }
      case At::kCheckout: {
        Checkout& c = checkout();
        switch (field_) {
          case kCoCommittedAtMs:
            return In(v, 0, kMaxTimeMs) && Set(&c.committed_at_ms, v);
          case kCoSubtotal:
            return In(v, 0, kMaxCents) && Set(&c.subtotal_cents, v);
          case kCoTotalDue:
            return In(v, 0, kMaxCents) && Set(&c.total_due_cents, v);
          case kCoPointsEarned:
            return In(v, 0, kMaxPoints) && Set(&c.points_earned, v);
          case kCoRedeemedPoints:
            return In(v, 0, kMaxPoints) && Set(&c.redeemed_points, v);
          case kCoEligible:
            return In(v, 0, kMaxCents) && Set(&c.eligible_cents, v);
          case kCoRedeemable:
            return In(v, 0, kMaxCents) && Set(&c.redeemable_cents, v);
          default:
            return Scalar();
        }
      }
      case At::kLine: {
        CheckoutLine& l = line();
        switch (field_) {
          case kLnLine:
            return In(v, 0, static_cast<int64_t>(kMaxCheckoutLines) - 1) && Set(&l.line, v);
          case kLnQty:
            return Set(&l.qty, v);  // any integer: HQ's checks refuse the record alone
          case kLnUnitPrice:
            return Set(&l.unit_price_cents, v);
          case kLnTierDiscount:
            return In(v, 0, kMaxCents) && Set(&l.tier_discount_cents, v);
          case kLnCoupon:
            return In(v, 0, kMaxCents) && Set(&l.coupon_cents, v);
          case kLnRedeem:
            return In(v, 0, kMaxCents) && Set(&l.redeem_cents, v);
          case kLnNet:
            return In(v, 0, kMaxCents) && Set(&l.net_cents, v);
          case kLnNetBeforeRedeem:
            return In(v, 0, kMaxCents) && Set(&l.net_before_redeem_cents, v);
          default:
            return Scalar();
        }
      }
      default:
        return Scalar();
    }
  }

  template <typename T>
  bool Set(T* to, int64_t v) {
    *to = static_cast<T>(v);
    return Took();
  }
  bool Str(std::string* to, std::string& v, size_t max_bytes, size_t min_bytes = 0) {
    if (v.size() < min_bytes || v.size() > max_bytes) return false;
    *to = std::move(v);
    return Took();
  }
  bool HashBytes(std::string* to, const std::string& v) {
    if (!IsHexField(v, 2 * model::kHashBytes)) return false;
    *to = *HexDecode(v);
    return Took();
  }
  bool Member(uint64_t* to, const std::string& v) {
    auto id = ParseMemberId(v);
    if (!id) return false;
    *to = *id;
    return Took();
  }

  bool String(std::string& v) {
    switch (stack_.back()) {
      case At::kEntry: {
        Entry& e = entry();
        switch (field_) {
          case kEntryId:
            return IsHexField(v, 32) && Str(&e.entry_id, v, 32);
          case kTerminalId:
            return IsTerminalId(v) && Str(&e.terminal_id, v, 32);
          case kKind:
            return IsEntryKind(v) && Str(&e.kind, v, kMaxShortText);
          case kMemberId:
            return Member(&e.member_id, v);
          case kCheckoutId:
            return Str(&e.checkout_id, v, kMaxIdChars);
          case kRefundId:
            return Str(&e.refund_id, v, kMaxIdChars);
          case kDetail:
            return Str(&e.detail, v, kMaxDetailBytes);
          case kPrevHash:
            return HashBytes(&e.prev_hash, v);
          case kHash:
            return HashBytes(&e.hash, v);
          default:
            return Scalar();
        }
      }
      case At::kCheckout: {
        Checkout& c = checkout();
        switch (field_) {
          case kCoCheckoutId:
            return Str(&c.checkout_id, v, kMaxIdChars, 1);
          case kCoRequestHash:
            return IsHexField(v, 64, true) && Str(&c.request_hash, v, 64);
          case kCoMemberId: {
            uint64_t id = 0;
            if (!Member(&id, v)) return false;
            c.member_id = id;
            return true;
          }
          case kCoRulesVersion:
            return Str(&c.rules_version, v, kMaxShortText);
          case kCoCodeHash:
            return IsHexField(v, 64, true) && Str(&c.code_hash, v, 64);
          case kCoTender:
            return Str(&c.tender, v, kMaxShortText);
          case kCoCouponId:
            return Str(&c.coupon_id, v, kMaxIdChars);
          case kCoCashierId:
            return IsClientId(v) && Str(&c.cashier_id, v, kMaxIdChars, 1);
          case kCoRequestJson:
            return Str(&c.request_json, v, kMaxDocumentBytes);
          case kCoResponseJson:
            return Str(&c.response_json, v, kMaxDocumentBytes);
          default:
            return Scalar();
        }
      }
      case At::kLine: {
        CheckoutLine& l = line();
        switch (field_) {
          case kLnSku:
            return Str(&l.sku, v, kMaxShortText);
          case kLnCategory:
            return Str(&l.category, v, kMaxShortText);
          default:
            return Scalar();
        }
      }
      default:
        return Scalar();
    }
  }

  UploadRequest* out_;
  std::vector<At> stack_;
  std::vector<uint32_t> seen_;  // the known fields met in each open object
  std::vector<std::pair<size_t, std::string>> other_keys_;  // NewOtherKey
  int field_ = kUnknown;  // the known field whose value comes next
  int skip_depth_ = 0;
  bool done_ = false;
};

}  // namespace

bool ParseUploadFast(std::string_view body, UploadRequest* out) {
  // ParseJson's checks of the text, without scanning it twice more: a body the scanner reads
  // through is valid UTF-8 (it takes a string's bytes only as well-formed UTF-8, and no
  // other non-ASCII byte anywhere) and has no NUL (not outside a string, nor in one: a
  // control character, and \u is declined), and the handler declines past kMaxJsonDepth
  // levels.
  *out = UploadRequest{};
  UploadSax sax(out);
  return internal::JsonScanner<UploadSax>(body, &sax).Run() && sax.done();
}

Result<UploadRequest> ParseUploadRequest(std::string_view body) {
  UploadRequest out;
  if (ParseUploadFast(body, &out)) return out;
  return ParseMessage<UploadRequest>(body);
}

}  // namespace loyalty::sync
