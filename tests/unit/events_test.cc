// core/events without sockets: the NDJSON encoding of events, gzip, the sender's batching,
// dropping and retry policy on a fake clock (EventQueue), the per-isolate log rate limit, the
// events token, how a POST's answer is classified, and the sender's thread with a fake poster.
#include <gtest/gtest.h>
#include <jansson.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/events/event_queue.h"
#include "core/events/event_record.h"
#include "core/events/event_sender.h"
#include "core/events/gzip.h"
#include "core/events/log_rate_limiter.h"
#include "core/jwt/jwt.h"

namespace subgate {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// ---- encoding

json_t* parseLine(const std::string& line) {
  EXPECT_TRUE(line.ends_with("\n"));
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line";
  json_error_t error;
  json_t* value = json_loadb(line.data(), line.size() - 1, 0, &error);
  EXPECT_TRUE(value) << error.text << ": " << line;
  return value;
}

TEST(EventRecord, EncodesOneNdjsonLineWithEveryField) {
  EventRecord event;
  event.deployment_id = "dep-1";
  event.time = std::chrono::system_clock::time_point(milliseconds(1765065045123));
  event.type = EventType::kLog;
  event.payload = logPayload("hello\n\"world\"", LogEventLevel::kWarn);
  event.execution_id = "0b8e0c1e-7a2f-4c3d-9e8f-0123456789ab";
  event.region = "eu-west-1";
  const std::string line = encodeEventLine(event);
  EXPECT_EQ(line,
            R"({"deployment_id":"dep-1","timestamp":"2025-12-06T23:50:45.123Z","event_type":"log",)"
            R"("event":{"msg":"hello\n\"world\"","level":"warn"},)"
            R"("execution_id":"0b8e0c1e-7a2f-4c3d-9e8f-0123456789ab","region":"eu-west-1"})"
            "\n");
  json_decref(parseLine(line));
}

TEST(EventRecord, NamesEveryTypeAndLevel) {
  EXPECT_EQ(eventTypeName(EventType::kBoot), "boot");
  EXPECT_EQ(eventTypeName(EventType::kBootFailure), "bootFailure");
  EXPECT_EQ(eventTypeName(EventType::kLog), "log");
  EXPECT_EQ(eventTypeName(EventType::kUncaughtException), "uncaughtException");
  EXPECT_EQ(eventTypeName(EventType::kMemoryLimit), "memoryLimit");
  EXPECT_EQ(eventTypeName(EventType::kTimeLimit), "timeLimit");
  for (const char* name : {"debug", "info", "warn", "error"}) {
    LogEventLevel level;
    ASSERT_TRUE(parseLogEventLevel(name, level));
    EXPECT_EQ(logEventLevelName(level), name);
  }
  LogEventLevel level;
  EXPECT_FALSE(parseLogEventLevel("log", level));
  EXPECT_FALSE(parseLogEventLevel("", level));
}

TEST(EventRecord, Payloads) {
  EXPECT_EQ(bootPayload(milliseconds(1234)), R"({"boot_time":1.234})");
  EXPECT_EQ(bootPayload(std::chrono::microseconds(14100)), R"({"boot_time":0.014})");
  EXPECT_EQ(messagePayload("out of memory"), R"({"msg":"out of memory"})");
  EXPECT_EQ(logPayload("x", LogEventLevel::kDebug), R"({"msg":"x","level":"debug"})");
  EXPECT_EQ(logPayload("x", LogEventLevel::kInfo, "rid-1"),
            R"({"msg":"x","level":"info","request_id":"rid-1"})");
}

TEST(EventRecord, Rfc3339InUtcWithMilliseconds) {
  using std::chrono::system_clock;
  EXPECT_EQ(rfc3339Millis(system_clock::time_point()), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339Millis(system_clock::time_point(milliseconds(951782400007))),
            "2000-02-29T00:00:00.007Z");
  EXPECT_EQ(rfc3339Millis(system_clock::time_point(milliseconds(-1))), "1969-12-31T23:59:59.999Z");
}

TEST(EventRecord, AnyBytesBecomeValidJsonAndUtf8) {
  auto text = [](std::string_view in) {
    std::string out;
    appendJsonText(out, in);
    return out;
  };
  EXPECT_EQ(text("plain"), "\"plain\"");
  EXPECT_EQ(text(std::string_view("a\0b\x1f\x7f", 5)), R"("a\u0000b\u001f\u007f")");
  EXPECT_EQ(text("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  // Invalid: a lone continuation byte, a truncated sequence, an overlong form, a surrogate,
  // beyond U+10FFFF, 0xff.
  const std::string replacement = "\xef\xbf\xbd";
  EXPECT_EQ(text("\x80"), "\"" + replacement + "\"");
  EXPECT_EQ(text("\xe2\x82"), "\"" + replacement + replacement + "\"");
  EXPECT_EQ(text("\xc0\xaf"), "\"" + replacement + replacement + "\"");
  EXPECT_EQ(text("\xed\xa0\x80"), "\"" + replacement + replacement + replacement + "\"");
  EXPECT_EQ(text("\xf4\x90\x80\x80").substr(0, 4), "\"" + replacement);
  EXPECT_EQ(text("a\xff"), "\"a" + replacement + "\"");
  // Whatever it got, jansson (which insists on UTF-8) reads it back.
  EventRecord event;
  event.payload = messagePayload("\xff\xfe\x80 bytes \xc3");
  event.deployment_id = "\xe2\x28\xa1";
  json_decref(parseLine(encodeEventLine(event)));
}

// ---- gzip

TEST(Gzip, RoundTripsAndRefusesWhatItShould) {
  std::string ndjson;
  for (int i = 0; i < 1000; ++i) ndjson += "{\"n\":" + std::to_string(i) + "}\n";
  std::string compressed;
  ASSERT_TRUE(gzipCompress(ndjson, compressed));
  EXPECT_EQ(compressed.substr(0, 2), "\x1f\x8b") << "a gzip member";
  EXPECT_LT(compressed.size(), ndjson.size() / 4);
  std::string out, error;
  ASSERT_TRUE(gzipDecompress(compressed, 1 << 20, out, error)) << error;
  EXPECT_EQ(out, ndjson);
  // Two members in a row are one body.
  std::string second;
  ASSERT_TRUE(gzipCompress("more\n", second));
  ASSERT_TRUE(gzipDecompress(compressed + second, 1 << 20, out, error)) << error;
  EXPECT_EQ(out, ndjson + "more\n");
  EXPECT_FALSE(gzipDecompress(compressed, ndjson.size() - 1, out, error));
  EXPECT_NE(error.find("larger than"), std::string::npos) << error;
  EXPECT_FALSE(gzipDecompress(compressed.substr(0, compressed.size() / 2), 1 << 20, out, error));
  EXPECT_NE(error.find("truncated"), std::string::npos) << error;
  EXPECT_FALSE(gzipDecompress("not gzip at all", 1 << 20, out, error));
  EXPECT_NE(error.find("malformed"), std::string::npos) << error;
  EXPECT_TRUE(out.empty());
  std::string empty;
  ASSERT_TRUE(gzipCompress("", empty));
  ASSERT_TRUE(gzipDecompress(empty, 10, out, error)) << error;
  EXPECT_EQ(out, "");
}

TEST(Gzip, ABombStopsAtTheCap) {
  std::string zeros(64 << 20, '\0');
  std::string compressed;
  ASSERT_TRUE(gzipCompress(zeros, compressed));
  EXPECT_LT(compressed.size(), 1u << 20);
  std::string out, error;
  EXPECT_FALSE(gzipDecompress(compressed, 1 << 20, out, error));
  EXPECT_TRUE(out.empty());
}

// ---- the batching policy on a fake clock

SteadyTime t0() { return SteadyTime(seconds(1000)); }

EventBatchPolicy policy() {
  EventBatchPolicy p;
  p.max_events = 3;
  p.max_bytes = 100;
  p.flush_interval = milliseconds(1000);
  p.queue_max = 5;
  p.backoff_min = milliseconds(100);
  p.backoff_max = milliseconds(1000);
  p.max_attempts = 4;
  return p;
}

TEST(EventQueue, FlushesByTime) {
  EventQueue q(policy());
  EXPECT_FALSE(q.wakeAt());
  q.push("a\n", t0());
  q.push("b\n", t0() + milliseconds(500));
  EXPECT_EQ(q.wakeAt(), t0() + milliseconds(1000)) << "the oldest event's interval";
  EXPECT_FALSE(q.take(t0() + milliseconds(999)));
  auto batch = q.take(t0() + milliseconds(1000));
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->body, "a\nb\n");
  EXPECT_EQ(batch->events, 2u);
  EXPECT_TRUE(q.inFlight());
  EXPECT_FALSE(q.wakeAt()) << "one batch in flight at a time";
  q.push("c\n", t0() + milliseconds(1100));
  EXPECT_FALSE(q.take(t0() + seconds(5)));
  q.done(EventQueue::Outcome::kSent, t0() + milliseconds(1200));
  EXPECT_EQ(q.counts().sent, 2u);
  EXPECT_EQ(q.wakeAt(), t0() + milliseconds(2100));
  EXPECT_EQ(q.counts().posts, 1u);
}

TEST(EventQueue, FlushesByCountAndBytes) {
  EventQueue q(policy());
  q.push("1\n", t0());
  q.push("2\n", t0());
  EXPECT_FALSE(q.take(t0()));
  q.push("3\n", t0());
  q.push("4\n", t0());
  auto batch = q.take(t0());  // three events are a batch: due at once
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->body, "1\n2\n3\n") << "at most max_events, oldest first";
  q.done(EventQueue::Outcome::kSent, t0());
  EXPECT_EQ(q.queued(), 1u);
  EXPECT_FALSE(q.take(t0()));

  EventQueue bytes(policy());
  const std::string sixty(59, 'x');
  bytes.push(sixty + "\n", t0());
  EXPECT_FALSE(bytes.take(t0()));
  bytes.push(sixty + "\n", t0());  // 120 bytes >= 100: due
  batch = bytes.take(t0());
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->events, 1u) << "a second line would pass max_bytes";
  bytes.done(EventQueue::Outcome::kSent, t0());
  // One event larger than max_bytes still goes, alone.
  bytes.push(std::string(300, 'y') + "\n", t0());
  batch = bytes.take(t0());
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->events, 1u);
  EXPECT_EQ(batch->body.size(), 60u) << "the older line first";
}

TEST(EventQueue, AFullQueueDropsTheOldest) {
  EventQueue q(policy());
  for (int i = 0; i < 3; ++i) q.push(std::to_string(i) + "\n", t0());
  ASSERT_TRUE(q.take(t0()));  // 0, 1, 2 in flight: not counted in the queue
  for (int i = 3; i < 10; ++i) q.push(std::to_string(i) + "\n", t0());
  EXPECT_EQ(q.queued(), 5u);
  EXPECT_EQ(q.counts().dropped, 2u) << "3 and 4 went";
  q.done(EventQueue::Outcome::kSent, t0());
  auto batch = q.take(t0());
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->body, "5\n6\n7\n");
  // A reload with a smaller queue drops at once.
  EventBatchPolicy smaller = policy();
  smaller.queue_max = 1;
  q.setPolicy(smaller);
  EXPECT_EQ(q.queued(), 1u);
  EXPECT_EQ(q.counts().dropped, 3u);
}

TEST(EventQueue, RetriesWithExponentialBackoffThenGivesUp) {
  EventQueue q(policy());
  EXPECT_EQ(q.backoff(1), milliseconds(100));
  EXPECT_EQ(q.backoff(2), milliseconds(200));
  EXPECT_EQ(q.backoff(3), milliseconds(400));
  EXPECT_EQ(q.backoff(5), milliseconds(1000)) << "capped";
  EXPECT_EQ(q.backoff(60), milliseconds(1000));
  for (int i = 0; i < 3; ++i) q.push("e\n", t0());
  SteadyTime now = t0();
  auto first = q.take(now);
  ASSERT_TRUE(first);
  q.done(EventQueue::Outcome::kRetry, now);
  EXPECT_EQ(q.wakeAt(), now + milliseconds(100));
  EXPECT_FALSE(q.take(now + milliseconds(99)));
  q.push("newer\n", now);  // waits behind the batch being retried
  now += milliseconds(100);
  auto again = q.take(now);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, first->body) << "the same batch";
  q.done(EventQueue::Outcome::kRetry, now);
  EXPECT_EQ(q.wakeAt(), now + milliseconds(200));
  now += milliseconds(200);
  ASSERT_TRUE(q.take(now));
  q.done(EventQueue::Outcome::kRetry, now);
  now += milliseconds(400);
  ASSERT_TRUE(q.take(now));
  q.done(EventQueue::Outcome::kRetry, now);  // the 4th failed send: max_attempts
  EXPECT_EQ(q.counts().failed, 3u);
  EXPECT_EQ(q.counts().retries, 3u);
  EXPECT_EQ(q.counts().posts, 4u);
  auto next = q.take(now + seconds(1));
  ASSERT_TRUE(next);
  EXPECT_EQ(next->body, "newer\n");
  q.done(EventQueue::Outcome::kRetry, now + seconds(1));
  ASSERT_TRUE(q.take(now + seconds(2)));
  q.done(EventQueue::Outcome::kSent, now + seconds(2));
  EXPECT_EQ(q.counts().sent, 1u) << "a success after a failure";
  EXPECT_TRUE(q.idle());
}

TEST(EventQueue, ARejectedBatchIsNeverRetried) {
  EventQueue q(policy());
  for (int i = 0; i < 3; ++i) q.push("e\n", t0());
  ASSERT_TRUE(q.take(t0()));
  q.done(EventQueue::Outcome::kRejected, t0());
  EXPECT_EQ(q.counts().failed, 3u);
  EXPECT_EQ(q.counts().retries, 0u);
  EXPECT_FALSE(q.wakeAt());
  EXPECT_TRUE(q.idle());
}

// ---- the log rate limit

TEST(LogRateLimiter, LinesAndBytesPerSecondAndWhatItDropped) {
  LogRateLimiter limiter;
  limiter.setLimits(3, 100);
  const SteadyTime t = t0();
  EXPECT_TRUE(limiter.admit(t, 10));
  EXPECT_TRUE(limiter.admit(t + milliseconds(10), 10));
  EXPECT_TRUE(limiter.admit(t + milliseconds(20), 10));
  EXPECT_FALSE(limiter.admit(t + milliseconds(30), 10)) << "a 4th line";
  EXPECT_FALSE(limiter.admit(t + milliseconds(40), 5));
  EXPECT_FALSE(limiter.takeDropped(t + milliseconds(500))) << "not before its window closed";
  LogRateLimiter::Dropped dropped = limiter.takeDropped(t + milliseconds(1000));
  EXPECT_EQ(dropped.lines, 2u);
  EXPECT_EQ(dropped.bytes, 15u);
  EXPECT_FALSE(limiter.takeDropped(t + seconds(5))) << "reported once";
  // Bytes: a 95-byte line fits, then a 10-byte one does not, in the same window.
  const SteadyTime later = t + seconds(10);
  EXPECT_TRUE(limiter.admit(later, 95));
  EXPECT_FALSE(limiter.admit(later, 10));
  EXPECT_TRUE(limiter.admit(later, 5));
  EXPECT_TRUE(limiter.admit(later + seconds(1), 100)) << "a new window";
  EXPECT_EQ(limiter.takeDropped(later + seconds(1)).lines, 1u);
}

TEST(LogRateLimiter, ZeroMeansNoLimit) {
  LogRateLimiter limiter;
  limiter.setLimits(0, 0);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(limiter.admit(t0(), 1 << 20));
  EXPECT_FALSE(limiter.takeDropped(t0() + seconds(2)));
}

// ---- the POST: token and answers

TEST(EventSender, TheTokenHasIatAndExpAndNoDeploymentId) {
  Subhoster subhoster;
  subhoster.name = "acme";
  subhoster.secret = "acme-secret-0123456789";
  const std::string token = eventsToken(subhoster, 1765065045);
  std::string error;
  auto header = jwt::peekHeader(token, error);
  ASSERT_TRUE(header) << error;
  EXPECT_EQ(header->kid, "acme");
  jwt::VerifyOptions options;
  options.now = 1765065045;
  jwt::Claims claims;
  ASSERT_TRUE(
      jwt::verifyHs256(token, subhoster.secret, options, jwt::VerifyMode::kEvents, claims, error))
      << error;
  EXPECT_EQ(claims.iat, 1765065045);
  EXPECT_EQ(claims.exp, 1765065105);
  EXPECT_EQ(claims.json, R"({"iat":1765065045,"exp":1765065105})");
  // A /boot token (scoped to a deployment) does not pass for an events token.
  const std::string boot = jwt::signHs256(
      "acme", R"({"iat":1765065045,"exp":1765065105,"deployment_id":"d"})", subhoster.secret);
  EXPECT_FALSE(
      jwt::verifyHs256(boot, subhoster.secret, options, jwt::VerifyMode::kEvents, claims, error));
  EXPECT_NE(error.find("deployment_id"), std::string::npos) << error;
  EXPECT_FALSE(
      jwt::verifyHs256(token, subhoster.secret, options, jwt::VerifyMode::kBoot, claims, error));
}

TEST(EventSender, AnswersDecideRetries) {
  auto answer = [](HttpClientError error, int status) {
    HttpResult result;
    result.error = error;
    result.response.status = status;
    return classifyEventsAnswer(result);
  };
  using O = EventQueue::Outcome;
  EXPECT_EQ(answer(HttpClientError::kNone, 200), O::kSent);
  EXPECT_EQ(answer(HttpClientError::kNone, 204), O::kSent);
  EXPECT_EQ(answer(HttpClientError::kNone, 500), O::kRetry);
  EXPECT_EQ(answer(HttpClientError::kNone, 503), O::kRetry);
  EXPECT_EQ(answer(HttpClientError::kNone, 400), O::kRejected);
  EXPECT_EQ(answer(HttpClientError::kNone, 401), O::kRejected);
  EXPECT_EQ(answer(HttpClientError::kNone, 404), O::kRejected);
  EXPECT_EQ(answer(HttpClientError::kNone, 429), O::kRejected);
  EXPECT_EQ(answer(HttpClientError::kNone, 302), O::kRejected);
  for (HttpClientError error :
       {HttpClientError::kConnect, HttpClientError::kTimeout, HttpClientError::kReset,
        HttpClientError::kResolve, HttpClientError::kTls})
    EXPECT_EQ(answer(error, 0), O::kRetry) << httpClientErrorName(error);
  EXPECT_EQ(answer(HttpClientError::kProtocol, 0), O::kRejected);
  EXPECT_EQ(answer(HttpClientError::kTooLarge, 0), O::kRejected);
}

// ---- the sender's thread, with a fake poster (real time: the waits are bounded)

TEST(EventSender, BatchesPerOriginOnItsOwnThread) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> posts;  // "kid rpc_root body"
  EventSender sender(
      [&](const Subhoster& subhoster, const std::string& rpc_root, const std::string& ndjson) {
        std::lock_guard<std::mutex> lock(mu);
        posts.push_back(subhoster.name + " " + rpc_root + " " + ndjson);
        cv.notify_all();
        return EventQueue::Outcome::kSent;
      });
  EventSenderSettings settings;
  settings.policy.max_events = 2;
  settings.policy.flush_interval = seconds(60);  // only full batches go out in this test
  sender.configure(settings);
  auto a = std::make_shared<Subhoster>();
  a->name = "a";
  auto b = std::make_shared<Subhoster>();
  b->name = "b";
  sender.enqueue(a, "http://o1/", "1\n");
  sender.enqueue(b, "http://o1/", "x\n");
  sender.enqueue(a, "http://o2/", "y\n");
  sender.enqueue(a, "http://o1/", "2\n");
  sender.enqueue(a, "http://o1/", "3\n");
  {
    std::unique_lock<std::mutex> lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, seconds(10), [&] { return !posts.empty(); }));
    EXPECT_EQ(posts, std::vector<std::string>{"a http://o1/ 1\n2\n"});
  }
  EventSender::Totals totals = sender.totals();
  for (int i = 0; i < 1000 && totals.sent < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(2));  // the count follows the poster's return
    totals = sender.totals();
  }
  EXPECT_EQ(totals.sent, 2u);
  EXPECT_EQ(totals.queued, 3u);
  EXPECT_EQ(totals.origins, 3u) << "one queue per (subhoster, rpc_root)";
  sender.stop();
  sender.enqueue(a, "http://o1/", "after stop\n");
  EXPECT_EQ(sender.totals().queued, 3u);
}

}  // namespace
}  // namespace subgate
