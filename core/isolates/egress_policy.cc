#include "core/isolates/egress_policy.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

namespace subgate {
namespace {

uint32_t maskOf(uint8_t prefix) { return prefix == 0 ? 0 : ~0u << (32 - prefix); }

// Removes `hole` from `range` (which contains it) by halving: each half without the hole is
// kept whole, the one with it is split again, down to the hole's size.
void carve(const Ipv4Cidr& range, const Ipv4Cidr& hole, std::vector<Ipv4Cidr>& out) {
  if (range.prefix >= hole.prefix) return;  // range == hole
  const uint8_t half = static_cast<uint8_t>(range.prefix + 1);
  const Ipv4Cidr low{range.base, half};
  const Ipv4Cidr high{range.base | (1u << (32 - half)), half};
  if (low.contains(hole)) {
    out.push_back(high);
    carve(low, hole, out);
  } else {
    out.push_back(low);
    carve(high, hole, out);
  }
}

bool overlaps(const Ipv4Cidr& a, const Ipv4Cidr& b) { return a.contains(b) || b.contains(a); }

}  // namespace

bool Ipv4Cidr::contains(const Ipv4Cidr& other) const {
  return other.prefix >= prefix && (other.base & maskOf(prefix)) == base;
}

bool parseIpv4Cidr(std::string_view text, Ipv4Cidr& out) {
  std::string address(text.substr(0, text.find('/')));
  in_addr addr{};
  if (inet_pton(AF_INET, address.c_str(), &addr) != 1) return false;
  unsigned prefix = 32;
  if (size_t slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() || prefix > 32)
      return false;
  }
  const uint32_t base = ntohl(addr.s_addr);
  const uint8_t p = static_cast<uint8_t>(prefix);
  if ((base & ~maskOf(p)) != 0) return false;  // host bits set: a typo, not a range
  out = {base, p};
  return true;
}

std::string formatIpv4Cidr(const Ipv4Cidr& cidr) {
  in_addr addr{htonl(cidr.base)};
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &addr, text, sizeof text);
  std::string out = text;
  if (cidr.prefix != 32) {
    out += '/';
    out += std::to_string(cidr.prefix);
  }
  return out;
}

std::vector<Ipv4Cidr> subtractCidrs(const std::vector<Ipv4Cidr>& from,
                                    const std::vector<Ipv4Cidr>& remove) {
  std::vector<Ipv4Cidr> current = from;
  for (const Ipv4Cidr& hole : remove) {
    std::vector<Ipv4Cidr> next;
    for (const Ipv4Cidr& range : current) {
      if (!overlaps(range, hole)) {
        next.push_back(range);
      } else if (range.contains(hole)) {
        carve(range, hole, next);
      }  // else the hole covers the range: it goes
    }
    current = std::move(next);
  }
  return current;
}

std::vector<Ipv4Cidr> defaultDeniedIpv4() {
  std::vector<Ipv4Cidr> out;
  for (const char* text : {"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
                           "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24", "192.168.0.0/16",
                           "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4"}) {
    Ipv4Cidr cidr;
    parseIpv4Cidr(text, cidr);
    out.push_back(cidr);
  }
  return out;
}

bool parseEgressEntry(std::string_view text, bool port_allowed, EgressEntry& out,
                      std::string& error) {
  out = {};
  std::string_view range = text;
  const size_t colon = text.rfind(':');
  const bool ipv4_with_port =
      colon != std::string_view::npos && text.find(':') == colon && text.find('.') < colon;
  if (ipv4_with_port) {
    range = text.substr(0, colon);
    std::string_view digits = text.substr(colon + 1);
    unsigned port = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port == 0 || port > 65535) {
      error.assign(1, '"').append(text).append("\" has an invalid port");
      return false;
    }
    if (!port_allowed) {
      error.assign(1, '"').append(text).append(
          "\": a port needs the sandbox, whose kernel check enforces it (Deno's permissions "
          "cannot open one port of a denied address)");
      return false;
    }
    out.port = static_cast<uint16_t>(port);
  }
  if (parseIpv4Cidr(range, out.range)) return true;
  error.assign(1, '"').append(text).append("\"");
  if (text.find(':') != std::string_view::npos && !ipv4_with_port) {
    error += ": IPv6 egress is refused by the sandbox (isolates reach the network over IPv4)";
  } else {
    error += " is not an IPv4 address or CIDR (a.b.c.d or a.b.c.d/n, then :PORT for one port)";
  }
  return false;
}

std::string denyNetList(const EgressRules& rules, const std::vector<Ipv4Cidr>& host_v4,
                        const std::vector<std::string>& host_v6) {
  std::vector<Ipv4Cidr> denied = defaultDeniedIpv4();
  for (const Ipv4Cidr& address : host_v4) {
    if (std::none_of(denied.begin(), denied.end(),
                     [&](const Ipv4Cidr& range) { return range.contains(address); }))
      denied.push_back(address);
  }
  std::vector<Ipv4Cidr> opened;
  for (const EgressEntry& entry : rules.allow) opened.push_back(entry.range);
  denied = subtractCidrs(denied, opened);
  for (const Ipv4Cidr& extra : rules.deny) denied.push_back(extra);
  std::string list;
  auto add = [&list](const std::string& entry) {
    if (!list.empty()) list += ',';
    list += entry;
  };
  for (const Ipv4Cidr& range : denied) add(formatIpv4Cidr(range));
  add("[::1]");
  add("[::]");
  for (const std::string& address : host_v6) {
    if (address != "::1") add("[" + address + "]");
  }
  return list;
}

void hostAddresses(std::vector<Ipv4Cidr>& v4, std::vector<std::string>& v6) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return;
  for (ifaddrs* it = list; it; it = it->ifa_next) {
    if (!it->ifa_addr) continue;
    if (it->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(it->ifa_addr);
      Ipv4Cidr address{ntohl(sin->sin_addr.s_addr), 32};
      if (std::find(v4.begin(), v4.end(), address) == v4.end()) v4.push_back(address);
    } else if (it->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(it->ifa_addr);
      char text[INET6_ADDRSTRLEN];
      if (!inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text)) continue;
      if (std::find(v6.begin(), v6.end(), text) == v6.end()) v6.emplace_back(text);
    }
  }
  freeifaddrs(list);
}

std::vector<Ipv4Cidr> resolvConfNameservers(const std::string& path) {
  std::vector<Ipv4Cidr> out;
  std::ifstream file(path);
  for (std::string line; std::getline(file, line);) {
    std::istringstream words(line);
    std::string keyword, address;
    Ipv4Cidr nameserver;
    if (words >> keyword >> address && keyword == "nameserver" &&
        parseIpv4Cidr(address, nameserver))
      out.push_back(nameserver);
  }
  return out;
}

EgressGate egressGate(const EgressRules& rules, const std::vector<Ipv4Cidr>& host_v4,
                      const std::vector<Ipv4Cidr>& nameservers) {
  EgressGate gate;
  gate.denied = defaultDeniedIpv4();
  for (const Ipv4Cidr& address : host_v4) gate.denied.push_back(address);
  std::vector<Ipv4Cidr> opened;
  for (const EgressEntry& entry : rules.allow) {
    if (entry.port == 0)
      opened.push_back(entry.range);
    else
      gate.ports.push_back(entry);
  }
  gate.denied = subtractCidrs(gate.denied, opened);
  gate.deny = rules.deny;
  gate.nameservers = nameservers;
  return gate;
}

int egressVerdict(const EgressGate& gate, const sockaddr_storage& address, size_t length) {
  if (address.ss_family == AF_UNSPEC) return 0;
  if (address.ss_family == AF_UNIX) return EACCES;
  if (address.ss_family != AF_INET || length < sizeof(sockaddr_in)) return EAFNOSUPPORT;
  const auto& in = reinterpret_cast<const sockaddr_in&>(address);
  const Ipv4Cidr target{ntohl(in.sin_addr.s_addr), 32};
  const uint16_t port = ntohs(in.sin_port);
  auto covers = [&target](const Ipv4Cidr& range) { return range.contains(target); };
  if (port == 53 && std::any_of(gate.nameservers.begin(), gate.nameservers.end(), covers)) return 0;
  if (std::any_of(gate.deny.begin(), gate.deny.end(), covers)) return EACCES;
  for (const EgressEntry& entry : gate.ports)
    if (entry.port == port && entry.range.contains(target)) return 0;
  if (std::any_of(gate.denied.begin(), gate.denied.end(), covers)) return EACCES;
  return 0;
}

std::string describeAddress(const sockaddr_storage& address, size_t length) {
  if (address.ss_family == AF_UNIX) return "unix socket";
  if (address.ss_family != AF_INET || length < sizeof(sockaddr_in)) {
    std::string out = "address family ";
    out += std::to_string(address.ss_family);
    return out;
  }
  const auto& in = reinterpret_cast<const sockaddr_in&>(address);
  std::string out = formatIpv4Cidr({ntohl(in.sin_addr.s_addr), 32});
  out += ':';
  out += std::to_string(ntohs(in.sin_port));
  return out;
}

}  // namespace subgate
