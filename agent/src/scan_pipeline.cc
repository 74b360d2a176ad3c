#include "scan_pipeline.h"

#include <string>

#include "log.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/time.h"
#include "loyalty/checkout/views.h"
#include "loyalty/http/errors.h"

namespace loyalty::agent {

nlohmann::json IdentifyScan(const drivers::Scan& s, checkout::CheckoutService& service,
                            ledger::Ledger& reader) {
  nlohmann::json ev{{"at", FormatRfc3339(s.at_ms / 1000)}, {"scanner_id", s.scanner_id}};
  std::string hash = s.overlong ? "" : ShortHash(s.text);
  if (s.overlong) {
    ev["result"] = "rejected";
    ev["error"] = {{"code", "code_malformed"}, {"message", "the scan is longer than 4096 bytes"}};
    LogEvent(Level::kWarn, "scan_rejected",
             {{"scanner_id", s.scanner_id}, {"code", "code_malformed"}, {"reason", "overlong"}});
  } else {
    auto r = service.Identify(reader, s.text);
    if (r.ok()) {
      ev["result"] = "member";
      auto view = nlohmann::json::parse(checkout::ViewJson(*r));
      ev["identification"] = std::move(view["identification"]);
      ev["member"] = std::move(view["member"]);
      LogEvent(Level::kInfo, "scan_accepted",
               {{"scanner_id", s.scanner_id},
                {"code_hash", hash},
                {"kind", std::string(codes::CodeKindName(r->kind))},
                {"member_id", std::to_string(r->member.member.member_id)}});
    } else if (r.status().code() == ErrorCode::kNotAMemberCode) {
      ev["result"] = "not_a_member_code";
      ev["text"] = s.text;
      LogEvent(Level::kInfo, "scan_not_member_code",
               {{"scanner_id", s.scanner_id}, {"code_hash", hash}, {"bytes", s.text.size()}});
    } else {
      // As the POS API would answer it: an internal code is shown as "internal".
      std::string code(ErrorCodeName(http::PublicCode(r.status().code())));
      ev["result"] = "rejected";
      ev["error"] = {{"code", code}, {"message", r.status().message()}};
      LogEvent(Level::kWarn, "scan_rejected",
               {{"scanner_id", s.scanner_id}, {"code_hash", hash}, {"code", code}});
    }
  }
  if (!s.symbology.empty()) ev["symbology"] = s.symbology;
  return ev;
}

}  // namespace loyalty::agent
