#include "core/isolates/egress_policy.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cerrno>
#include <string>
#include <vector>

namespace subgate {
namespace {

Ipv4Cidr cidr(const char* text) {
  Ipv4Cidr out;
  EXPECT_TRUE(parseIpv4Cidr(text, out)) << text;
  return out;
}

// The list between commas, so that each entry can be found whole.
std::string delimited(const std::string& list) {
  std::string out(1, ',');
  out += list;
  out += ',';
  return out;
}

bool listed(const std::string& list, const std::string& entry) {
  std::string needle(1, ',');
  needle += entry;
  needle += ',';
  return delimited(list).find(needle) != std::string::npos;
}

std::vector<std::string> texts(const std::vector<Ipv4Cidr>& list) {
  std::vector<std::string> out;
  for (const Ipv4Cidr& c : list) out.push_back(formatIpv4Cidr(c));
  return out;
}

TEST(EgressPolicy, ParsesAddressesAndRanges) {
  EXPECT_EQ(formatIpv4Cidr(cidr("127.0.0.1")), "127.0.0.1");
  EXPECT_EQ(formatIpv4Cidr(cidr("10.0.0.0/8")), "10.0.0.0/8");
  EXPECT_EQ(formatIpv4Cidr(cidr("0.0.0.0/0")), "0.0.0.0/0");
  Ipv4Cidr out;
  for (const char* bad : {"10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0", "::1", "a.b.c.d",
                          "10.0.0.0/8x", "1.2.3.4:80", ""})
    EXPECT_FALSE(parseIpv4Cidr(bad, out)) << bad;
}

TEST(EgressPolicy, EntriesTakeAPortWhereTheKernelCanHoldItAndExplainWhatIsWrong) {
  EgressEntry out;
  std::string error;
  EXPECT_TRUE(parseEgressEntry("127.0.0.1:5432", true, out, error)) << error;
  EXPECT_EQ(formatIpv4Cidr(out.range), "127.0.0.1");
  EXPECT_EQ(out.port, 5432);
  EXPECT_TRUE(parseEgressEntry("10.1.0.0/16:443", true, out, error)) << error;
  EXPECT_EQ(out.port, 443);
  EXPECT_FALSE(parseEgressEntry("127.0.0.1:5432", false, out, error));  // egress_deny
  EXPECT_NE(error.find("needs the sandbox"), std::string::npos) << error;
  EXPECT_FALSE(parseEgressEntry("127.0.0.1:0", true, out, error));
  EXPECT_NE(error.find("invalid port"), std::string::npos) << error;
  EXPECT_FALSE(parseEgressEntry("[fc00::1]", true, out, error));
  EXPECT_NE(error.find("IPv6"), std::string::npos) << error;
  EXPECT_FALSE(parseEgressEntry("fc00::1", true, out, error));
  EXPECT_NE(error.find("IPv6"), std::string::npos) << error;
  EXPECT_FALSE(parseEgressEntry("db.internal", true, out, error));
  EXPECT_NE(error.find("not an IPv4 address or CIDR"), std::string::npos) << error;
  EXPECT_TRUE(parseEgressEntry("192.168.1.0/24", false, out, error));
  EXPECT_EQ(out.port, 0);
}

sockaddr_storage inet(const char* address, uint16_t port) {
  sockaddr_storage storage{};
  auto& in = reinterpret_cast<sockaddr_in&>(storage);
  in.sin_family = AF_INET;
  in.sin_port = htons(port);
  inet_pton(AF_INET, address, &in.sin_addr);
  return storage;
}

TEST(EgressPolicy, TheKernelsVerdict) {
  EgressRules rules;
  rules.allow = {{cidr("127.0.0.2"), 5432}, {cidr("10.1.0.0/16"), 0}};
  rules.deny = {cidr("10.1.2.0/24"), cidr("198.51.100.7")};
  const EgressGate gate = egressGate(rules, {cidr("203.0.113.7")}, {cidr("10.255.255.53")});
  auto verdict = [&gate](const char* address, uint16_t port) {
    const sockaddr_storage storage = inet(address, port);
    return egressVerdict(gate, storage, sizeof(sockaddr_in));
  };
  EXPECT_EQ(verdict("93.184.216.34", 443), 0) << "the internet";
  EXPECT_EQ(verdict("127.0.0.1", 80), EACCES);
  EXPECT_EQ(verdict("127.0.0.2", 5432), 0) << "the port of the exception";
  EXPECT_EQ(verdict("127.0.0.2", 5433), EACCES) << "no other port of it";
  EXPECT_EQ(verdict("10.1.9.9", 22), 0) << "a range opened whole";
  EXPECT_EQ(verdict("10.1.2.3", 22), EACCES) << "egress_deny wins";
  EXPECT_EQ(verdict("198.51.100.7", 443), EACCES);
  EXPECT_EQ(verdict("203.0.113.7", 443), EACCES) << "the host's own address";
  EXPECT_EQ(verdict("10.255.255.53", 53), 0) << "the resolver";
  EXPECT_EQ(verdict("10.255.255.53", 80), EACCES) << "only for DNS";
  EXPECT_EQ(verdict("169.254.169.254", 80), EACCES);
  sockaddr_storage other{};
  other.ss_family = AF_INET6;
  EXPECT_EQ(egressVerdict(gate, other, sizeof(sockaddr_in6)), EAFNOSUPPORT);
  other.ss_family = AF_UNIX;
  EXPECT_EQ(egressVerdict(gate, other, sizeof(sa_family_t) + 2), EACCES);
  other.ss_family = AF_UNSPEC;
  EXPECT_EQ(egressVerdict(gate, other, sizeof(sa_family_t)), 0) << "a datagram disconnect";
  EXPECT_EQ(describeAddress(inet("127.0.0.2", 5433), sizeof(sockaddr_in)), "127.0.0.2:5433");
}

TEST(EgressPolicy, SubtractingCarvesTheHoleOut) {
  // 127.0.0.0/8 without 127.0.0.2: 24 ranges, none containing it, together all the rest.
  auto rest = subtractCidrs({cidr("127.0.0.0/8")}, {cidr("127.0.0.2")});
  EXPECT_EQ(rest.size(), 24u);
  uint64_t addresses = 0;
  for (const Ipv4Cidr& range : rest) {
    EXPECT_FALSE(range.contains(cidr("127.0.0.2"))) << formatIpv4Cidr(range);
    EXPECT_TRUE(cidr("127.0.0.0/8").contains(range));
    addresses += 1ull << (32 - range.prefix);
  }
  EXPECT_EQ(addresses, (1ull << 24) - 1);
  EXPECT_EQ(texts(subtractCidrs({cidr("10.0.0.0/8")}, {cidr("0.0.0.0/0")})),
            std::vector<std::string>{});
  EXPECT_EQ(texts(subtractCidrs({cidr("10.0.0.0/8")}, {cidr("11.0.0.0/8")})),
            std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(texts(subtractCidrs({cidr("10.0.0.0/8")}, {cidr("10.128.0.0/9")})),
            std::vector<std::string>{"10.0.0.0/9"});
}

TEST(EgressPolicy, DenyListCoversTheHostAndPrivateNetworksByDefault) {
  const std::string list =
      denyNetList({}, {cidr("203.0.113.7"), cidr("127.0.0.1")}, {"2001:db8::5"});
  for (const char* entry : {"127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                            "169.254.0.0/16", "0.0.0.0/8", "224.0.0.0/4", "100.64.0.0/10",
                            "203.0.113.7", "[::1]", "[::]", "[2001:db8::5]"})
    EXPECT_TRUE(listed(list, entry)) << entry;
  // The host's loopback address is inside a default range: listed once.
  EXPECT_FALSE(listed(list, "127.0.0.1"));
}

TEST(EgressPolicy, AllowOpensAndDenyWins) {
  EgressRules rules;
  rules.allow = {{cidr("127.0.0.0/8"), 0}, {cidr("203.0.113.7"), 443}};
  rules.deny = {cidr("127.0.0.3"), cidr("198.51.100.0/24")};
  const std::string list = denyNetList(rules, {cidr("203.0.113.7")}, {});
  EXPECT_FALSE(listed(list, "127.0.0.0/8"));
  EXPECT_EQ(list.find("203.0.113.7"), std::string::npos);
  EXPECT_TRUE(listed(list, "127.0.0.3"));
  EXPECT_TRUE(listed(list, "198.51.100.0/24"));
  EXPECT_TRUE(listed(list, "10.0.0.0/8"));
}

}  // namespace
}  // namespace subgate
