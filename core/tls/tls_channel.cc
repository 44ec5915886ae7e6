#include "core/tls/tls_channel.h"

#include <openssl/bio.h>
#include <openssl/err.h>

#include <algorithm>
#include <cstring>

namespace subgate::tls {
namespace {

// The BIO between OpenSSL and a channel's two buffers. An empty wireIn() is "try again" (the
// socket has not given more yet), never the end: the connection sees the socket's end itself.
int wireRead(BIO* bio, char* data, size_t size, size_t* count) {
  IoBuffer& in = static_cast<Channel*>(BIO_get_data(bio))->wireIn();
  BIO_clear_retry_flags(bio);
  *count = 0;
  if (in.readable() == 0) {
    BIO_set_retry_read(bio);
    return 0;
  }
  const size_t n = std::min(size, in.readable());
  std::memcpy(data, in.readPtr(), n);
  in.consume(n);
  *count = n;
  return 1;
}

int wireWrite(BIO* bio, const char* data, size_t size, size_t* count) {
  BIO_clear_retry_flags(bio);
  static_cast<Channel*>(BIO_get_data(bio))->wireOut().append(std::string_view(data, size));
  *count = size;
  return 1;
}

long wireControl(BIO* bio, int command, long, void*) {
  auto* channel = static_cast<Channel*>(BIO_get_data(bio));
  switch (command) {
    case BIO_CTRL_FLUSH: return 1;  // the connection sends wireOut() when it is ready to
    case BIO_CTRL_PENDING: return static_cast<long>(channel->wireIn().readable());
    case BIO_CTRL_WPENDING: return static_cast<long>(channel->wireOut().readable());
    default: return 0;
  }
}

int wireCreate(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

// Made once per process (the method is immutable and shared by every thread's BIOs).
const BIO_METHOD* wireMethod() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "subgate wire");
    if (made) {
      BIO_meth_set_read_ex(made, wireRead);
      BIO_meth_set_write_ex(made, wireWrite);
      BIO_meth_set_ctrl(made, wireControl);
      BIO_meth_set_create(made, wireCreate);
    }
    return made;
  }();
  return method;
}

}  // namespace

std::unique_ptr<Channel> Channel::accept(const ServerContext& context,
                                         const SniResolver* resolver) {
  const BIO_METHOD* method = wireMethod();
  if (!method) return nullptr;
  SSL* ssl = context.newSession(resolver);
  if (!ssl) return nullptr;
  BIO* bio = BIO_new(method);
  if (!bio) {
    SSL_free(ssl);
    return nullptr;
  }
  std::unique_ptr<Channel> channel(new Channel(ssl));
  BIO_set_data(bio, channel.get());
  SSL_set_bio(ssl, bio, bio);  // one BIO both ways: the session owns its one reference
  return channel;
}

Channel::~Channel() { SSL_free(ssl_); }

Channel::Status Channel::statusOf(int result) const {
  switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ: return Status::kNeedInput;
    case SSL_ERROR_ZERO_RETURN: return Status::kClosed;
    default: return Status::kFailed;
  }
}

Channel::Status Channel::handshake() {
  ERR_clear_error();
  const int result = SSL_do_handshake(ssl_);
  return result == 1 ? Status::kDone : statusOf(result);
}

Channel::Status Channel::read(char* data, size_t size, size_t& count) {
  ERR_clear_error();
  count = 0;
  if (SSL_read_ex(ssl_, data, size, &count) == 1) return Status::kDone;
  return statusOf(0);
}

bool Channel::write(const char* data, size_t size) {
  ERR_clear_error();
  // The BIO takes everything and partial writes are off: one call encrypts all of it.
  size_t written = 0;
  return size == 0 || (SSL_write_ex(ssl_, data, size, &written) == 1 && written == size);
}

void Channel::closeNotify() {
  if (SSL_is_init_finished(ssl_) && !(SSL_get_shutdown(ssl_) & SSL_SENT_SHUTDOWN))
    SSL_shutdown(ssl_);
  ERR_clear_error();
}

bool Channel::hasBufferedInput() const { return in_.readable() > 0 || SSL_has_pending(ssl_); }

std::string_view Channel::alpn() const {
  const unsigned char* name = nullptr;
  unsigned int length = 0;
  SSL_get0_alpn_selected(ssl_, &name, &length);
  if (!name) return {};
  return {reinterpret_cast<const char*>(name), length};
}

}  // namespace subgate::tls
