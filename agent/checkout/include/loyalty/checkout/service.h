// The checkout use cases: identify, quote, commit, refund, and the member and checkout
// views. Each takes a parsed POS API request and returns Result<Outcome>
// (checkout/outcomes.h): the outcome, or a Status whose ErrorCode is the contract's.
// Rendering outcomes as JSON is checkout/views.h's job, and errors' HTTP statuses
// loyalty/http/errors.h's.
//
// CheckoutService holds no database connection of its own: read-only use cases take the
// caller's reader Ledger (one per thread), Commit and Refund take the single writer Ledger
// and must be called on the writer thread only. The service's own state (identifications,
// the current rules) is guarded internally, so the methods may be called from the event
// loop and the writer thread at once.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "loyalty/base/clock.h"
#include "loyalty/base/status.h"
#include "loyalty/base/timezone.h"
#include "loyalty/checkout/outcomes.h"
#include "loyalty/checkout/requests.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/return_token.h"
#include "loyalty/codes/trusted_time.h"
#include "loyalty/ledger/ledger.h"
#include "loyalty/rules/rules.h"

namespace loyalty::checkout {

// Things the service reports for logs and metrics; called on the thread of the use case.
struct ServiceEvents {
  std::function<void(const std::string& event, const nlohmann::json& fields)> log;
};

// A sale as HQ holds it, asked for before a refund (docs/pos-api.md, "Returns anywhere").
struct RemoteSale {
  std::optional<model::Checkout> checkout;  // nullopt: HQ holds no accepted checkout of that id
  // Refunds of it HQ accepted from other terminals (HQ leaves out this terminal's own).
  std::vector<model::Refund> other_refunds;
};
// Asks HQ for the checkout `checkout_id` sold at terminal `sold_at` (and puts its member in
// the ledger); nullopt when HQ could not be asked or did not answer in time.
using SaleFetcher = std::function<std::optional<RemoteSale>(const std::string& sold_at,
                                                            const std::string& checkout_id)>;
// What PrepareRefund found out before the refund, off the writer thread.
struct PreparedRefund {
  std::optional<RemoteSale> remote;  // what HQ said of the sale, when asked and answered
  std::string receipt;               // the body's receipt, when it verified...
  std::optional<codes::ReturnBasis> receipt_basis;  // ...and what it says (checked once)
};

struct ServiceOptions {
  std::string terminal_id;
  std::string store_id;
  int64_t identification_ttl_s = 1800;  // pos-api.md: usable for 30 minutes
  int phone_lookups_per_hour = 30;      // [api] phone_lookups_per_hour; 0: no phone look-up
  size_t max_identifications = 10000;
};

class CheckoutService {
 public:
  CheckoutService(ServiceOptions opts, const Clock& clock, const codes::CodeVerifier& verifier,
                  codes::TrustedTime& trusted_time, TimeZone tz,
                  std::shared_ptr<const rules::Rules> rules, ServiceEvents events = {});

  // Read side: any thread, with that thread's reader.
  // `code`: the scanned or typed text.
  Result<IdentifyOutcome> Identify(ledger::Ledger& reader, std::string_view code);
  Result<QuoteOutcome> Quote(ledger::Ledger& reader, const nlohmann::json& body);
  Result<MemberDetail> GetMember(ledger::Ledger& reader, const std::string& member_id);
  Result<CheckoutRecord> GetCheckout(ledger::Ledger& reader, const std::string& checkout_id);
  // The sign-up claim of a checkout committed here without a member, signed with the receipt
  // key (docs/pos-api.md, "Sign-up at the till"), expiring with the current rules' refund
  // window. Errors: bad_request (the id), checkout_unknown, checkout_has_member,
  // checkout_refunded (refunded here, even in part), code_expired (the sale is older than
  // the refund window), unavailable (no certified receipt key yet: the first sync makes
  // one; or a failed read), ledger_damaged.
  Result<EnrolmentOutcome> Enrolment(ledger::Ledger& reader, const std::string& checkout_id);

  // Write side: the writer thread only. Each is one transaction; on any error nothing changes.
  // Every use case refuses with unavailable when a ledger read it needs fails (never
  // answering as if the row were absent), and with ledger_damaged while the ledger is
  // latched damaged.
  Result<CommitOutcome> Commit(ledger::Ledger& writer, const nlohmann::json& body);
  Result<RefundOutcome> Refund(ledger::Ledger& writer, const nlohmann::json& body);
  // The same with what HQ said of the sale (PrepareRefund): a refund of another terminal's
  // checkout needs it or the receipt's return token; one of this terminal's own counts the
  // units HQ knows were refunded at other terminals.
  Result<RefundOutcome> Refund(ledger::Ledger& writer, const nlohmann::json& body,
                               const PreparedRefund& prepared);
  // On the caller's thread (never the writer's), before Refund: verifies the body's receipt
  // and asks the sale fetcher about the sale the body names (sold_at, the receipt's
  // terminal, or this terminal), unless the refund id was used already.
  PreparedRefund PrepareRefund(ledger::Ledger& reader, const nlohmann::json& body);
  void SetSaleFetcher(SaleFetcher fetch);
  // The receipt key (a raw Ed25519 seed) and HQ's certificate of it: commits carry a
  // return token from then on. Any thread.
  void SetReceiptKey(std::string seed32, std::string certificate);
  // HQ's public keys ([codes] hq_public_keys): what receipt keys' certificates verify with.
  const std::map<int, std::string>& hq_public_keys() const {
    return verifier_.config().hq_public_keys;
  }

  std::shared_ptr<const rules::Rules> rules() const;
  void SetRules(std::shared_ptr<const rules::Rules> r);

  // Online look-up (docs/sync.md, "Members this terminal does not hold"): when Identify
  // meets a member this terminal does not hold — a card or channel card it has no identity
  // for, or a dynamic code of a member not in its ledger — it asks `lookup`, which asks HQ
  // within a short timeout and puts what HQ sent into the ledger; true when it did, and
  // Identify then answers from the ledger. Unset, or false: the offline rules
  // (member_unknown, or a provisional member for a dynamic code). Set before serving.
  void SetMemberLookup(std::function<bool(const codes::Identified&)> lookup);
  // Quote and commit name the member by a code too, often with no identify before: a card
  // or channel card this terminal holds no identity for is asked of HQ here, on the
  // caller's thread (never the writer's), before the use case runs. A dynamic code of a
  // member not held is the provisional member of member-codes.md there (Identify asks).
  // A body the use case refuses whatever the member (400 bad_request, a commit's 409
  // rules_changed) asks HQ nothing: such a refusal changes nothing, not even the members
  // the terminal holds.
  void LookUpIfUnheld(ledger::Ledger& reader, const nlohmann::json& body, bool is_commit);

  // Phone look-up (docs/pos-api.md, "Phone look-up"): `typed` is what the cashier typed.
  // The store's look-up keys hash it and the ledger is searched; a number found nowhere is
  // asked of HQ through the phone fetcher. member_unknown for no match (whatever the
  // reason); rate_limited beyond phone_lookups_per_hour in any trailing hour. The number is
  // never logged, stored or kept. Any thread, with that thread's reader.
  Result<IdentifyOutcome> LookupPhone(ledger::Ledger& reader, std::string_view typed);
  // The store's look-up keys HQ sent, (key id, 32 raw bytes), the current first. Any thread.
  void SetPhoneKeys(std::vector<std::pair<int64_t, std::string>> keys);
  // Asks HQ for a consenting member with these look-up digits and puts them into the ledger:
  // their id, or nullopt (none, or HQ could not be asked). Set before serving.
  void SetPhoneFetcher(std::function<std::optional<uint64_t>(const std::string& digits)> fetch);

  // Trusted "now" in unix seconds (the wall clock unless it is untrusted).
  int64_t NowS() const;
  int64_t NowMs() const;

 private:
  struct Identification {
    codes::Identified id;
    int64_t expires_at_s = 0;
  };
  struct Resolved;  // defined in service.cc
  std::function<bool(const codes::Identified&)> lookup_;

  Result<Resolved> ResolveMember(ledger::Ledger& l, const nlohmann::json& body,
                                 const std::string& checkout_id, int64_t now_s);
  Result<Resolved> ResolveIdentified(ledger::Ledger& l, const codes::Identified& id,
                                     const std::string& checkout_id, int64_t now_s);
  // The member view of pos-api.md; lots: the member's lots when the caller has them already
  // (else they are read). A failed read of the lots is the error.
  Result<MemberView> ViewMember(ledger::Ledger& l, const ledger::MemberRow& m, bool provisional,
                                int64_t now_s, const rules::Rules& r,
                                const std::vector<model::Lot>* lots = nullptr);
  int64_t AvailableBalance(const std::vector<model::Lot>& lots, int64_t now_s) const;
  bool IsBirthdayMonth(const ledger::MemberRow& m, int64_t now_s) const;
  // lots: the member's lots, kept up to date, when the caller holds them (else read).
  // Commit of a checkout id not committed before (Commit answers replays).
  Result<CommitOutcome> CommitNew(ledger::Ledger& w, const nlohmann::json& body,
                                  const std::string& request_hash);
  Result<RefundOutcome> RefundNew(ledger::Ledger& w, const nlohmann::json& body,
                                  const std::string& request_hash, const PreparedRefund& prepared);
  std::optional<std::string> ReturnToken(const std::string& checkout_id,
                                         std::optional<uint64_t> member_id, int64_t at_ms,
                                         const std::string& rules_version,
                                         const rules::Quote& quote, const CheckoutRequest& req);
  Status ApplyPoints(ledger::Ledger& w, ledger::MemberRow& m, int64_t delta, int64_t now_s,
                     const std::string& entry_id, const rules::Rules& r,
                     std::vector<model::Lot>* lots = nullptr);
  std::string RememberIdentification(const codes::Identified& id, int64_t now_s);
  // A committed checkout of this terminal for the read routes: bad_request for an id that
  // is not one, ledger_damaged, unavailable for a failed read, checkout_unknown.
  Result<model::Checkout> CommittedCheckout(ledger::Ledger& reader, const std::string& checkout_id);
  // The answer of identify and phone look-up for a resolved member, remembered.
  Result<IdentifyOutcome> IdentifyAnswer(ledger::Ledger& reader, const codes::Identified& id,
                                         const Resolved& resolved, int64_t now_s);
  std::optional<Identification> FindIdentification(const std::string& id, int64_t now_s);
  void Log(const std::string& event, const nlohmann::json& fields);

  ServiceOptions opts_;
  const Clock& clock_;
  const codes::CodeVerifier& verifier_;
  codes::TrustedTime& trusted_time_;
  TimeZone tz_;
  ServiceEvents events_;

  mutable std::mutex mu_;
  std::shared_ptr<const rules::Rules> rules_;
  std::map<std::string, Identification> identifications_;
  std::set<std::pair<int64_t, std::string>> identification_expiries_;  // (expires_at_s, id)
  SaleFetcher fetch_sale_;
  std::string receipt_seed_, receipt_cert_;                  // guarded by mu_
  codes::ReceiptKeyCache receipt_certs_;                     // thread-safe
  std::vector<std::pair<int64_t, std::string>> phone_keys_;  // guarded by mu_
  std::deque<int64_t> phone_lookups_;                        // mono ms, guarded by mu_
  std::function<std::optional<uint64_t>(const std::string&)> fetch_phone_;
};

}  // namespace loyalty::checkout
