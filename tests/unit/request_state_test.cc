// Per-module request slots (Request::state<T>()): each module gets its own object per Request,
// created on first use and cleared, not freed, for the next request on the same connection.
#include <gtest/gtest.h>

#include "core/pipeline/request.h"

namespace subgate {
namespace {

struct CountingState final : ModuleRequestState {
  int value = 0;
  int clears = 0;
  void clear() override {
    value = 0;
    ++clears;
  }
};

struct OtherState final : ModuleRequestState {
  std::string text;
  void clear() override { text.clear(); }
};

TEST(RequestState, EachModuleHasItsOwnSlotKeptAcrossRequests) {
  assignModuleIndexes();
  auto modules = allModules();
  ASSERT_GE(modules.size(), 2u);
  const Module& first = *modules[0];
  const Module& second = *modules[1];
  EXPECT_NE(first.index(), second.index());

  Request request;
  CountingState& counting = request.state<CountingState>(first);
  counting.value = 7;
  request.state<OtherState>(second).text = "kept apart";
  EXPECT_EQ(&request.state<CountingState>(first), &counting);  // created once
  EXPECT_EQ(request.state<CountingState>(first).value, 7);
  EXPECT_EQ(request.state<OtherState>(second).text, "kept apart");

  request.reset();                                             // the next request on the connection
  EXPECT_EQ(&request.state<CountingState>(first), &counting);  // the same object, cleared
  EXPECT_EQ(counting.value, 0);
  EXPECT_EQ(counting.clears, 1);
  EXPECT_EQ(request.state<OtherState>(second).text, "");
}

}  // namespace
}  // namespace subgate
