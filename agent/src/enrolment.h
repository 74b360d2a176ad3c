// Sign-up at the till (docs/pos-api.md, "Sign-up at the till"): the POS API's enrolment
// routes. For a checkout committed without a member, GET /v1/checkouts/<id>/enrolment answers
// the join page's link with the sale's signed claim in it; .png and .svg answer the same link
// as a QR code (agent/qr) for the receipt or the customer display.
//
// The claim is the checkout service's (CheckoutService::Enrolment, on the caller's reader);
// this file puts it in the configured link and draws it. Pure functions, any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "loyalty/checkout/outcomes.h"
#include "loyalty/http/message.h"
#include "loyalty/qr/qr.h"

namespace loyalty::agent {

struct EnrolmentOptions {
  // agent.toml [enrolment] url_template: "{claim}" exactly once (config.h); "" = off.
  std::string url_template;
  qr::Options qr;
};

enum class EnrolmentFormat { kJson, kPng, kSvg };

struct EnrolmentRoute {
  std::string checkout_id;  // as the path has it (the service checks it)
  EnrolmentFormat format = EnrolmentFormat::kJson;
};

// /v1/checkouts/<id>/enrolment, .../enrolment.png, .../enrolment.svg; nullopt for any other
// path.
std::optional<EnrolmentRoute> ParseEnrolmentPath(std::string_view path);

// The join page's link: the template with "{claim}" replaced by the claim.
std::string EnrolmentUrl(std::string_view url_template, std::string_view claim);

// The answer to an enrolment route: the JSON view {"checkout_id", "url", "claim",
// "expires_at"}, or the link's QR code (image/png, image/svg+xml). An error when the QR code
// cannot be drawn (never within the configured limits: internal).
Result<http::Response> EnrolmentResponse(const EnrolmentOptions& options,
                                         const checkout::EnrolmentOutcome& outcome,
                                         EnrolmentFormat format);

}  // namespace loyalty::agent
