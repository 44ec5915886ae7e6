// Where isolates may connect: the addresses denied to tenant code, as Deno's `--deny-net` list.
//
// By default an isolate reaches no address of the host or of the networks around it: loopback,
// unspecified, private (RFC 1918), shared (RFC 6598), link-local, benchmarking, IETF protocol
// assignments, multicast and reserved IPv4 ranges, IPv6 loopback and unspecified, and every
// address of the host's own interfaces (which covers subgate's listeners however they are
// bound). Operators open exceptions with `egress_allow` (an address or an IPv4 CIDR, optionally
// one port of it) and deny more with `egress_deny`, which always wins.
//
// Deno checks the list against the address it connects to, after resolving a host name, so a
// name that resolves to a denied address (DNS rebinding) is refused too; it applies to fetch,
// WebSocket, Deno.connect, Deno.connectTls, node:net and every listen call. Deno cannot express
// IPv6 ranges: the sandbox's seccomp filter refuses IPv6 sockets instead (core/process/
// confinement.h), and without the sandbox only the IPv6 addresses above are denied.
//
// The sandbox checks the same policy again in the kernel (egressVerdict(), through
// core/process/connect_gate.h): every connect() of an isolate, whatever made it. That check also
// enforces the port of an exception, which Deno's list cannot (it opens the whole address), and
// lets the resolvers of /etc/resolv.conf be reached on port 53.
//
// Pure functions; the host's addresses are read by hostAddresses() at configuration.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace subgate {

struct Ipv4Cidr {
  uint32_t base = 0;  // host order, masked to the prefix
  uint8_t prefix = 32;
  bool contains(const Ipv4Cidr& other) const;
  bool operator==(const Ipv4Cidr&) const = default;
};

// "a.b.c.d" or "a.b.c.d/n" (n from 0 to 32; host bits must be zero). False otherwise.
bool parseIpv4Cidr(std::string_view text, Ipv4Cidr& out);
std::string formatIpv4Cidr(const Ipv4Cidr& cidr);  // "a.b.c.d" for /32, else "a.b.c.d/n"

// `from` without every address of `remove`, as the fewest CIDRs the split produces.
std::vector<Ipv4Cidr> subtractCidrs(const std::vector<Ipv4Cidr>& from,
                                    const std::vector<Ipv4Cidr>& remove);

// The IPv4 ranges denied by default (see above).
std::vector<Ipv4Cidr> defaultDeniedIpv4();

struct EgressEntry {
  Ipv4Cidr range;
  uint16_t port = 0;  // 0: every port
};

struct EgressRules {
  std::vector<EgressEntry> allow;  // egress_allow
  std::vector<Ipv4Cidr> deny;      // egress_deny
};

// One `egress_allow`/`egress_deny` argument: an IPv4 address or CIDR, with `:PORT` when
// `port_allowed`. IPv6 is refused with a message saying why.
bool parseEgressEntry(std::string_view text, bool port_allowed, EgressEntry& out,
                      std::string& error);

// The --deny-net value: (default ranges + host_v4) minus allow, plus deny, plus the IPv6
// loopback, unspecified and host_v6 addresses. host_v4/host_v6: the host's interface addresses
// ("a.b.c.d", "x:y::z").
std::string denyNetList(const EgressRules& rules, const std::vector<Ipv4Cidr>& host_v4,
                        const std::vector<std::string>& host_v6);

// The addresses of the host's interfaces (getifaddrs), IPv4 and IPv6 (without zone).
void hostAddresses(std::vector<Ipv4Cidr>& v4, std::vector<std::string>& v6);

// The IPv4 nameservers of a resolv.conf.
std::vector<Ipv4Cidr> resolvConfNameservers(const std::string& path = "/etc/resolv.conf");

// The policy as the kernel's check applies it.
struct EgressGate {
  std::vector<Ipv4Cidr> denied;       // (default ranges + host) minus address-wide exceptions
  std::vector<EgressEntry> ports;     // exceptions of one port
  std::vector<Ipv4Cidr> deny;         // egress_deny
  std::vector<Ipv4Cidr> nameservers;  // reachable on port 53
};
EgressGate egressGate(const EgressRules& rules, const std::vector<Ipv4Cidr>& host_v4,
                      const std::vector<Ipv4Cidr>& nameservers);

// 0 when a connect() to `address` may go ahead, else its errno: EACCES for a denied IPv4
// address, EAFNOSUPPORT for IPv6 and other families, EACCES for unix sockets (an isolate has
// none to reach: its own server listens, it never connects). AF_UNSPEC (a datagram socket's
// disconnect) passes.
int egressVerdict(const EgressGate& gate, const sockaddr_storage& address, size_t length);

// "a.b.c.d:port", "unix socket" or "address family N", for logs.
std::string describeAddress(const sockaddr_storage& address, size_t length);

}  // namespace subgate
