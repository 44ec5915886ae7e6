// A throwaway self-signed certificate for tests and fuzz targets that need a TLS server context
// without sockets or the openssl command: a P-256 key and its certificate (CN "subgate.test",
// valid for an hour), written as PEM into a fresh temporary directory and removed again by the
// destructor.
#pragma once

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace subgate::test_support {

class SelfSignedCertificate {
 public:
  SelfSignedCertificate() {
    char pattern[] = "/tmp/subgate-cert-XXXXXX";
    if (!mkdtemp(pattern)) std::abort();
    dir_ = pattern;
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    if (!key || !cert) std::abort();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("subgate.test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    FILE* out = std::fopen(certFile().c_str(), "w");
    PEM_write_X509(out, cert);
    std::fclose(out);
    out = std::fopen(keyFile().c_str(), "w");
    PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(out);
    X509_free(cert);
    EVP_PKEY_free(key);
  }
  ~SelfSignedCertificate() {
    unlink(certFile().c_str());
    unlink(keyFile().c_str());
    rmdir(dir_.c_str());
  }
  SelfSignedCertificate(const SelfSignedCertificate&) = delete;
  SelfSignedCertificate& operator=(const SelfSignedCertificate&) = delete;

  std::string certFile() const { return dir_ + "/cert.pem"; }
  std::string keyFile() const { return dir_ + "/key.pem"; }

 private:
  std::string dir_;
};

}  // namespace subgate::test_support
