// The admin API (behind the bearer token): members and their identities, device
// certificates and revocations, adjustments, unfreeze, tiers, coupons, the member and
// terminal views and the fleet view (POST /v1/admin/expire is the daily job's, in jobs.cc).
#include "service_internal.h"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "loyalty/base/encoding.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/json.h"
#include "loyalty/base/json_reader.h"
#include "loyalty/base/phone.h"
#include "loyalty/base/time.h"
#include "loyalty/codes/codes.h"
#include "loyalty/codes/mint.h"
#include "loyalty/hq/pii.h"

namespace loyalty::hq {

using namespace internal;

namespace {

// The fields the terminal view and the fleet view share.
json TerminalJson(const TerminalRecord& r, int64_t entries, int64_t checkouts, bool chain_ok) {
  return json{{"terminal_id", r.terminal_id},
              {"store_id", r.store_id},
              {"entries", entries},
              {"checkouts", checkouts},
              {"last_seq", r.head_seq},
              {"last_sync_at",
               r.last_sync_ms > 0 ? json(FormatRfc3339(r.last_sync_ms / 1000)) : json(nullptr)},
              {"chain_ok", chain_ok}};
}

json ConflictJson(const ConflictRecord& c) {
  auto parsed = ParseJsonObject(c.detail);
  json detail = parsed.ok() ? std::move(*parsed) : json::object();
  return json{{"kind", c.kind}, {"at", FormatRfc3339(FloorDiv(c.at_ms, 1000))}, {"detail", detail}};
}

// Admin bodies are read with the one JsonReader (loyalty/base/json_reader.h). Two forms are
// the admin API's own: a member id as a decimal string (the protocol's form) or a JSON
// integer, and a time as unix seconds or an RFC 3339 string.
bool ReadMemberId(const JsonReader& f, uint64_t* out) {
  const json* v = f.value();
  if (v == nullptr) return f.Require();
  if (v->is_number_integer()) return f.Uint(out);
  if (v->is_string()) {
    if (auto id = sync::ParseMemberId(v->get_ref<const std::string&>())) {
      *out = *id;
      return true;
    }
    return f.Fail("must be a decimal member id");
  }
  return f.Fail("must be a decimal member id, got " + DescribeJson(*v));
}

bool ReadOptMemberId(const JsonReader& f, std::optional<uint64_t>* out) {
  out->reset();
  if (f.absent()) return true;
  uint64_t id = 0;
  if (!ReadMemberId(f, &id)) return false;
  *out = id;
  return true;
}

// The end of the year 9999: every time HQ shows (and a terminal shows) is RFC 3339, whose
// years have four digits.
constexpr int64_t kMaxUnixSeconds = sync::kMaxTimeS;
// The largest member id an admin may give (docs/hq.md): 18 digits.
constexpr uint64_t kMaxMemberId = 999'999'999'999'999'999ULL;

bool ReadTime(const JsonReader& f, int64_t* out) {
  const json* v = f.value();
  if (v == nullptr) return f.Require();
  if (v->is_number_integer()) return f.Int(out, 0, kMaxUnixSeconds);
  if (v->is_string()) {
    if (auto t = ParseRfc3339(v->get_ref<const std::string&>())) {
      *out = *t;
      return true;
    }
  }
  return f.Fail("must be unix seconds or an RFC 3339 time, got " + DescribeJson(*v));
}

}  // namespace

Result<json> HqService::Impl::AdminBody(const http::Request& req) {
  auto j = ParseJsonObject(req.body.empty() ? std::string_view("{}") : std::string_view(req.body));
  if (!j.ok()) return j.status();
  return *j;
}

Status HqService::Impl::CheckIdentityFree(const std::string& channel,
                                          const std::string& external_id, uint64_t member_id) {
  auto holder = store.FindIdentity(channel, external_id);
  if (!holder.ok()) return holder.status();
  if (*holder && **holder != member_id) {
    return Status::Error(ErrorCode::kIdentityConflict, channel + " identity " + external_id +
                                                           " already belongs to member " +
                                                           std::to_string(**holder));
  }
  return Status::Ok();
}

http::Response HqService::Impl::CreateMember(const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  std::optional<uint64_t> member_id;
  std::string name;
  std::optional<std::string> phone, birthday, tier, card, store_id;
  std::vector<std::pair<std::string, std::string>> identities;
  std::optional<bool> phone_consent;
  ReadOptMemberId(r.Field("member_id"), &member_id);
  r.OptBool("phone_lookup_consent", &phone_consent);
  r.Str("name", &name, 1, 256);
  r.OptStr("phone", &phone, 1, 32);
  r.OptStr("birthday", &birthday, 5, 5);
  if (r.Has("tier")) r.OneOf("tier", &tier.emplace(), {"member", "vip", "black"});
  r.OptStr("card_number", &card, 16, 16);
  r.OptStr("store_id", &store_id, 1, 64);
  if (r.Has("identities")) {
    r.Objects("identities", 0, 64, [&](const JsonReader& i) {
      std::string ch, ext;
      if (i.Str("channel", &ch, 1, 64) && i.Str("external_id", &ext, 1, 256))
        identities.emplace_back(ch, ext);
    });
  }
  // Sign-up at the till (claims.cc): the claim of the sale the customer joined at.
  std::optional<std::string> claim_text;
  r.OptStr("claim", &claim_text, 1, codes::kMaxEnrolClaimChars);
  if (!r.ok()) return FromStatus(r.status());
  // Member ids are 1 to 18 digits: every store (SQLite's and PostgreSQL's signed 64-bit
  // integers, a terminal's ledger) holds them exactly, with room to spare; a larger id
  // (2^63 and up would not even be an integer there) is refused, not stored askew.
  if (member_id && (*member_id == 0 || *member_id > kMaxMemberId))
    return Error(ErrorCode::kBadRequest,
                 "member_id must be 1.." + std::to_string(kMaxMemberId) + " (1 to 18 digits)");
  // A phone as a cashier types it (base/phone.h): only what a number is written with, so
  // nothing but the number is stored, and no more digits than a look-up takes.
  if (phone && !ParseTypedPhone(*phone))
    return Error(ErrorCode::kBadRequest,
                 "phone must be 1-32 digits, spaces, '-', '+', '(' or ')' holding 5-20 digits");
  int birthday_month = 0;
  if (birthday) {
    const std::string& d = *birthday;
    bool ok = d[2] == '-' && std::isdigit(static_cast<unsigned char>(d[0])) &&
              std::isdigit(static_cast<unsigned char>(d[1])) &&
              std::isdigit(static_cast<unsigned char>(d[3])) &&
              std::isdigit(static_cast<unsigned char>(d[4]));
    int mm = ok ? (d[0] - '0') * 10 + (d[1] - '0') : 0,
        dd = ok ? (d[3] - '0') * 10 + (d[4] - '0') : 0;
    static constexpr int kDays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!ok || mm < 1 || mm > 12 || dd < 1 || dd > kDays[mm - 1]) {
      return Error(ErrorCode::kBadRequest, "birthday must be MM-DD");
    }
    birthday_month = mm;
  }
  if (card && (!std::all_of(card->begin(), card->end(), [](char c) {
        return c >= '0' && c <= '9';
      }) || !codes::IsLuhnValid(*card))) {
    return Error(ErrorCode::kBadRequest, "card_number must be 16 digits with a Luhn check digit");
  }

  std::optional<codes::EnrolClaim> claim;
  if (claim_text) {
    auto verified = VerifyClaim(*claim_text);
    if (!verified.ok()) {
      ReportClaimRefused(nullptr, member_id.value_or(0), verified.status());
      return FromStatus(verified.status());
    }
    claim = std::move(*verified);
  }
  std::optional<ClaimRecord> claimed;

  MemberRecord m;
  Status s = Write([&]() -> Status {
    uint64_t id = 0;
    if (member_id) {
      auto existing = store.GetMember(*member_id);
      if (!existing.ok()) return existing.status();
      if (*existing)
        return Status::Error(ErrorCode::kMemberExists,
                             "member " + std::to_string(*member_id) + " exists");
      id = *member_id;
    } else {
      for (int tries = 0; id == 0 && tries < 32; ++tries) {
        // Random ids below 2^53 stay exact in every JSON library, and say nothing about
        // how many members there are.
        std::string r = RandomBytes(8);
        uint64_t v = 0;
        for (unsigned char c : r) v = (v << 8) | c;
        v &= (uint64_t{1} << 53) - 1;
        auto existing = store.GetMember(v);
        if (!existing.ok()) return existing.status();
        if (v != 0 && !*existing) id = v;
      }
      if (id == 0) return Status::Error(ErrorCode::kInternal, "cannot pick a member id");
    }
    std::string card_number = card.value_or("");
    if (card_number.empty()) {
      for (int tries = 0; card_number.empty() && tries < 32; ++tries) {
        std::string body;
        std::string r = RandomBytes(16);
        for (size_t i = 0; i + opt.card_prefix.size() < 15; ++i)
          body.push_back(static_cast<char>('0' + static_cast<unsigned char>(r[i]) % 10));
        std::string c = codes::MakeCardNumber(opt.card_prefix, body);
        auto holder = store.FindIdentity("card", c);
        if (!holder.ok()) return holder.status();
        if (!*holder) card_number = c;
      }
      if (card_number.empty())
        return Status::Error(ErrorCode::kInternal, "cannot pick a card number");
    }
    if (Status s = CheckIdentityFree("card", card_number, id); !s.ok()) return s;
    for (const auto& [ch, ext] : identities) {
      if (Status s = CheckIdentityFree(ch, ext, id); !s.ok()) return s;
    }
    std::string mid = std::to_string(id);
    m.member_id = id;
    m.name_enc = pii.Encrypt(name, mid + "/name");
    m.display_name = MaskName(name);
    if (phone) {
      m.phone_enc = pii.Encrypt(*phone, mid + "/phone");
      m.phone_masked = MaskPhone(*phone);
      m.phone_hash = pii.PhoneHash(*phone);
    }
    if (birthday) m.birthday_enc = pii.Encrypt(*birthday, mid + "/birthday");
    m.birthday_month = birthday_month;
    m.card_number = card_number;
    m.phone_lookup_consent = phone_consent.value_or(false);
    m.tier = tier.value_or("member");
    m.created_at_ms = clock.now_ms();
    if (Status s = store.InsertMember(m); !s.ok()) return s;
    if (Status s = store.AddMemberState(id, m.created_at_ms, m.tier, m.status); !s.ok()) return s;
    if (Status s = store.PutIdentity("card", card_number, id); !s.ok()) return s;
    for (const auto& [ch, ext] : identities) {
      auto held = store.FindIdentity(ch, ext);
      if (!held.ok()) return held.status();
      if (*held) continue;  // listed twice in the request
      if (Status s = store.PutIdentity(ch, ext, id); !s.ok()) return s;
    }
    // Enrolled at a store: its terminals hold the member from their next run on.
    if (store_id) {
      auto fresh = store.AddStoreMember(*store_id, id, "enrolled", m.created_at_ms, ScopeSinceMs());
      if (!fresh.ok()) return fresh.status();
    }
    // Recorded with the member, or neither is: a refused claim enrols no one.
    if (claim) {
      auto c = RecordClaim(*claim, id);
      if (!c.ok()) return c.status();
      claimed = std::move(*c);
    }
    return Status::Ok();
  });
  if (!s.ok()) {
    if (claim) ReportClaimRefused(&*claim, m.member_id, s);
    return FromStatus(s);
  }
  json out{{"member_id", std::to_string(m.member_id)}, {"card_number", m.card_number}};
  if (claimed) {
    ReportClaimRecorded(*claimed);
    out["claim"] = ClaimJson(*claimed);
  }
  return JsonResponse(201, out);
}

Result<MemberRecord> HqService::Impl::RequireMember(const std::string& id_text) {
  auto id = sync::ParseMemberId(id_text);
  if (!id) return Status::Error(ErrorCode::kMemberUnknown, "no member " + id_text);
  if (tx) {  // inside a write: as the write sees it
    auto slot = Slot(*id);
    if (!slot.ok()) return slot.status();
    if (!(*slot)->m) return Status::Error(ErrorCode::kMemberUnknown, "no member " + id_text);
    return *(*slot)->m;
  }
  auto m = store.GetMember(*id);
  if (!m.ok()) return m.status();
  if (!*m) return Status::Error(ErrorCode::kMemberUnknown, "no member " + id_text);
  return **m;
}

http::Response HqService::Impl::AddIdentity(const std::string& id_text, const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  std::string ch, ext;
  r.Str("channel", &ch, 1, 64);
  r.Str("external_id", &ext, 1, 256);
  if (!r.ok()) return FromStatus(r.status());
  bool created = false;
  Status s = Transact([&]() -> Status {
    auto m = RequireMember(id_text);
    if (!m.ok()) return m.status();
    auto holder = store.FindIdentity(ch, ext);
    if (!holder.ok()) return holder.status();
    if (*holder) return CheckIdentityFree(ch, ext, m->member_id);
    created = true;
    if (Status s = store.PutIdentity(ch, ext, m->member_id); !s.ok()) return s;
    return store.TouchMember(m->member_id);
  });
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(created ? 201 : 200,
                      {{"member_id", id_text}, {"channel", ch}, {"external_id", ext}});
}

http::Response HqService::Impl::CertifyDevice(const std::string& id_text,
                                              const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  std::string pk_text;
  std::optional<int64_t> not_after;
  r.Str("device_public_key", &pk_text, 43, 43);
  r.OptInt("not_after", &not_after, 0, 0xffffffffll);
  if (!r.ok()) return FromStatus(r.status());
  auto pk = Base64UrlDecode(pk_text);
  if (!pk || pk->size() != 32)
    return Error(ErrorCode::kBadRequest, "device_public_key must be base64url of 32 bytes");
  if (opt.signing_seeds.empty()) return Error(ErrorCode::kInternal, "no signing key");
  auto key = opt.signing_seeds.rbegin();  // the highest key id is the current one
  int64_t na = not_after.value_or(
      std::min<int64_t>(0xffffffffll, clock.now_s() + opt.default_certificate_days * 86400));
  std::string cert;
  Status s = Transact([&]() -> Status {
    auto m = RequireMember(id_text);
    if (!m.ok()) return m.status();
    cert = codes::MakeCertificate(key->second, static_cast<uint8_t>(key->first), m->member_id, *pk,
                                  static_cast<uint32_t>(na));
    if (cert.size() != codes::kCertificateBytes)
      return Status::Error(ErrorCode::kInternal, "cannot sign the certificate");
    return store.PutDevice({pk_text, m->member_id, key->first, na, clock.now_ms()});
  });
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(201, {{"certificate", Base64UrlEncode(cert)}, {"key_id", key->first}});
}

http::Response HqService::Impl::RevokeDevice(const std::string& pk_text) {
  auto pk = Base64UrlDecode(pk_text);
  if (!pk || pk->size() != 32)
    return Error(ErrorCode::kBadRequest, "device public key must be base64url of 32 bytes");
  Status s = Transact([&] { return store.Revoke(pk_text, clock.now_ms()); });
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(200, {{"device_public_key", pk_text}, {"revoked", true}});
}

http::Response HqService::Impl::MemberView(const std::string& id_text) {
  auto m = RequireMember(id_text);
  if (!m.ok()) return FromStatus(m.status());
  auto n = store.CountMemberEntries(m->member_id);
  auto spend = MonthSpend(m->member_id, clock.now_s());
  auto conflicts = store.ConflictsOfMember(m->member_id);
  if (!n.ok()) return FromStatus(n.status());
  if (!spend.ok()) return FromStatus(spend.status());
  if (!conflicts.ok()) return FromStatus(conflicts.status());
  json c = json::array();
  for (const auto& x : *conflicts) c.push_back(ConflictJson(x));
  return JsonResponse(200,
                      {{"member_id", std::to_string(m->member_id)},
                       {"tier", m->tier},
                       {"status", m->status},
                       {"balance", m->balance},
                       {"entries", *n},
                       {"month_spend_cents", std::clamp<int64_t>(*spend, 0, sync::kMaxSpendCents)},
                       {"phone_lookup_consent", m->phone_lookup_consent},
                       {"conflicts", c}});
}

http::Response HqService::Impl::Adjust(const std::string& id_text, const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  std::string adj_id, reason;
  int64_t points = 0;
  r.Str("adjustment_id", &adj_id, 1, 64);
  r.Int("points", &points, -1'000'000'000, 1'000'000'000);
  r.Str("reason", &reason, 0, 256);
  if (!r.ok()) return FromStatus(r.status());
  json out;
  Status s = Write([&]() -> Status {
    auto m = RequireMember(id_text);
    if (!m.ok()) return m.status();
    auto prior = store.GetAdjustment(adj_id);
    if (!prior.ok()) return prior.status();
    if (*prior) {
      const auto& p = **prior;
      if (p.member_id != m->member_id || p.points != points || p.reason != reason) {
        return Status::Error(ErrorCode::kIdempotencyConflict,
                             "adjustment " + adj_id + " exists with other values");
      }
      out = {{"adjustment_id", p.adjustment_id}, {"entry_id", p.entry_id}, {"member_id", id_text}};
      return Status::Ok();
    }
    auto e = AppendHqEntry("adjust", m->member_id, points,
                           {{"adjustment_id", adj_id}, {"reason", reason}});
    if (!e.ok()) return e.status();
    if (Status s = ApplyEntry(*e); !s.ok()) return s;
    if (Status s =
            store.PutAdjustment({adj_id, m->member_id, points, reason, e->entry_id, e->at_ms});
        !s.ok()) {
      return s;
    }
    out = {{"adjustment_id", adj_id}, {"entry_id", e->entry_id}, {"member_id", id_text}};
    return Status::Ok();
  });
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(201, out);
}

http::Response HqService::Impl::Unfreeze(const std::string& id_text, const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  std::string reason;
  r.Str("reason", &reason, 0, 256);
  if (!r.ok()) return FromStatus(r.status());
  Status s = Write([&]() -> Status {
    auto m = RequireMember(id_text);
    if (!m.ok()) return m.status();
    if (m->status != "frozen") return Status::Ok();  // nothing to lift: repeating is harmless
    auto e = AppendHqEntry("unfreeze", m->member_id, 0,
                           {{"reason", reason}, {"frozen_reason", m->frozen_reason}});
    if (!e.ok()) return e.status();
    m->status = "active";
    m->frozen_reason.clear();
    m->unfrozen_at_ms = e->at_ms;
    return SaveMember(*m, m->tier, "frozen");
  });
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(200, {{"member_id", id_text}, {"status", "active"}});
}

http::Response HqService::Impl::SetTier(const std::string& id_text, const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  std::string tier;
  r.OneOf("tier", &tier, {"member", "vip", "black"});
  if (!r.ok()) return FromStatus(r.status());
  Status s = Write([&]() -> Status {
    auto m = RequireMember(id_text);
    if (!m.ok()) return m.status();
    if (m->tier == tier) return Status::Ok();
    auto e = AppendHqEntry("tier_change", m->member_id, 0, {{"from", m->tier}, {"to", tier}});
    if (!e.ok()) return e.status();
    const std::string old_tier = m->tier;
    m->tier = tier;
    return SaveMember(*m, old_tier, m->status);
  });
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(200, {{"member_id", id_text}, {"tier", tier}});
}

// The member's consent to be found by phone number at the till (docs/pos-api.md, "Phone
// look-up"): the member's snapshot changes, so the store's terminals gain or drop the
// look-up hash at their next run.
http::Response HqService::Impl::SetPhoneConsent(const std::string& id_text,
                                                const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  bool consent = false;
  r.Bool("consent", &consent);
  if (!r.ok()) return FromStatus(r.status());
  Status s = Write([&]() -> Status {
    auto m = RequireMember(id_text);
    if (!m.ok()) return m.status();
    if (m->phone_lookup_consent == consent) return Status::Ok();  // repeating is harmless
    m->phone_lookup_consent = consent;
    return SaveMember(*m, m->tier, m->status);
  });
  if (!s.ok()) return FromStatus(s);
  Report("phone_consent_changed", {{"member_id", id_text}, {"consent", consent}});
  return JsonResponse(200, {{"member_id", id_text}, {"phone_lookup_consent", consent}});
}

http::Response HqService::Impl::CreateCoupon(const http::Request& req) {
  auto j = AdminBody(req);
  if (!j.ok()) return FromStatus(j.status());
  JsonReader r(*j, ErrorCode::kBadRequest);
  CouponRecord c;
  model::Coupon& k = c.coupon;
  r.Str("coupon_id", &k.coupon_id, 1, 64);
  ReadMemberId(r.Field("member_id"), &k.member_id);
  r.OneOf("kind", &k.kind, {"amount_off", "percent_off"});
  // The amount for the kind is required; the other one may be left out.
  if (k.kind == "amount_off" || r.Has("value_cents"))
    r.Int("value_cents", &k.value_cents, 0, 100'000'000'000);
  if (k.kind == "percent_off" || r.Has("bp")) r.Int("bp", &k.bp, 0, 10000);
  r.Int("min_spend_cents", &k.min_spend_cents, 0, 100'000'000'000);
  ReadTime(r.Field("valid_from"), &k.valid_from_s);
  ReadTime(r.Field("valid_to"), &k.valid_to_s);
  if (!r.ok()) return FromStatus(r.status());
  if (k.valid_to_s < k.valid_from_s)
    return Error(ErrorCode::kBadRequest, "valid_to is before valid_from");
  c.body_hash = DigestHex(Sha256(Dump(sync::ToJson(c.coupon))));
  Status s = Transact([&]() -> Status {
    if (k.member_id != 0) {
      auto m = store.GetMember(k.member_id);
      if (!m.ok()) return m.status();
      if (!*m)
        return Status::Error(ErrorCode::kMemberUnknown, "no member " + std::to_string(k.member_id));
    }
    auto prior = store.GetCoupon(k.coupon_id);
    if (!prior.ok()) return prior.status();
    if (*prior) {
      if ((*prior)->body_hash != c.body_hash) {
        return Status::Error(ErrorCode::kIdempotencyConflict,
                             "coupon " + k.coupon_id + " exists with other values");
      }
      return Status::Ok();
    }
    return store.PutCoupon(c);
  });
  if (!s.ok()) return FromStatus(s);
  return JsonResponse(201, {{"coupon_id", k.coupon_id}});
}

http::Response HqService::Impl::TerminalView(const std::string& tid) {
  auto t = store.GetTerminal(tid);
  if (!t.ok()) return FromStatus(t.status());
  auto n = store.CountEntries(tid);
  if (!n.ok()) return FromStatus(n.status());
  if (!*t && *n == 0) return Error(ErrorCode::kNotFound, "terminal " + tid + " was never seen");
  auto checkouts = store.CountCheckouts(tid);
  auto conflicts = store.ConflictsOfTerminal(tid);
  if (!checkouts.ok()) return FromStatus(checkouts.status());
  if (!conflicts.ok()) return FromStatus(conflicts.status());
  json c = json::array();
  bool chain_ok = true;
  for (const auto& x : *conflicts) {
    c.push_back(ConflictJson(x));
    if (x.terminal_id == tid &&
        (x.kind == "chain_fork" || x.kind == "chain_gap" || x.kind == "entry_mismatch")) {
      chain_ok = false;
    }
  }
  json view =
      TerminalJson(t->value_or(TerminalRecord{tid, "", 0, 0, 0, ""}), *n, *checkouts, chain_ok);
  view["conflicts"] = std::move(c);
  return JsonResponse(200, view);
}

// GET /v1/terminals: every terminal HQ has seen (a row of the terminals table: any that called
// hello, entries or changes), by terminal id, a page at a time; ?store_id= and ?silent= filter.
// No conflict is ever resolved at HQ, so every conflict naming a terminal is pending.
http::Response HqService::Impl::TerminalList(const http::Request& req) {
  constexpr uint64_t kMaxLimit = 1000;
  TerminalFilter f;
  uint64_t limit = 100;
  if (auto it = req.query.find("limit"); it != req.query.end()) {
    auto v = sync::ParseMemberId(it->second);
    if (!v || *v < 1 || *v > kMaxLimit)
      return Error(ErrorCode::kBadRequest, "limit must be 1..1000, got " + it->second);
    limit = *v;
  }
  if (auto it = req.query.find("cursor"); it != req.query.end()) {
    if (!sync::IsTerminalId(it->second))
      return Error(ErrorCode::kBadRequest, "cursor must be a terminal id (the next_cursor given)");
    f.after = it->second;
  }
  if (auto it = req.query.find("store_id"); it != req.query.end()) {
    if (it->second.empty() || it->second.size() > sync::kMaxIdChars)
      return Error(ErrorCode::kBadRequest,
                   "store_id must be 1.." + std::to_string(sync::kMaxIdChars) + " bytes");
    f.store_id = it->second;
  }
  const int64_t now_ms = clock.now_ms();
  if (auto it = req.query.find("silent"); it != req.query.end()) {
    if (it->second == "true")
      f.synced_before_ms = now_ms - kSilentAfterMs;
    else if (it->second == "false")
      f.synced_since_ms = now_ms - kSilentAfterMs;
    else
      return Error(ErrorCode::kBadRequest, "silent must be one of true, false");
  }
  f.limit = static_cast<int64_t>(limit) + 1;  // one more tells whether a next page exists
  auto rows = store.ListTerminals(f);
  if (!rows.ok()) return FromStatus(rows.status());
  const bool more = rows->size() > limit;
  if (more) rows->resize(limit);
  json list = json::array();
  for (const auto& row : *rows) {
    json j = TerminalJson(row.terminal, row.entries, row.checkouts, row.chain_conflicts == 0);
    j["pending_conflicts"] = row.conflicts;
    j["silent"] = row.terminal.last_sync_ms < now_ms - kSilentAfterMs;
    list.push_back(std::move(j));
  }
  json next = more ? json(rows->back().terminal.terminal_id) : json(nullptr);
  return JsonResponse(200, {{"terminals", std::move(list)}, {"next_cursor", std::move(next)}});
}

}  // namespace loyalty::hq
