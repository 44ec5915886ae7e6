#include "core/isolates/cluster_hub.h"

#include <event2/event.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <jansson.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace subgate {
namespace {

using namespace std::chrono_literals;

// Members are pipes: the hub writes into one end as it would into an isolate's stdin, the test
// reads the other end as the harness would.
class ClusterHubTest : public ::testing::Test {
 protected:
  void SetUp() override { base_ = event_base_new(); }
  void TearDown() override {
    hub_.reset();
    for (auto& [r, w] : pipes_) {
      close(r);
      close(w);
    }
    event_base_free(base_);
  }

  ClusterHub& hub(std::chrono::milliseconds timeout = 2000ms) {
    if (!hub_) hub_ = std::make_unique<ClusterHub>(base_, timeout);
    return *hub_;
  }

  // Joins member `id` to `cluster`; returns the index of its pipe.
  size_t join(uint64_t id, const std::string& cluster) {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_NONBLOCK | O_CLOEXEC), 0);
    pipes_.emplace_back(fds[0], fds[1]);
    hub().join(id, cluster, fds[1]);
    return pipes_.size() - 1;
  }

  // Every whole line the member has been sent so far, parsed.
  std::vector<json_t*> lines(size_t member) {
    std::string& text = pending_[member];
    char buf[65536];
    for (ssize_t n; (n = read(pipes_[member].first, buf, sizeof buf)) > 0;) text.append(buf, n);
    std::vector<json_t*> out;
    for (size_t nl; (nl = text.find('\n')) != std::string::npos;) {
      json_t* value = json_loadb(text.data(), nl, 0, nullptr);
      EXPECT_NE(value, nullptr) << text.substr(0, nl);
      out.push_back(value);
      owned_.push_back(value);
      text.erase(0, nl + 1);
    }
    return out;
  }

  // The one line the member has been sent.
  json_t* only(size_t member) {
    auto got = lines(member);
    EXPECT_EQ(got.size(), 1u);
    return got.empty() ? json_null() : got[0];
  }

  // Runs the loop until `member` has a line (or two seconds pass).
  json_t* await(size_t member) {
    for (int i = 0; i < 200; ++i) {
      auto got = lines(member);
      if (!got.empty()) return got[0];
      timeval tv{0, 10000};
      event_base_loopexit(base_, &tv);
      event_base_dispatch(base_);
    }
    ADD_FAILURE() << "no line for member " << member;
    return json_null();
  }

  static int64_t number(json_t* message, const char* name) {
    return json_integer_value(json_object_get(message, name));
  }
  static std::string text(json_t* message, const char* name) {
    const char* s = json_string_value(json_object_get(message, name));
    return s ? s : "";
  }

  void ack(uint64_t from, json_t* delivery, int delivered) {
    hub().report(from, "{\"op\":\"ack\",\"id\":" + std::to_string(number(delivery, "id")) +
                           ",\"delivered\":" + std::to_string(delivered) + "}");
  }

  ~ClusterHubTest() override {
    for (json_t* value : owned_) json_decref(value);
  }

  event_base* base_ = nullptr;
  std::unique_ptr<ClusterHub> hub_;
  std::vector<std::pair<int, int>> pipes_;
  std::map<size_t, std::string> pending_;
  std::vector<json_t*> owned_;
};

TEST_F(ClusterHubTest, BroadcastReachesEverySiblingAndTheCallerHearsTheTotal) {
  size_t a = join(1, "d"), b = join(2, "d"), c = join(3, "d"), other = join(4, "e");
  hub().report(1, R"({"op":"send","id":7,"msg":"hi\nthere"})");
  EXPECT_TRUE(lines(a).empty()) << "the caller delivers to its own connections itself";
  EXPECT_TRUE(lines(other).empty()) << "another deployment's cluster";
  json_t* to_b = only(b);
  json_t* to_c = only(c);
  EXPECT_EQ(text(to_b, "op"), "deliver");
  EXPECT_EQ(text(to_b, "msg"), "hi\nthere");
  EXPECT_EQ(json_object_get(to_b, "uid"), nullptr);
  ack(2, to_b, 3);
  EXPECT_TRUE(lines(a).empty()) << "still waiting for member 3";
  ack(3, to_c, 2);
  json_t* result = only(a);
  EXPECT_EQ(text(result, "op"), "sent");
  EXPECT_EQ(number(result, "id"), 7);
  EXPECT_EQ(number(result, "delivered"), 5);
  EXPECT_EQ(number(result, "isolates"), 2);
  EXPECT_EQ(number(result, "failed"), 0);
  ClusterHub::Counters totals = hub().totals();
  EXPECT_EQ(totals.broadcasts, 1u);
  EXPECT_EQ(totals.deliveries, 5u);
}

TEST_F(ClusterHubTest, WhisperGoesOnlyWhereTheIdentifierIsConnected) {
  size_t a = join(1, "d"), b = join(2, "d"), c = join(3, "d");
  hub().report(3, R"({"op":"join","uid":"carol"})");
  hub().report(1, R"({"op":"send","id":1,"msg":"psst","uid":"carol"})");
  EXPECT_TRUE(lines(b).empty());
  json_t* to_c = only(c);
  EXPECT_EQ(text(to_c, "uid"), "carol");
  ack(3, to_c, 1);
  EXPECT_EQ(number(only(a), "delivered"), 1);
  // Once carol's last connection there closed, nobody is asked.
  hub().report(3, R"({"op":"leave","uid":"carol"})");
  hub().report(1, R"({"op":"send","id":2,"msg":"psst","uid":"carol"})");
  EXPECT_TRUE(lines(c).empty());
  json_t* result = only(a);
  EXPECT_EQ(number(result, "id"), 2);
  EXPECT_EQ(number(result, "isolates"), 0);
}

TEST_F(ClusterHubTest, GossipGathersAnswersAndMarksASilentSiblingAsTimedOut) {
  hub(50ms);
  size_t a = join(1, "d"), b = join(2, "d"), c = join(3, "d"), d = join(4, "d");
  hub().report(1, R"({"op":"gossip","id":9,"msg":{"type":"ask"}})");
  json_t* ask_b = only(b);
  json_t* ask_c = only(c);
  only(d);  // never answers
  EXPECT_EQ(text(ask_b, "op"), "gossip");
  EXPECT_STREQ(json_string_value(json_object_get(json_object_get(ask_b, "msg"), "type")), "ask");
  hub().report(2, "{\"op\":\"answer\",\"id\":" + std::to_string(number(ask_b, "id")) +
                      ",\"ok\":true,\"value\":[1,2]}");
  hub().report(3, "{\"op\":\"answer\",\"id\":" + std::to_string(number(ask_c, "id")) +
                      ",\"ok\":false,\"error\":\"no handler\"}");
  json_t* result = await(a);
  EXPECT_EQ(text(result, "op"), "gossiped");
  char* answers = json_dumps(json_object_get(result, "answers"), JSON_COMPACT);
  EXPECT_STREQ(answers, "[[1,2]]");
  free(answers);
  EXPECT_EQ(number(result, "asked"), 3);
  EXPECT_EQ(number(result, "failed"), 1);
  EXPECT_EQ(number(result, "timed_out"), 1);
  EXPECT_TRUE(json_is_true(json_object_get(result, "partial")));
  // A late answer is ignored.
  hub().report(4, "{\"op\":\"answer\",\"id\":" + std::to_string(number(ask_b, "id")) +
                      ",\"ok\":true,\"value\":3}");
  EXPECT_TRUE(lines(a).empty());
  EXPECT_EQ(hub().totals().timed_out, 1u);
  EXPECT_EQ(hub().totals().answers, 1u);
}

TEST_F(ClusterHubTest, ASiblingThatLeavesCountsAsFailedAndACallerThatLeavesHearsNothing) {
  size_t a = join(1, "d"), b = join(2, "d");
  join(3, "d");
  hub().report(1, R"({"op":"send","id":1,"msg":"x"})");
  hub().leave(3);
  ack(2, only(b), 1);
  json_t* result = only(a);
  EXPECT_EQ(number(result, "failed"), 1);
  EXPECT_EQ(number(result, "delivered"), 1);
  hub().report(2, R"({"op":"send","id":5,"msg":"y"})");
  json_t* to_a = only(a);
  hub().leave(2);
  ack(1, to_a, 1);  // the caller is gone: nothing to write, nothing breaks
  EXPECT_TRUE(lines(b).empty());
  hub().leave(2);  // idempotent
  EXPECT_EQ(hub().members(), 1u);
}

TEST_F(ClusterHubTest, ADedicatedIsolateHasNoSiblings) {
  size_t solo = join(1, "");
  size_t other = join(2, "");
  hub().report(1, R"({"op":"send","id":3,"msg":"x"})");
  json_t* result = only(solo);
  EXPECT_EQ(number(result, "isolates"), 0);
  hub().report(1, R"({"op":"gossip","id":4,"msg":null})");
  result = only(solo);
  EXPECT_EQ(text(result, "op"), "gossiped");
  EXPECT_EQ(json_array_size(json_object_get(result, "answers")), 0u);
  EXPECT_FALSE(json_is_true(json_object_get(result, "partial")));
  EXPECT_TRUE(lines(other).empty());
}

TEST_F(ClusterHubTest, MalformedReportsAreCountedAndIgnored) {
  size_t a = join(1, "d");
  join(2, "d");
  for (const char* bad : {"not json", "[1]", R"({"op":"send","msg":"no id"})",
                          R"({"op":"send","id":1,"msg":{"not":"text"}})", R"({"op":"nope"})",
                          R"({"op":"send","id":1,"msg":"x","uid":5})"})
    hub().report(1, bad);
  EXPECT_EQ(hub().totals().rejected, 6u);
  EXPECT_TRUE(lines(a).empty());
  hub().report(99, R"({"op":"send","id":1,"msg":"x"})");  // not a member: ignored
  EXPECT_EQ(hub().totals().broadcasts, 0u);
}

TEST_F(ClusterHubTest, AMessageLargerThanThePipeArrivesWholeAsTheReaderDrains) {
  join(1, "d");
  size_t b = join(2, "d");
  const std::string big(300000, 'x');
  hub().report(1, "{\"op\":\"send\",\"id\":1,\"msg\":\"" + big + "\"}");
  json_t* delivery = await(b);
  EXPECT_EQ(text(delivery, "msg"), big);
}

TEST_F(ClusterHubTest, StatusListsLiveClustersAndTotalsOutliveThem) {
  join(1, "d");
  join(2, "d");
  hub().report(1, R"({"op":"join","uid":"u"})");
  hub().report(1, R"({"op":"send","id":1,"msg":"x"})");
  json_t* d = hub().clusterJson("d");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(json_integer_value(json_object_get(d, "members")), 2);
  EXPECT_EQ(json_integer_value(json_object_get(d, "identifiers")), 1);
  json_decref(d);
  hub().leave(1);
  hub().leave(2);
  EXPECT_EQ(hub().clusterJson("d"), nullptr) << "a cluster without members is retired";
  EXPECT_EQ(hub().totals().broadcasts, 1u);
  EXPECT_EQ(hub().totals().failed, 1u);  // member 2 left before acknowledging
}

}  // namespace
}  // namespace subgate
