#include "support/pki.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

namespace loyalty::testing {

namespace {

using KeyPtr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using CertPtr = std::unique_ptr<X509, decltype(&X509_free)>;
using BioPtr = std::unique_ptr<BIO, decltype(&BIO_free)>;

constexpr long kDay = 24 * 3600;

Status OpenSslError(const std::string& what) {
  unsigned long e = ERR_get_error();
  char buf[256] = "unknown error";
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return Status::Error(ErrorCode::kInternal, what + ": " + buf);
}

struct CertSpec {
  std::string cn;
  bool ca = false;
  std::string san;  // subjectAltName value, e.g. "DNS:localhost,IP:127.0.0.1"; empty: none
  std::string eku;  // extendedKeyUsage, e.g. "serverAuth"; empty: none
  long not_before_s = -3600;       // relative to now
  long not_after_s = 3650 * kDay;  // relative to now
};

CertSpec CaSpec(std::string cn) {
  CertSpec s;
  s.cn = std::move(cn);
  s.ca = true;
  return s;
}

CertSpec LeafSpec(std::string cn, std::string san, std::string eku, long not_before_s = -3600,
                  long not_after_s = 3650 * kDay) {
  CertSpec s;
  s.cn = std::move(cn);
  s.san = std::move(san);
  s.eku = std::move(eku);
  s.not_before_s = not_before_s;
  s.not_after_s = not_after_s;
  return s;
}

KeyPtr NewKey() { return KeyPtr(EVP_EC_gen("P-256"), EVP_PKEY_free); }

Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return OpenSslError("extension " + value);
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? Status::Ok() : OpenSslError("adding extension " + value);
}

// `issuer` null: self-signed with `key`.
Result<CertPtr> MakeCert(const CertSpec& spec, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key) {
  CertPtr cert(X509_new(), X509_free);
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);  // v3
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), BN_free);
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return OpenSslError("serial");
  }
  X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, spec.not_before_s, nullptr);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), 0, spec.not_after_s, nullptr);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("loyaltyd tests"), -1, -1, 0);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.cn.c_str()), -1, -1,
                                 0) != 1) {
    return OpenSslError("subject CN");
  }
  X509* issuer_cert = issuer != nullptr ? issuer : cert.get();
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(issuer_cert)) != 1 ||
      X509_set_pubkey(cert.get(), key) != 1) {
    return OpenSslError("issuer or public key");
  }
  Status s;
  if (spec.ca) {
    s = AddExt(cert.get(), issuer_cert, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
    if (s.ok()) s = AddExt(cert.get(), issuer_cert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    s = AddExt(cert.get(), issuer_cert, NID_basic_constraints, "critical,CA:FALSE");
    if (s.ok()) s = AddExt(cert.get(), issuer_cert, NID_key_usage, "critical,digitalSignature");
  }
  if (s.ok()) s = AddExt(cert.get(), issuer_cert, NID_subject_key_identifier, "hash");
  if (s.ok() && issuer != nullptr)
    s = AddExt(cert.get(), issuer_cert, NID_authority_key_identifier, "keyid:always");
  if (s.ok() && !spec.san.empty())
    s = AddExt(cert.get(), issuer_cert, NID_subject_alt_name, spec.san);
  if (s.ok() && !spec.eku.empty()) s = AddExt(cert.get(), issuer_cert, NID_ext_key_usage, spec.eku);
  if (!s.ok()) return s;
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) {
    return OpenSslError("signing " + spec.cn);
  }
  return cert;
}

Status WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::Error(ErrorCode::kInternal, "cannot create " + path);
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n <= 0) {
      ::close(fd);
      return Status::Error(ErrorCode::kInternal, "cannot write " + path);
    }
    off += static_cast<size_t>(n);
  }
  ::fchmod(fd, mode);  // the umask may have narrowed it; keys must be exactly 0600
  return ::close(fd) == 0 ? Status::Ok()
                          : Status::Error(ErrorCode::kInternal, "cannot write " + path);
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

Status WritePem(const std::string& stem, X509* cert, EVP_PKEY* key) {
  BioPtr cert_bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!cert_bio || PEM_write_bio_X509(cert_bio.get(), cert) != 1)
    return OpenSslError("PEM certificate");
  if (Status s = WriteFile(stem + ".pem", BioText(cert_bio.get()), 0644); !s.ok()) return s;
  if (key == nullptr) return Status::Ok();
  BioPtr key_bio(BIO_new(BIO_s_mem()), BIO_free);
  if (!key_bio ||
      PEM_write_bio_PrivateKey(key_bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("PEM key");
  }
  return WriteFile(stem + ".key", BioText(key_bio.get()), 0600);
}

}  // namespace

struct TestPki::Authority {
  KeyPtr key{nullptr, EVP_PKEY_free};
  CertPtr cert{nullptr, X509_free};
};

TestPki::TestPki(std::string dir, std::vector<std::string> ids)
    : dir_(std::move(dir)), terminal_ids_(std::move(ids)), ca_(std::make_unique<Authority>()) {}

TestPki::~TestPki() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Result<std::unique_ptr<TestPki>> TestPki::Create(std::vector<std::string> terminal_ids) {
  if (terminal_ids.empty())
    return Status::Error(ErrorCode::kInvalidArgument, "at least one terminal id is needed");
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/loyalty-pki-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    return Status::Error(ErrorCode::kInternal, "cannot create " + pattern);
  std::unique_ptr<TestPki> pki(new TestPki(pattern, std::move(terminal_ids)));
  if (Status s = pki->Generate(); !s.ok()) return s;
  return pki;
}

Status TestPki::Generate() {
  const std::string first = terminal_ids_.front();
  const std::string local_san = "DNS:localhost,IP:127.0.0.1";

  ca_->key = NewKey();
  if (!ca_->key) return OpenSslError("CA key");
  auto ca = MakeCert(CaSpec("loyaltyd test CA"), ca_->key.get(), nullptr, nullptr);
  if (!ca.ok()) return ca.status();
  ca_->cert = std::move(*ca);
  if (Status s = WritePem(dir_ + "/ca", ca_->cert.get(), ca_->key.get()); !s.ok()) return s;

  KeyPtr other_key = NewKey();
  if (!other_key) return OpenSslError("other CA key");
  auto other = MakeCert(CaSpec("untrusted test CA"), other_key.get(), nullptr, nullptr);
  if (!other.ok()) return other.status();
  if (Status s = WritePem(dir_ + "/other-ca", other->get(), nullptr); !s.ok()) return s;

  struct Leaf {
    std::string stem;
    CertSpec spec;
    bool by_other;
  };
  std::vector<Leaf> leaves = {
      {"server", LeafSpec("localhost", local_san, "serverAuth"), false},
      {"expired", LeafSpec(first, "", "clientAuth", -30 * kDay, -kDay), false},
      {"other-client", LeafSpec(first, "", "clientAuth"), true},
      {"other-server", LeafSpec("localhost", local_san, "serverAuth"), true},
      {"wrong-host", LeafSpec("hq.example", "DNS:hq.example,IP:192.0.2.1", "serverAuth"), false},
  };
  for (const auto& id : terminal_ids_)
    leaves.push_back({"client-" + id, LeafSpec(id, "", "clientAuth"), false});
  for (const auto& leaf : leaves) {
    KeyPtr key = NewKey();
    if (!key) return OpenSslError("key for " + leaf.stem);
    X509* issuer = leaf.by_other ? other->get() : ca_->cert.get();
    EVP_PKEY* issuer_key = leaf.by_other ? other_key.get() : ca_->key.get();
    auto cert = MakeCert(leaf.spec, key.get(), issuer, issuer_key);
    if (!cert.ok()) return cert.status();
    if (Status s = WritePem(dir_ + "/" + leaf.stem, cert->get(), key.get()); !s.ok()) return s;
  }
  return Status::Ok();
}

Result<CertAndKey> TestPki::IssueClient(const std::string& name, const std::string& cn) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    return Status::Error(ErrorCode::kInvalidArgument, "not a plain file name: " + name);
  }
  KeyPtr key = NewKey();
  if (!key) return OpenSslError("key for " + name);
  auto cert = MakeCert(LeafSpec(cn, "", "clientAuth"), key.get(), ca_->cert.get(), ca_->key.get());
  if (!cert.ok()) return cert.status();
  if (Status s = WritePem(dir_ + "/" + name, cert->get(), key.get()); !s.ok()) return s;
  return Pair(name);
}

Result<std::string> TestPki::MakeCrl(const std::string& name,
                                     const std::vector<std::string>& revoked_cert_files) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.') {
    return Status::Error(ErrorCode::kInvalidArgument, "not a plain file name: " + name);
  }
  // A fresh `openssl ca` database per CRL: index.txt records the revocations.
  const std::string db = dir_ + "/ca-db-" + name;
  std::error_code ec;
  std::filesystem::remove_all(db, ec);
  if (!std::filesystem::create_directories(db, ec))
    return Status::Error(ErrorCode::kInternal, "cannot create " + db);
  if (Status s = WriteFile(db + "/index.txt", "", 0600); !s.ok()) return s;
  if (Status s = WriteFile(db + "/crlnumber", "1000\n", 0600); !s.ok()) return s;
  const std::string conf = db + "/openssl.cnf";
  const std::string text =
      "[ ca ]\ndefault_ca = test_ca\n[ test_ca ]\ndatabase = " + db +
      "/index.txt\ncrlnumber = " + db + "/crlnumber\nnew_certs_dir = " + db +
      "\ncertificate = " + ca_file() + "\nprivate_key = " + ca_key_file() +
      "\ndefault_md = sha256\ndefault_crl_days = 30\npolicy = any\nunique_subject = no\n"
      "[ any ]\ncommonName = supplied\n";
  if (Status s = WriteFile(conf, text, 0600); !s.ok()) return s;
  auto run = [&](const std::string& args) -> Status {
    std::string cmd =
        "openssl ca -batch -config '" + conf + "' " + args + " >'" + db + "/openssl.log' 2>&1";
    int rc = std::system(cmd.c_str());
    if (rc != 0)
      return Status::Error(ErrorCode::kInternal, "failed (" + std::to_string(rc) + "): " + cmd);
    return Status::Ok();
  };
  for (const auto& cert : revoked_cert_files) {
    if (Status s = run("-revoke '" + cert + "' -crl_reason keyCompromise"); !s.ok()) return s;
  }
  const std::string out = dir_ + "/" + name + ".pem";
  if (Status s = run("-gencrl -out '" + out + "'"); !s.ok()) return s;
  return out;
}

}  // namespace loyalty::testing
