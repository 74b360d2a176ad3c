// A throwaway public key infrastructure for tests of mutual TLS (http, HQ, sync).
//
// TestPki::Create() makes a temporary folder and writes PEM files into it, generated with
// the OpenSSL 3 API (EC P-256 keys, SHA-256 signatures, X.509 v3):
//
//   ca            the trusted CA: signs the server certificate and the terminals' ones
//   server        CN=localhost, subjectAltName DNS:localhost, IP:127.0.0.1 (serverAuth)
//   client(id)    CN=<terminal id> (clientAuth), one per id given to Create()
//   expired       CN=<first terminal id>, signed by ca, valid until yesterday
//   other_ca      a second CA nobody trusts, with its own certificates:
//   other_client  CN=<first terminal id>, signed by other_ca
//   other_server  CN=localhost with the same SANs as `server`, signed by other_ca
//   wrong_host    signed by ca, but for DNS:hq.example and IP:192.0.2.1 only
//
// The CA's key is written too (ca.key), for MakeCrl. Keys are written with mode 0600. The folder is
// removed when the TestPki is destroyed. Certificates other than `expired` are valid from one hour
// ago for ten years, so a test never sees them expire; expiry itself is judged by OpenSSL against
// the real clock, the only place these tests meet it.
//
// Thread-compatible; the accessors only return paths and may be used from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "loyalty/base/status.h"

namespace loyalty::testing {

struct CertAndKey {
  std::string cert_file;  // PEM certificate (leaf only; the CAs are self-signed roots)
  std::string key_file;   // PEM private key (PKCS#8), mode 0600
};

class TestPki {
 public:
  // `terminal_ids`: the CNs of the client certificates signed by the trusted CA; the first
  // one is also the CN of `expired` and `other_client`. At least one id is required.
  static Result<std::unique_ptr<TestPki>> Create(std::vector<std::string> terminal_ids = {
                                                     "T-0001", "T-0002"});

  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  const std::string& dir() const { return dir_; }
  std::string ca_file() const { return dir_ + "/ca.pem"; }
  std::string other_ca_file() const { return dir_ + "/other-ca.pem"; }
  CertAndKey server() const { return Pair("server"); }
  // A client certificate for `terminal_id`, which must be one of those given to Create().
  CertAndKey client(std::string_view terminal_id) const {
    return Pair("client-" + std::string(terminal_id));
  }
  CertAndKey expired() const { return Pair("expired"); }
  CertAndKey other_client() const { return Pair("other-client"); }
  CertAndKey other_server() const { return Pair("other-server"); }
  CertAndKey wrong_host() const { return Pair("wrong-host"); }
  const std::vector<std::string>& terminal_ids() const { return terminal_ids_; }

  // Issues one more client certificate signed by the trusted CA, with subject CN `cn`,
  // written as <dir>/<name>.pem and <dir>/<name>.key. `name` must be a plain file stem.
  Result<CertAndKey> IssueClient(const std::string& name, const std::string& cn);

  // The trusted CA's private key (<dir>/ca.key, 0600), for `openssl ca`.
  std::string ca_key_file() const { return dir_ + "/ca.key"; }

  // A CRL of the trusted CA listing the certificates in `revoked_cert_files` (none: an
  // empty list), made the way an operator makes one: `openssl ca -revoke` for each, then
  // `openssl ca -gencrl` (valid 30 days), with a fresh CA database each time. Written as
  // <dir>/<name>.pem; returns that path. Needs the `openssl` program on PATH.
  Result<std::string> MakeCrl(const std::string& name,
                              const std::vector<std::string>& revoked_cert_files);

 private:
  struct Authority;
  TestPki(std::string dir, std::vector<std::string> ids);
  CertAndKey Pair(const std::string& stem) const {
    return {dir_ + "/" + stem + ".pem", dir_ + "/" + stem + ".key"};
  }
  Status Generate();

  std::string dir_;
  std::vector<std::string> terminal_ids_;
  std::unique_ptr<Authority> ca_;
};

}  // namespace loyalty::testing
