// libFuzzer target for tls::Channel, the glue between OpenSSL and a connection's buffers: any
// bytes from a client, cut into pieces of any size (the first byte picks the piece size), make
// the handshake go on, fail, or wait for more; never crash, never loop, and never leave a
// half-read piece: what the channel does not consume stays in wireIn().
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "core/tls/tls_channel.h"
#include "tests/support/self_signed_certificate.h"

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

std::shared_ptr<const subgate::tls::ServerContext> makeContext() {
  const subgate::test_support::SelfSignedCertificate certificate;
  std::string error;
  auto context =
      subgate::tls::ServerContext::load(certificate.certFile(), certificate.keyFile(), {}, error);
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
