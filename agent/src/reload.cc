#include "reload.h"

#include "log.h"

namespace loyalty::agent {

Result<std::shared_ptr<const rules::Rules>> LoadRules(const config::AgentConfig& cfg) {
  if (cfg.rules_file.empty())
    return std::shared_ptr<const rules::Rules>(
        std::make_shared<rules::Rules>(rules::Rules::Defaults()));
  auto r = rules::LoadRulesToml(cfg.rules_file);
  if (!r.ok()) return r.status();
  return std::shared_ptr<const rules::Rules>(std::make_shared<rules::Rules>(std::move(*r)));
}

void ReloadConfig(const std::string& config_path, const std::atomic<bool>& hq_rules_adopted,
                  checkout::CheckoutService& service, Scanners& scanners) {
  // A bad file keeps the old configuration.
  auto cfg = config::LoadAgentConfig(config_path);
  if (!cfg.ok()) {
    LogEvent(Level::kError, "config_reload_failed", {{"message", cfg.status().message()}});
    return;
  }
  auto level = ParseLevel(cfg->log_level);
  auto rules = LoadRules(*cfg);
  if (!rules.ok()) {
    LogEvent(Level::kError, "config_reload_failed", {{"message", rules.status().message()}});
    return;
  }
  if (level.ok()) SetLogLevel(*level);
  // Once HQ's rules are in force the local file no longer applies.
  if (!hq_rules_adopted) service.SetRules(*rules);
  if (Status sc = scanners.Reload(cfg->scanners); !sc.ok())
    LogEvent(Level::kError, "config_reload_failed", {{"message", sc.message()}});
  LogEvent(Level::kInfo, "config_reloaded",
           {{"rules_version", service.rules()->version}, {"log_level", cfg->log_level}});
}

}  // namespace loyalty::agent
