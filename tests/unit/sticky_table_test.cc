#include "core/isolates/sticky_table.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace subgate {
namespace {

struct Target {
  int id;
};

using Table = StickyTable<Target>;
using namespace std::chrono_literals;

TEST(StickyTable, AnIdentifierGoesBackToItsLastTarget) {
  Table table;
  auto a = std::make_shared<Target>(Target{1});
  auto b = std::make_shared<Target>(Target{2});
  Table::Time t0{};
  EXPECT_EQ(table.find("alice"), nullptr);
  table.opened("alice", a, t0);
  table.opened("alice", a, t0);
  EXPECT_EQ(table.find("alice"), a);
  EXPECT_EQ(table.openCount("alice"), 2u);
  // Moved (its isolate was full): the count restarts on the new target and the old requests
  // ending do not touch it.
  table.opened("alice", b, t0);
  EXPECT_EQ(table.find("alice"), b);
  EXPECT_EQ(table.openCount("alice"), 1u);
  table.closed("alice", a.get(), t0);
  table.closed("alice", a.get(), t0);
  EXPECT_EQ(table.openCount("alice"), 1u);
  table.closed("alice", b.get(), t0);
  table.closed("alice", b.get(), t0);  // never below zero
  EXPECT_EQ(table.openCount("alice"), 0u);
  EXPECT_EQ(table.find("alice"), b);
}

TEST(StickyTable, EntriesLiveWhileOpenPlusTtl) {
  Table table;
  auto a = std::make_shared<Target>(Target{1});
  auto usable = [](const Target&) { return true; };
  Table::Time t0{};
  table.opened("open", a, t0);
  table.opened("done", a, t0);
  table.closed("done", a.get(), t0 + 1s);
  table.sweep(t0 + 1h, 60000ms, usable);
  EXPECT_EQ(table.find("open"), a) << "a request is still open";
  EXPECT_EQ(table.find("done"), nullptr);
  table.closed("open", a.get(), t0 + 1h);
  table.sweep(t0 + 1h + 59s, 60000ms, usable);
  EXPECT_EQ(table.find("open"), a) << "within sticky_ttl of its last request";
  table.sweep(t0 + 1h + 60s, 60000ms, usable);
  EXPECT_EQ(table.size(), 0u);
}

TEST(StickyTable, GoneOrUnusableTargetsAreDropped) {
  Table table;
  auto a = std::make_shared<Target>(Target{1});
  auto b = std::make_shared<Target>(Target{2});
  Table::Time t0{};
  table.opened("x", a, t0);
  table.opened("y", b, t0);
  a.reset();
  EXPECT_EQ(table.find("x"), nullptr);
  table.sweep(t0, 60000ms, [](const Target& t) { return t.id != 2; });
  EXPECT_EQ(table.size(), 0u);
}

TEST(StickyTable, BoundedWithLeastRecentlyUsedEviction) {
  Table table(3);
  auto a = std::make_shared<Target>(Target{1});
  Table::Time t0{};
  for (const char* id : {"1", "2", "3"}) table.opened(id, a, t0);
  table.opened("1", a, t0);  // 1 is now the most recently used; 2 the least
  table.opened("4", a, t0);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(table.find("2"), nullptr);
  EXPECT_EQ(table.find("1"), a);
  EXPECT_EQ(table.find("4"), a);
  table.closed("2", a.get(), t0);  // an evicted identifier's requests end harmlessly
  table.setMax(1);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.find("4"), a);
  table.setMax(0);
  table.opened("5", a, t0);
  EXPECT_EQ(table.size(), 0u) << "sticky_max 0 turns stickiness off";
}

TEST(StickyTable, ListsTheMostRecentlyUsedFirstForStatus) {
  Table table;
  auto a = std::make_shared<Target>(Target{1});
  Table::Time t0{};
  {
    auto b = std::make_shared<Target>(Target{2});
    for (const char* id : {"1", "2", "3"}) table.opened(id, a, t0);
    table.opened("2", b, t0);  // moved to b, which then goes away
    table.opened("1", a, t0);
  }
  std::vector<std::string> seen;
  table.forEachRecent(2, [&](std::string_view id, std::shared_ptr<Target> target, uint32_t open) {
    seen.push_back(std::string(id) + "@" + (target ? std::to_string(target->id) : "gone") + "/" +
                   std::to_string(open));
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"1@1/2", "2@gone/1"}));
  seen.clear();
  table.forEachRecent(10, [&](std::string_view id, auto, uint32_t) { seen.emplace_back(id); });
  EXPECT_EQ(seen, (std::vector<std::string>{"1", "2", "3"}));
}

}  // namespace
}  // namespace subgate
