// Minting member codes: what HQ does at enrolment (certificates) and what the member's
// phone does every 30 s (dynamic codes). Used by HQ, the demo and the tests; the terminal
// itself never holds a private key.
//
// Keys are raw Ed25519 values: a 32-byte private seed, a 32-byte public key. Every
// function is pure and thread-safe. Wrong-sized inputs give an empty string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loyalty::codes {

// The 32-byte public key of a 32-byte private seed.
std::string Ed25519PublicFromSeed(std::string_view seed32);

// A 64-byte Ed25519 signature of `message`.
std::string Ed25519Sign(std::string_view seed32, std::string_view message);

// The 110-byte certificate: version 1 || key_id || member_id || device_pk || not_after ||
// Ed25519(hq key, "LM1-CERT" || the 46 bytes before the signature).
std::string MakeCertificate(std::string_view hq_private_seed32, uint8_t key_id, uint64_t member_id,
                            std::string_view device_pk32, uint32_t not_after);

// "LM1:" + base64url(certificate || code_time || Ed25519(device key, "LM1-CODE" ||
// certificate || code_time)): 242 characters.
std::string MakeDynamicCode(std::string_view cert110, std::string_view device_seed32,
                            uint32_t code_time);

// A 16-digit static card number: `prefix` + `body` digits, zero-padded on the left of
// body to fill 15 digits, + the Luhn check digit. Empty if prefix/body are not digits or
// do not fit.
std::string MakeCardNumber(std::string_view prefix, std::string_view body);

}  // namespace loyalty::codes
