// libFuzzer target for tls::Channel, the glue between OpenSSL and a connection's buffers: any
// bytes from a client, cut into pieces of any size (the first byte picks the piece size), make
// the handshake go on, fail, or wait for more; never crash, never loop, and never leave a
// half-read piece: what the channel does not consume stays in wireIn().
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/tls/tls_channel.h"

namespace {

void check(bool condition) {
  if (!condition) std::abort();
}

class H2Listener : public subgate::tls::SniResolver {
 public:
  const subgate::tls::ServerContext* resolveServerName(std::string_view) const override {
    return nullptr;
  }
  bool offersHttp2() const override { return true; }
};

// A self-signed P-256 certificate, written once to a temporary directory and loaded.
std::shared_ptr<const subgate::tls::ServerContext> makeContext() {
  char dir[] = "/tmp/subgate-tls-fuzz-XXXXXX";
  check(mkdtemp(dir) != nullptr);
  const std::string cert_file = std::string(dir) + "/cert.pem";
  const std::string key_file = std::string(dir) + "/key.pem";
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_sign(cert, key, EVP_sha256());
  FILE* out = std::fopen(cert_file.c_str(), "w");
  PEM_write_X509(out, cert);
  std::fclose(out);
  out = std::fopen(key_file.c_str(), "w");
  PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(out);
  X509_free(cert);
  EVP_PKEY_free(key);
  std::string error;
  auto context = subgate::tls::ServerContext::load(cert_file, key_file, {}, error);
  unlink(cert_file.c_str());
  unlink(key_file.c_str());
  rmdir(dir);
  check(context != nullptr);
  return context;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using subgate::tls::Channel;
  static const H2Listener listener;
  static const auto context = makeContext();
  if (size == 0) return 0;
  const size_t piece = 1 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  auto channel = Channel::accept(*context, &listener);
  check(channel != nullptr);
  Channel::Status status = Channel::Status::kNeedInput;
  while (!input.empty() && status == Channel::Status::kNeedInput) {
    const std::string_view now = input.substr(0, piece);
    input.remove_prefix(now.size());
    channel->wireIn().append(now);
    status = channel->handshake();
    channel->wireOut().clear();  // what the server would send; the fuzzer's client never reads
  }
  if (status == Channel::Status::kDone) {
    // Random bytes rarely finish a handshake; if they do, the rest is application records.
    channel->wireIn().append(input);
    char plain[4096];
    size_t count = 0;
    for (int i = 0; i < 1000 && channel->read(plain, sizeof plain, count) == Channel::Status::kDone;
         ++i)
      check(count <= sizeof plain);
  }
  if (status == Channel::Status::kNeedInput) check(channel->wireIn().readable() == 0);
  return 0;
}
