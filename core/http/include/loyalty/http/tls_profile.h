// The TLS profile of every endpoint (docs/tls.md): Mozilla's "intermediate" configuration
// (version 5.7) without its DHE suites. TLS 1.2 and 1.3 only; for TLS 1.2 only ECDHE key
// exchange with AEAD ciphers (AES-GCM, CHACHA20-POLY1305); for TLS 1.3 its three suites,
// which are all AEAD. No compression, no renegotiation; the client's order of preference
// is followed (every suite offered is strong).
//
// Applied to HQ's listener, the agent's POS API listener when it speaks TLS, and both
// clients that reach HQ (loyalty::http::Client and the sync transport).
#pragma once

#include <openssl/ssl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace loyalty::http {

// Why OpenSSL could not load a PEM file, for the message that names it: a file that cannot
// be opened says so with the system's reason ("cannot open: No such file or directory"),
// where OpenSSL's error alone would often read only "asio.ssl error"; otherwise
// OpenSSL's own text.
inline std::string PemFileReason(const std::string& file, const std::string& openssl_text) {
  if (file.empty()) return openssl_text;
  if (std::FILE* f = std::fopen(file.c_str(), "rb")) {
    std::fclose(f);
    return openssl_text.empty() || openssl_text == "asio.ssl error" ||
                   openssl_text == "unknown TLS error"
               ? "no certificate or key OpenSSL can read in it"
               : openssl_text;
  }
  return std::string("cannot open: ") + std::strerror(errno);
}

// The TLS 1.2 suites, in Mozilla's order.
inline constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
inline constexpr const char* kTls13Ciphersuites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
inline constexpr const char* kTlsGroups = "X25519:P-256:P-384";

// Returns false if OpenSSL refused a setting (then the context must not be used).
inline bool ApplyIntermediateProfile(SSL_CTX* ctx) {
  bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1;
  ok = ok && SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) == 1;
  ok = ok && SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) == 1;
  ok = ok && SSL_CTX_set_ciphersuites(ctx, kTls13Ciphersuites) == 1;
  ok = ok && SSL_CTX_set1_groups_list(ctx, kTlsGroups) == 1;
  SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_clear_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
  return ok;
}

}  // namespace loyalty::http
