// The rules versions HQ publishes (the current one, at start or first use) and reads back (any
// it ever published, to price an uploaded checkout again with the version it names).
#include "service_internal.h"

#include <memory>
#include <string>

namespace loyalty::hq {

using namespace internal;

// Stores the current version with its content once; a version is immutable.
Status HqService::Impl::PublishRules() {
  if (published) return Status::Ok();
  const std::string text = Dump(rules::RulesToJson(current));
  if (current.version == "default" && !(current == rules::Rules::Defaults())) {
    return Status::Error(
        ErrorCode::kConfigInvalid,
        "rules version \"default\" names the defaults of loyalty-rules.md; give changed rules "
        "another version");
  }
  Status s = Transact([&]() -> Status {
    auto prior = store.GetMeta("rules:" + current.version);
    if (!prior.ok()) return prior.status();
    if (*prior && **prior != text) {
      return Status::Error(ErrorCode::kConfigInvalid,
                           "rules version \"" + current.version +
                               "\" was published before with other values; give the changed "
                               "rules a new version");
    }
    if (!*prior) {
      if (Status s = store.PutMeta("rules:" + current.version, text); !s.ok()) return s;
    }
    return store.PutMeta("rules_current", current.version);
  });
  if (!s.ok()) return s;
  versions[current.version] = std::make_shared<const rules::Rules>(current);
  published = true;
  return Status::Ok();
}

// A version HQ published (or "default"); nullptr for one it never did.
Result<std::shared_ptr<const rules::Rules>> HqService::Impl::RulesVersion(const std::string& v) {
  if (auto it = versions.find(v); it != versions.end()) return it->second;
  std::shared_ptr<const rules::Rules> found;
  if (v == "default") {
    found = std::make_shared<const rules::Rules>(rules::Rules::Defaults());
  } else {
    auto text = store.GetMeta("rules:" + v);
    if (!text.ok()) return text.status();
    if (!*text) return found;
    auto j = ParseJsonObject(**text);
    if (!j.ok())
      return Status::Error(ErrorCode::kInternal, "stored rules " + v + ": " + j.status().message());
    auto r = rules::RulesFromJson(*j);
    if (!r.ok())
      return Status::Error(ErrorCode::kInternal, "stored rules " + v + ": " + r.status().message());
    found = std::make_shared<const rules::Rules>(std::move(*r));
  }
  versions[v] = found;
  return found;
}

}  // namespace loyalty::hq
