#include "scan_pipeline.h"

#include <string>

#include "log.h"
#include "loyalty/base/hash.h"
#include "loyalty/base/time.h"

namespace loyalty::agent {

nlohmann::json IdentifyScan(const drivers::Scan& s, checkout::CheckoutService& service, ledger::Ledger& reader) {
  nlohmann::json ev{{"at", FormatRfc3339(s.at_ms / 1000)}, {"scanner_id", s.scanner_id}};
  std::string hash = s.overlong ? "" : ShortHash(s.text);
  if (s.overlong) {
    ev["result"] = "rejected";
    ev["error"] = {{"code", "code_malformed"}, {"message", "the scan is longer than 4096 bytes"}};
    LogEvent(Level::kWarn, "scan_rejected", {{"scanner_id", s.scanner_id}, {"code", "code_malformed"}, {"reason", "overlong"}});
  } else {
    auto r = service.Identify(reader, {{"code", s.text}});
    if (r.status == 200) {
      ev["result"] = "member";
      ev["identification"] = r.body["identification"];
      ev["member"] = r.body["member"];
      LogEvent(Level::kInfo, "scan_accepted",
               {{"scanner_id", s.scanner_id}, {"code_hash", hash}, {"kind", r.body["identification"]["kind"]},
                {"member_id", r.body["member"]["member_id"]}});
    } else if (r.body["error"]["code"] == "not_a_member_code") {
      ev["result"] = "not_a_member_code";
      ev["text"] = s.text;
      LogEvent(Level::kInfo, "scan_not_member_code", {{"scanner_id", s.scanner_id}, {"code_hash", hash}, {"bytes", s.text.size()}});
    } else {
      ev["result"] = "rejected";
      ev["error"] = r.body["error"];
      LogEvent(Level::kWarn, "scan_rejected",
               {{"scanner_id", s.scanner_id}, {"code_hash", hash}, {"code", r.body["error"]["code"]}});
    }
  }
  if (!s.symbology.empty()) ev["symbology"] = s.symbology;
  return ev;
}

}  // namespace loyalty::agent
