// The configuration the daemon reads again on SIGHUP: the log level, the rules file (until
// HQ's rules are in force) and the scanners. The rest of agent.toml takes a restart.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "loyalty/base/status.h"
#include "loyalty/checkout/service.h"
#include "loyalty/config/config.h"
#include "loyalty/rules/rules.h"
#include "scanners.h"

namespace loyalty::agent {

// The local rules: the configuration's rules file, or the defaults when it names none.
// At start-up (before any rules HQ pushed) and on reload.
Result<std::shared_ptr<const rules::Rules>> LoadRules(const config::AgentConfig& cfg);

// Event-loop thread (SIGHUP). Reads `config_path` again and applies its reloadable parts,
// then logs config_reloaded; a file that does not load, or rules that do not, keep the old
// configuration and log config_reload_failed. Once `hq_rules_adopted`, the rules file no
// longer applies.
void ReloadConfig(const std::string& config_path, const std::atomic<bool>& hq_rules_adopted,
                  checkout::CheckoutService& service, Scanners& scanners);

}  // namespace loyalty::agent
