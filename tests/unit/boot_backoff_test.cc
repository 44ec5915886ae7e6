#include "core/isolates/boot_backoff.h"

#include <gtest/gtest.h>

#include <string>

namespace subgate {
namespace {

using std::chrono::milliseconds;

TEST(BootBackoffTest, AFailureIsAnsweredUntilItsDelayPasses) {
  BootBackoff backoff;
  backoff.configure(milliseconds(100), milliseconds(1000));
  const SteadyTime t0{};
  EXPECT_EQ(backoff.blocking("a", t0), nullptr);
  EXPECT_EQ(backoff.failed("a", ErrorKind::kOriginBootRpcError, "/boot answered 503", t0),
            milliseconds(100));
  const BootBackoff::Failure* f = backoff.blocking("a", t0 + milliseconds(99));
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->error, ErrorKind::kOriginBootRpcError);
  EXPECT_EQ(f->message, "/boot answered 503");
  EXPECT_EQ(backoff.blocking("a", t0 + milliseconds(100)), nullptr) << "retried after the delay";
  EXPECT_EQ(backoff.blocking("b", t0), nullptr) << "other deployments are not held back";
}

TEST(BootBackoffTest, TheDelayDoublesUpToTheLongestAndASuccessForgets) {
  BootBackoff backoff;
  backoff.configure(milliseconds(100), milliseconds(500));
  SteadyTime now{};
  for (long expected : {100, 200, 400, 500, 500}) {
    EXPECT_EQ(backoff.failed("a", ErrorKind::kInternalBootRpcError, "down", now),
              milliseconds(expected));
    now += milliseconds(expected);
  }
  backoff.succeeded("a");
  EXPECT_EQ(backoff.blocking("a", now), nullptr);
  EXPECT_EQ(backoff.failed("a", ErrorKind::kInternalBootRpcError, "down", now), milliseconds(100))
      << "a success starts the count again";
}

TEST(BootBackoffTest, ManyFailuresInARowDoNotOverflow) {
  BootBackoff backoff;
  backoff.configure(milliseconds(1000), milliseconds(30000));
  SteadyTime now{};
  for (int i = 0; i < 100; ++i)
    EXPECT_LE(backoff.failed("a", ErrorKind::kInternalBootRpcError, "down", now),
              milliseconds(30000));
}

TEST(BootBackoffTest, OffRemembersNothing) {
  BootBackoff backoff;
  backoff.configure(milliseconds(100), milliseconds(100));
  backoff.failed("a", ErrorKind::kDeploymentNotFound, "no such deployment", SteadyTime{});
  backoff.configure(milliseconds(0), milliseconds(0));
  EXPECT_EQ(backoff.size(), 0u);
  EXPECT_EQ(backoff.failed("a", ErrorKind::kDeploymentNotFound, "x", SteadyTime{}),
            milliseconds(0));
  EXPECT_EQ(backoff.blocking("a", SteadyTime{}), nullptr);
}

TEST(BootBackoffTest, TheTableIsBounded) {
  BootBackoff backoff;
  backoff.configure(milliseconds(100), milliseconds(100));
  SteadyTime now{};
  for (size_t i = 0; i < BootBackoff::kMaxEntries + 50; ++i)
    backoff.failed(std::to_string(i), ErrorKind::kInternalBootRpcError, "down",
                   now + milliseconds(static_cast<long>(i)));
  EXPECT_LE(backoff.size(), BootBackoff::kMaxEntries);
  // The entries that end soonest went first; the newest failure is remembered.
  EXPECT_EQ(backoff.blocking("0", now), nullptr);
  EXPECT_NE(backoff.blocking(std::to_string(BootBackoff::kMaxEntries + 49), now), nullptr);
}

}  // namespace
}  // namespace subgate
