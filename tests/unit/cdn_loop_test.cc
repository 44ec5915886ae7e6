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

// A quote that is never closed must not hide the entries after it: the harness appends subgate's
// entry to whatever CDN-Loop a tenant's fetch carries, and a hidden entry was a count of 0, so a
// loop through other deployments went on past isolate_loop_limit.
TEST(CdnLoop, AnUnclosedQuoteHidesNoEntry) {
  CdnLoop loop = parse({R"(x", subgate; hops=5)"});
  EXPECT_EQ(loop.hops, 5u);
  EXPECT_EQ(loop.others, R"(x")");
  EXPECT_EQ(parse({R"(cdn; v="a\, subgate; hops=3)"}).hops, 3u) << "an escape at the end";
  EXPECT_EQ(parse({R"(a="b,c", d"e, subgate; hops=4)"}).hops, 4u)
      << "a closed string, then one that is never closed";
  // What subgate passes on parses back the same.
  EXPECT_EQ(parse({cdnLoopValue(loop, 6)}).hops, 6u);
}

}  // namespace
}  // namespace subgate
