// core/ingress/cdn_loop.h: subgate's hop count in CDN-Loop (RFC 8586).
#include "core/ingress/cdn_loop.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace subgate {
namespace {

CdnLoop parse(std::vector<std::string_view> values) { return parseCdnLoop(values); }

TEST(CdnLoop, NoHeaderIsNoHop) {
  CdnLoop loop = parse({});
  EXPECT_EQ(loop.hops, 0u);
  EXPECT_EQ(loop.others, "");
  EXPECT_EQ(cdnLoopValue(loop, 1), "subgate; hops=1");
}

TEST(CdnLoop, OtherCdnsEntriesStayInOrderAndSubgatesIsReplaced) {
  CdnLoop loop = parse({"cdn.example; v=1, Subgate ;hops=3", "other:8080, subgate; hops=2"});
  EXPECT_EQ(loop.hops, 3u) << "the largest of subgate's entries";
  EXPECT_EQ(loop.others, "cdn.example; v=1, other:8080");
  EXPECT_EQ(cdnLoopValue(loop, 4), "cdn.example; v=1, other:8080, subgate; hops=4");
}

TEST(CdnLoop, QuotedCommasAndSemicolonsDoNotSplit) {
  CdnLoop loop = parse({R"(cdn; note="a, subgate; hops=9", subgate; x="y;z"; hops=2)"});
  EXPECT_EQ(loop.hops, 2u);
  EXPECT_EQ(loop.others, R"(cdn; note="a, subgate; hops=9")");
}

TEST(CdnLoop, AnEntryWithoutAValidCountCountsOne) {
  EXPECT_EQ(parse({"subgate"}).hops, 1u);
  EXPECT_EQ(parse({"subgate; hops=x"}).hops, 1u);
  EXPECT_EQ(parse({"subgate; hops=0"}).hops, 1u);
  EXPECT_EQ(parse({"subgate; hops=99999999999"}).hops, UINT32_MAX);
  EXPECT_EQ(parse({"subgateway; hops=5"}).hops, 0u) << "another cdn-id";
  EXPECT_EQ(parse({" , ,"}).others, "");
}

}  // namespace
}  // namespace subgate
