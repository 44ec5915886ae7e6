#include "core/isolates/egress_policy.h"

#include <gtest/gtest.h>

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

TEST(EgressPolicy, EntriesExplainWhatIsWrong) {
  Ipv4Cidr out;
  std::string error;
  EXPECT_FALSE(parseEgressEntry("127.0.0.1:5432", out, error));
  EXPECT_NE(error.find("without a port"), std::string::npos) << error;
  EXPECT_FALSE(parseEgressEntry("[fc00::1]", out, error));
  EXPECT_NE(error.find("IPv6"), std::string::npos) << error;
  EXPECT_FALSE(parseEgressEntry("db.internal", out, error));
  EXPECT_NE(error.find("not an IPv4 address or CIDR"), std::string::npos) << error;
  EXPECT_TRUE(parseEgressEntry("192.168.1.0/24", out, error));
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
  rules.allow = {cidr("127.0.0.0/8"), cidr("203.0.113.7")};
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
