// tls::Channel against an OpenSSL client over memory: the test carries the bytes between the
// two (no sockets), as the connection carries them between the channel and the socket.
#include "core/tls/tls_channel.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>

#include <string>

#include "tests/support/self_signed_certificate.h"

namespace subgate::tls {
namespace {

class OffersH2 : public SniResolver {
 public:
  const ServerContext* resolveServerName(std::string_view) const override { return nullptr; }
  bool offersHttp2() const override { return true; }
};

class TlsChannel : public ::testing::Test {
 protected:
  void SetUp() override {
    static test_support::SelfSignedCertificate certificate;
    std::string error;
    context_ = ServerContext::load(certificate.certFile(), certificate.keyFile(), Options(), error);
    ASSERT_TRUE(context_) << error;
    channel_ = Channel::accept(*context_, &resolver_);
    ASSERT_TRUE(channel_);
    client_ctx_ = SSL_CTX_new(TLS_client_method());
    client_ = SSL_new(client_ctx_);
    to_client_ = BIO_new(BIO_s_mem());
    from_client_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(to_client_, -1);  // empty: "try again", as a socket would be
    SSL_set_bio(client_, to_client_, from_client_);
    SSL_set_connect_state(client_);
  }
  void TearDown() override {
    SSL_free(client_);
    SSL_CTX_free(client_ctx_);
  }

  // The client's pending bytes to the channel, `step` bytes at a time (0: all at once), and the
  // channel's pending bytes to the client.
  void carry(size_t step = 0) {
    char buf[4096];
    int n;
    while ((n = BIO_read(from_client_, buf, static_cast<int>(step ? step : sizeof buf))) > 0)
      channel_->wireIn().append(std::string_view(buf, static_cast<size_t>(n)));
    IoBuffer& out = channel_->wireOut();
    BIO_write(to_client_, out.readPtr(), static_cast<int>(out.readable()));
    out.consume(out.readable());
  }

  // Runs both handshakes to their end (a bounded number of round trips).
  void handshake() {
    Channel::Status status = Channel::Status::kNeedInput;
    for (int i = 0; i < 10 && status != Channel::Status::kDone; ++i) {
      SSL_do_handshake(client_);
      carry();
      status = channel_->handshake();
      ASSERT_NE(status, Channel::Status::kFailed) << lastError();
      carry();
    }
    ASSERT_EQ(status, Channel::Status::kDone);
    ASSERT_EQ(SSL_do_handshake(client_), 1);
  }

  // Everything the channel can decrypt now.
  std::string readAll() {
    std::string got;
    char buf[1000];
    size_t count = 0;
    for (int i = 0; i < 10000 && channel_->read(buf, sizeof buf, count) == Channel::Status::kDone;
         ++i)
      got.append(buf, count);
    return got;
  }

  std::string clientReadAll() {
    std::string got;
    char buf[4096];
    size_t count = 0;
    while (SSL_read_ex(client_, buf, sizeof buf, &count) == 1) got.append(buf, count);
    return got;
  }

  OffersH2 resolver_;
  std::shared_ptr<const ServerContext> context_;
  std::unique_ptr<Channel> channel_;
  SSL_CTX* client_ctx_ = nullptr;
  SSL* client_ = nullptr;
  BIO* to_client_ = nullptr;
  BIO* from_client_ = nullptr;
};

TEST_F(TlsChannel, HandshakesAndSelectsH2ByAlpn) {
  static const unsigned char kProtocols[] = {2,   'h', '2', 8,   'h', 't',
                                             't', 'p', '/', '1', '.', '1'};
  SSL_set_alpn_protos(client_, kProtocols, sizeof kProtocols);
  EXPECT_EQ(channel_->handshake(), Channel::Status::kNeedInput);  // nothing came yet
  EXPECT_EQ(channel_->wireOut().readable(), 0u);
  handshake();
  EXPECT_EQ(channel_->alpn(), "h2");
  EXPECT_STREQ(SSL_get_version(client_), "TLSv1.3");
}

TEST_F(TlsChannel, CarriesDataBothWays) {
  handshake();
  EXPECT_EQ(channel_->alpn(), "");
  size_t written = 0;
  ASSERT_EQ(SSL_write_ex(client_, "GET / HTTP/1.1\r\n\r\n", 18, &written), 1);
  carry();
  EXPECT_TRUE(channel_->hasBufferedInput());
  EXPECT_EQ(readAll(), "GET / HTTP/1.1\r\n\r\n");
  EXPECT_FALSE(channel_->hasBufferedInput());

  // 100 KiB out: several records, all in wireOut() at once.
  std::string big(100 * 1024, 'x');
  for (size_t i = 0; i < big.size(); i += 97) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_TRUE(channel_->write(big.data(), big.size()));
  EXPECT_GT(channel_->wireOut().readable(), big.size());
  carry();
  EXPECT_EQ(clientReadAll(), big);

  IoBuffer plain;
  plain.append("from a buffer");
  ASSERT_TRUE(channel_->writeFrom(plain));
  EXPECT_EQ(plain.readable(), 0u);
  carry();
  EXPECT_EQ(clientReadAll(), "from a buffer");
}

TEST_F(TlsChannel, AssemblesRecordsThatArriveByteByByte) {
  handshake();
  std::string request(5000, 'r');
  size_t written = 0;
  ASSERT_EQ(SSL_write_ex(client_, request.data(), request.size(), &written), 1);
  std::string got;
  // One byte at a time: a partial record is "need input", never data or an error.
  for (int i = 0; i < 20000 && got.size() < request.size(); ++i) {
    carry(1);
    char buf[8192];
    size_t count = 0;
    Channel::Status status = channel_->read(buf, sizeof buf, count);
    ASSERT_NE(status, Channel::Status::kFailed);
    if (status == Channel::Status::kDone) got.append(buf, count);
  }
  EXPECT_EQ(got, request);
}

TEST_F(TlsChannel, ReadsIntoASmallBufferRecordByRecord) {
  handshake();
  size_t written = 0;
  ASSERT_EQ(SSL_write_ex(client_, "first", 5, &written), 1);
  ASSERT_EQ(SSL_write_ex(client_, "second", 6, &written), 1);
  carry();
  char buf[3];
  size_t count = 0;
  std::string got;
  // The rest of a record waits in OpenSSL: hasBufferedInput() says so though wireIn() is empty.
  ASSERT_EQ(channel_->read(buf, sizeof buf, count), Channel::Status::kDone);
  got.append(buf, count);
  EXPECT_TRUE(channel_->hasBufferedInput());
  got += readAll();
  EXPECT_EQ(got, "firstsecond");
  EXPECT_EQ(channel_->read(buf, sizeof buf, count), Channel::Status::kNeedInput);
}

TEST_F(TlsChannel, AnswersAKeyUpdate) {
  handshake();
  carry();
  clientReadAll();  // the session tickets
  ASSERT_EQ(SSL_key_update(client_, SSL_KEY_UPDATE_REQUESTED), 1);
  size_t written = 0;
  ASSERT_EQ(SSL_write_ex(client_, "after", 5, &written), 1);
  carry();
  EXPECT_EQ(readAll(), "after");
  // OpenSSL sends its own KeyUpdate ahead of the next record it writes.
  ASSERT_TRUE(channel_->write("reply", 5));
  carry();
  EXPECT_EQ(clientReadAll(), "reply");
}

TEST_F(TlsChannel, CloseNotifyBothWays) {
  handshake();
  channel_->closeNotify();
  const size_t alert = channel_->wireOut().readable();
  EXPECT_GT(alert, 0u);
  channel_->closeNotify();  // once
  EXPECT_EQ(channel_->wireOut().readable(), alert);
  carry();
  char buf[16];
  size_t count = 0;
  EXPECT_EQ(SSL_read_ex(client_, buf, sizeof buf, &count), 0);
  EXPECT_EQ(SSL_get_error(client_, 0), SSL_ERROR_ZERO_RETURN);
  SSL_shutdown(client_);
  carry();
  EXPECT_EQ(channel_->read(buf, sizeof buf, count), Channel::Status::kClosed);
}

TEST_F(TlsChannel, PlaintextFailsTheHandshakeWithAnAlert) {
  channel_->wireIn().append("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(channel_->handshake(), Channel::Status::kFailed);
  EXPECT_NE(lastError(), "unknown error");
}

TEST_F(TlsChannel, ACorruptRecordFails) {
  handshake();
  size_t written = 0;
  ASSERT_EQ(SSL_write_ex(client_, "data", 4, &written), 1);
  char buf[256];
  int n = BIO_read(from_client_, buf, sizeof buf);
  ASSERT_GT(n, 10);
  buf[n - 1] ^= 1;  // the authentication tag
  channel_->wireIn().append(std::string_view(buf, static_cast<size_t>(n)));
  size_t count = 0;
  EXPECT_EQ(channel_->read(buf, sizeof buf, count), Channel::Status::kFailed);
}

TEST_F(TlsChannel, CloseNotifyBeforeTheHandshakeWritesNothing) {
  channel_->closeNotify();
  EXPECT_EQ(channel_->wireOut().readable(), 0u);
}

}  // namespace
}  // namespace subgate::tls
