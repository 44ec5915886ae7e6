#include "core/tls/tls_context.h"

#include <openssl/err.h>

#include <algorithm>

namespace subgate::tls {
namespace {

constexpr unsigned char kSessionContext[] = "subgate";

// The SSL ex_data slot holding the connection's SniResolver.
int resolverIndex() {
  static int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int onServerName(SSL* ssl, int*, void*) {
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  auto* resolver = static_cast<const SniResolver*>(SSL_get_ex_data(ssl, resolverIndex()));
  if (!name || !resolver) return SSL_TLSEXT_ERR_OK;
  const ServerContext* chosen = resolver->resolveServerName(name);
  if (chosen && chosen->native() != SSL_get_SSL_CTX(ssl)) SSL_set_SSL_CTX(ssl, chosen->native());
  return SSL_TLSEXT_ERR_OK;
}

// h2 (preferred) and http/1.1 when the listener serves HTTP/2, else http/1.1 only: a client
// that offers only h2 there gets no ALPN answer and speaks HTTP/1.1 (as one without ALPN would).
int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
           unsigned int in_len, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static const unsigned char kH2Http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  auto* resolver = static_cast<const SniResolver*>(SSL_get_ex_data(ssl, resolverIndex()));
  const bool h2 = resolver && resolver->offersHttp2();
  unsigned char* selected = nullptr;
  // SSL_select_next_proto walks the server's list in order: the first protocol both offer wins.
  if (SSL_select_next_proto(&selected, out_len, h2 ? kH2Http11 : kHttp11,
                            h2 ? sizeof kH2Http11 : sizeof kHttp11, in,
                            in_len) != OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

std::string lastError() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

bool parseProtocols(const std::string* words, size_t count, Options& options, std::string& error) {
  int low = 0;
  int high = 0;
  for (size_t i = 0; i < count; ++i) {
    int version = 0;
    if (words[i] == "TLSv1.2") {
      version = TLS1_2_VERSION;
    } else if (words[i] == "TLSv1.3") {
      version = TLS1_3_VERSION;
    } else {
      error = "unsupported protocol \"" + words[i] + "\" (TLSv1.2 and TLSv1.3 are)";
      return false;
    }
    low = low ? std::min(low, version) : version;
    high = std::max(high, version);
  }
  options.min_version = low;
  options.max_version = high;
  return true;
}

std::shared_ptr<const ServerContext> ServerContext::load(const std::string& certificate_file,
                                                         const std::string& key_file,
                                                         const Options& options,
                                                         std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    error = "cannot create a TLS context: " + lastError();
    return nullptr;
  }
  std::shared_ptr<const ServerContext> result(new ServerContext(ctx));
  SSL_CTX_set_min_proto_version(ctx, options.min_version);
  SSL_CTX_set_max_proto_version(ctx, options.max_version);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  // Writes go to memory (tls_channel.h) and always complete: no partial writes. Idle sessions
  // give their record buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  SSL_CTX_set_tlsext_servername_callback(ctx, onServerName);
  SSL_CTX_set_alpn_select_cb(ctx, onAlpn, nullptr);
  if (SSL_CTX_use_certificate_chain_file(ctx, certificate_file.c_str()) != 1) {
    error = "cannot read the certificate \"" + certificate_file + "\": " + lastError();
    return nullptr;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    error = "cannot read the key \"" + key_file + "\": " + lastError();
    return nullptr;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error =
        "the key \"" + key_file + "\" does not match the certificate \"" + certificate_file + "\"";
    ERR_clear_error();
    return nullptr;
  }
  return result;
}

ServerContext::~ServerContext() { SSL_CTX_free(ctx_); }

SSL* ServerContext::newSession(const SniResolver* resolver) const {
  SSL* ssl = SSL_new(ctx_);
  if (!ssl) return nullptr;
  if (SSL_set_ex_data(ssl, resolverIndex(), const_cast<SniResolver*>(resolver)) != 1) {
    SSL_free(ssl);
    return nullptr;
  }
  SSL_set_accept_state(ssl);
  return ssl;
}

}  // namespace subgate::tls
