#include "core/ingress/host_syntax.h"

#include <arpa/inet.h>

#include <string>

namespace subgate {
namespace {

bool isHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool isRegNameChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':  // unreserved
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':  // sub-delims
    case '+':
    case ',':
    case ';':
    case '=': return true;
    default: return false;
  }
}

bool isValidRegName(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%') {
      if (i + 2 >= name.size() || !isHex(name[i + 1]) || !isHex(name[i + 2])) return false;
      i += 2;
    } else if (!isRegNameChar(name[i])) {
      return false;
    }
  }
  return true;
}

bool isValidIpLiteral(std::string_view inside) {
  if (inside.empty()) return false;
  if (inside[0] == 'v' ||
      inside[0] == 'V') {  // IPvFuture: "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
    size_t dot = inside.find('.');
    if (dot == std::string_view::npos || dot < 2 || dot + 1 == inside.size()) return false;
    for (size_t i = 1; i < dot; ++i)
      if (!isHex(inside[i])) return false;
    for (size_t i = dot + 1; i < inside.size(); ++i)
      if (inside[i] != ':' && (inside[i] == '%' || !isRegNameChar(inside[i]))) return false;
    return true;
  }
  if (inside.size() > 45) return false;
  // inet_pton reads a C string: a NUL inside would end the address early and let what follows
  // it through unchecked.
  for (char c : inside)
    if (!isHex(c) && c != ':' && c != '.') return false;
  std::string text(inside);
  in6_addr addr;
  return inet_pton(AF_INET6, text.c_str(), &addr) == 1;
}

bool isValidPort(std::string_view port) {
  if (port.empty() || port.size() > 5) return false;
  unsigned value = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value <= 65535;
}

}  // namespace

bool isValidHostHeader(std::string_view value) {
  std::string_view host = value;
  std::string_view port;
  bool has_port = false;
  if (!value.empty() && value[0] == '[') {
    size_t close = value.find(']');
    if (close == std::string_view::npos) return false;
    host = value.substr(1, close - 1);
    std::string_view rest = value.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return false;
      has_port = true;
      port = rest.substr(1);
    }
    if (!isValidIpLiteral(host)) return false;
  } else {
    size_t colon = value.rfind(':');
    if (colon != std::string_view::npos) {
      host = value.substr(0, colon);
      port = value.substr(colon + 1);
      has_port = true;
    }
    // A dotted IPv4 address is also a valid reg-name, so one check covers both.
    if (!isValidRegName(host)) return false;
  }
  return !has_port || isValidPort(port);
}

}  // namespace subgate
