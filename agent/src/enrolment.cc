#include "enrolment.h"

#include <nlohmann/json.hpp>

#include "loyalty/base/time.h"

namespace loyalty::agent {

namespace {
constexpr std::string_view kPrefix = "/v1/checkouts/";
constexpr std::string_view kPlaceholder = "{claim}";
}  // namespace

std::optional<EnrolmentRoute> ParseEnrolmentPath(std::string_view path) {
  if (path.substr(0, kPrefix.size()) != kPrefix) return std::nullopt;
  path.remove_prefix(kPrefix.size());
  const size_t slash = path.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  EnrolmentRoute r;
  r.checkout_id = std::string(path.substr(0, slash));
  const std::string_view rest = path.substr(slash + 1);
  if (rest == "enrolment")
    r.format = EnrolmentFormat::kJson;
  else if (rest == "enrolment.png")
    r.format = EnrolmentFormat::kPng;
  else if (rest == "enrolment.svg")
    r.format = EnrolmentFormat::kSvg;
  else
    return std::nullopt;
  return r;
}

std::string EnrolmentUrl(std::string_view url_template, std::string_view claim) {
  std::string out(url_template);
  const size_t at = out.find(kPlaceholder);
  if (at != std::string::npos) out.replace(at, kPlaceholder.size(), claim);
  return out;
}

Result<http::Response> EnrolmentResponse(const EnrolmentOptions& options,
                                         const checkout::EnrolmentOutcome& outcome,
                                         EnrolmentFormat format) {
  const std::string url = EnrolmentUrl(options.url_template, outcome.claim);
  http::Response r;
  switch (format) {
    case EnrolmentFormat::kJson:
      r.body = nlohmann::json{{"checkout_id", outcome.checkout_id},
                              {"url", url},
                              {"claim", outcome.claim},
                              {"expires_at", FormatRfc3339(outcome.expires_at_s)}}
                   .dump();
      return r;
    case EnrolmentFormat::kPng: {
      auto png = qr::MakePng(url, options.qr);
      if (!png.ok()) return Status::Error(ErrorCode::kInternal, png.status().message());
      r.content_type = "image/png";
      r.body = std::move(*png);
      return r;
    }
    case EnrolmentFormat::kSvg: {
      auto svg = qr::MakeSvg(url, options.qr);
      if (!svg.ok()) return Status::Error(ErrorCode::kInternal, svg.status().message());
      r.content_type = "image/svg+xml";
      r.body = std::move(*svg);
      return r;
    }
  }
  return Status::Error(ErrorCode::kInternal, "unknown enrolment format");
}

}  // namespace loyalty::agent
