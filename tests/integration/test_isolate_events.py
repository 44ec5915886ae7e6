"""The events RPC (docs/origin.md "Events"): real isolates' boot, log, uncaughtException,
bootFailure, timeLimit and memoryLimit events reach a test origin's POST /events (gzip'd NDJSON,
a bearer token without deployment_id: ingress.check_events_post), a stalled or failing endpoint
never holds requests up, 4xx is not retried, the log rate limit reports what it dropped, and a
subhoster with events off sends nothing. The pure parts: tests/unit/events_test.cc."""

import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import wait_until  # noqa: E402
from ingress import Deployment, ingress_config  # noqa: E402
from test_ingress_isolates import IngressCase  # noqa: E402

CODE = r"""
console.log("top-level code runs");
const processId = crypto.randomUUID();
Deno.serve(async (req) => {
  const url = new URL(req.url);
  const path = url.pathname;
  if (path === "/levels") {
    console.debug("debug %d", 1);
    console.info("info line");
    console.log("log line", { a: 1 });
    console.warn("warn line");
    console.error("error line\nsecond line");
    Deno.stdout.writeSync(new TextEncoder().encode("raw stdout\n"));
    Deno.stderr.writeSync(new TextEncoder().encode("raw stderr\n"));
  }
  if (path === "/spam") {
    const n = Number(url.searchParams.get("n") ?? "10");
    for (let i = 0; i < n; i++) console.log(`spam ${i} ` + "x".repeat(100));
  }
  if (path === "/reject") Promise.reject(new Error("nobody catches this"));
  if (path === "/throw") setTimeout(() => { throw new Error("thrown from a timer\x1b[2J"); }, 0);
  if (path === "/handled") {
    // User code's own listener takes the error: not uncaught.
    const take = (e) => { e.preventDefault(); removeEventListener("error", take); console.log("took it"); };
    addEventListener("error", take);
    setTimeout(() => { throw new Error("handled by user code"); }, 0);
  }
  if (path === "/spin") { for (;;) {} }
  if (path === "/bomb") { const keep = []; for (;;) keep.push(new Array(1e6).fill(Math.random())); }
  return new Response("ok " + processId);
});
"""

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
FAST = "events_flush_interval 50ms; "
TIMEOUT = {"x-deno-timeout-ms": "30000"}


class EventsCase(IngressCase):
    def serve(self, runtime="", location="", server="", events="on"):
        server += " location = /_pool { status; }"
        self.sg = self.start_subgate(ingress_config(runtime, location, server, subhoster=f"events {events};"))
        return self.sg

    def ok(self, deployment, path="/"):
        r = self.get(deployment, path=path, headers=TIMEOUT)
        self.assertEqual(r.status, 200, r.body)
        return r

    def wait_events(self, predicate, what, timeout=15):
        wait_until(lambda: predicate(self.origin.events_of()), timeout=timeout, what=what)
        self.assertEqual(self.origin.event_errors, [], "every POST was well-formed")

    def logs(self, deployment="app"):
        return [(e["event"]["level"], e["event"]["msg"]) for e in self.origin.events_of("log", deployment)]


class Delivered(EventsCase):
    def test_boot_and_every_log_level(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST + "region test-region-1;")
        self.ok("app", "/levels")
        self.wait_events(lambda events: any("raw stderr" in e["event"].get("msg", "") for e in events),
                         "the log events")
        events = self.origin.events_of(deployment="app")
        for e in events:
            self.assertRegex(e["timestamp"], RFC3339_MS)
            self.assertRegex(e["execution_id"], UUID)
            self.assertEqual(e["region"], "test-region-1")
        self.assertEqual(len({e["execution_id"] for e in events}), 1, "one isolate")
        boots = self.origin.events_of("boot", "app")
        self.assertEqual(len(boots), 1)
        self.assertIsInstance(boots[0]["event"]["boot_time"], float)
        self.assertGreater(boots[0]["event"]["boot_time"], 0)
        self.assertEqual(set(boots[0]["event"]), {"boot_time"})
        logs = self.logs()
        self.assertIn(("info", "top-level code runs"), logs)
        self.assertIn(("debug", "debug 1"), logs)
        self.assertIn(("info", "info line"), logs)
        self.assertIn(("info", "log line { a: 1 }"), logs)
        self.assertIn(("warn", "warn line"), logs)
        self.assertIn(("error", "error line\nsecond line"), logs, "one event per console call")
        self.assertIn(("info", "raw stdout"), logs)
        self.assertIn(("error", "raw stderr"), logs)
        # The error log still has the output (default: info lines at info, the others at warn).
        out = self.sg.output()
        self.assertRegex(out, r"\[info\].*isolate app#\d+: info line")
        self.assertRegex(out, r"\[warn\].*isolate app#\d+: second line")
        # The sender counts a batch sent once it has read the origin's answer, which may be just
        # after the origin recorded it.
        wait_until(lambda: self.pool()["events_sent"] >= len(events), what="the events counted sent")
        pool = self.pool()
        self.assertEqual((pool["events_dropped"], pool["events_failed"]), (0, 0))

    def test_unhandled_rejection_is_an_error_log_and_the_isolate_lives_on(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST)
        first = self.ok("app").body
        self.ok("app", "/reject")
        self.wait_events(lambda events: any("nobody catches this" in e["event"].get("msg", "") for e in events),
                         "the rejection's log event")
        level, msg = next(log for log in self.logs() if "nobody catches this" in log[1])
        self.assertEqual(level, "error")
        self.assertTrue(msg.startswith("Uncaught (in promise) Error: nobody catches this"), msg)
        self.assertEqual(self.ok("app").body, first, "the same isolate")

    def test_uncaught_exception_ends_the_isolate(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST)
        first = self.ok("app").body
        self.ok("app", "/throw")
        self.wait_events(lambda events: any(e["event_type"] == "uncaughtException" for e in events),
                         "the uncaughtException event")
        [event] = self.origin.events_of("uncaughtException", "app")
        self.assertIn("thrown from a timer\x1b[2J", event["event"]["msg"], "the event keeps the bytes")
        self.assertEqual(set(event["event"]), {"msg"})
        # The error log escapes them: user code's message cannot clear the operator's terminal.
        [line] = [line for line in self.sg.output().splitlines() if "uncaught exception:" in line]
        self.assertIn(r"thrown from a timer\x1b[2J", line)
        self.assertNotIn("\x1b", line)
        self.assertNotIn(("error", "thrown from a timer"), self.logs())
        self.assertNotEqual(self.ok("app").body, first, "a fresh isolate serves")
        self.wait_events(lambda events: len([e for e in events if e["event_type"] == "boot"]) == 2,
                         "the second isolate's boot")
        boots = self.origin.events_of("boot", "app")
        self.assertEqual(boots[0]["execution_id"], event["execution_id"])
        self.assertNotEqual(boots[1]["execution_id"], event["execution_id"])

    def test_an_error_user_code_handles_is_not_uncaught(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST)
        first = self.ok("app").body
        self.ok("app", "/handled")
        self.wait_events(lambda events: any(e["event"].get("msg") == "took it" for e in events), "its listener")
        self.ok("app", "/levels")  # events of one isolate arrive in order: this comes after
        self.wait_events(lambda events: any("raw stderr" in e["event"].get("msg", "") for e in events), "logs")
        self.assertEqual(self.origin.events_of("uncaughtException"), [])
        self.assertEqual(self.ok("app").body, first, "the same isolate")

    def test_boot_failure(self):
        self.origin.deployments["broken"] = Deployment(code='throw new Error("top-level failure");\n')
        self.serve(runtime=FAST)
        r = self.get("broken")
        self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"))
        self.wait_events(lambda events: any(e["event_type"] == "bootFailure" for e in events), "bootFailure")
        [event] = self.origin.events_of("bootFailure", "broken")
        self.assertIn("top-level failure", event["event"]["msg"])
        self.assertEqual(self.origin.events_of("boot", "broken"), [])

    def test_time_limit(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST + "cpu_block_limit 1s;")
        self.ok("app")
        r = self.get("app", path="/spin", headers=TIMEOUT)
        self.assertEqual((r.status, r.error()["code"]), (502, "TIME_LIMIT"))
        self.wait_events(lambda events: any(e["event_type"] == "timeLimit" for e in events), "timeLimit")
        [event] = self.origin.events_of("timeLimit", "app")
        self.assertIn("cpu_block_limit", event["event"]["msg"])
        [boot] = self.origin.events_of("boot", "app")
        self.assertEqual(event["execution_id"], boot["execution_id"])

    def test_memory_limit(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST + "memory_limit 64m;")
        r = self.get("app", path="/bomb", headers=TIMEOUT)
        self.assertEqual((r.status, r.error()["code"]), (502, "MEMORY_LIMIT"))
        self.wait_events(lambda events: any(e["event_type"] == "memoryLimit" for e in events), "memoryLimit")
        [event] = self.origin.events_of("memoryLimit", "app")
        self.assertIn("memory limit", event["event"]["msg"])

    def test_log_rate_limit_reports_what_it_dropped(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST + "events_log_rate 5 64k;")
        self.ok("app")  # the boot and its top-level log line
        self.ok("app", "/spam?n=50")
        self.wait_events(lambda events: any("events_log_rate" in e["event"].get("msg", "") for e in events),
                         "the note of what was dropped")
        spam = [msg for _, msg in self.logs() if msg.startswith("spam ")]
        [note] = [msg for _, msg in self.logs() if "events_log_rate" in msg]
        dropped = int(re.search(r"dropped (\d+) lines", note).group(1))
        self.assertEqual(len(spam) + dropped, 50)
        self.assertLessEqual(len(spam), 5)
        self.assertEqual(self.pool()["events_rate_limited"], dropped)
        self.assertEqual(self.sg.output().count("spam "), 50, "the error log keeps every line")

    def test_isolate_log_level_off_keeps_output_out_of_the_error_log(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST + "isolate_log_level off;")
        self.ok("app", "/levels")
        self.wait_events(lambda events: any("raw stderr" in e["event"].get("msg", "") for e in events), "logs")
        self.assertNotIn("warn line", self.sg.output())

    def test_the_error_log_level_decides_which_output_is_written(self):
        """`error_log stderr warn;`: user code's info lines stay out of the error log (they were
        written whatever its level) and still reach the log events."""
        self.origin.deployments["app"] = Deployment(code=CODE)
        config = ingress_config(FAST, server="location = /_pool { status; }", subhoster="events on;")
        self.sg = self.start_subgate(config.replace("error_log stderr info;", "error_log stderr warn;"))
        self.ok("app", "/levels")
        self.wait_events(lambda events: any("raw stderr" in e["event"].get("msg", "") for e in events), "logs")
        out = self.sg.output()
        for written in ("warn line", "error line", "second line", "raw stderr"):
            self.assertIn(written, out)
        for left_out in ("top-level code runs", "info line", "log line", "raw stdout"):
            self.assertNotIn(left_out, out)
        self.assertIn(("info", "info line"), self.logs())


class Off(EventsCase):
    def test_a_subhoster_with_events_off_sends_nothing(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.serve(runtime=FAST, events="off")
        self.ok("app", "/levels")
        wait_until(lambda: "raw stderr" in self.sg.output(), what="the output in the error log")
        pool = self.pool()
        # A queue is made at the first event of an origin: none was.
        self.assertEqual((pool["events_origins"], pool["events_queued"], pool["events_sent"]), (0, 0, 0))
        self.assertEqual(self.origin.event_posts, 0)


class FailingEndpoint(EventsCase):
    def burst(self, n=30):
        """n requests that each log 20 lines; their latencies (seconds)."""
        latencies = []
        for _ in range(n):
            start = time.monotonic()
            self.ok("app", "/spam?n=20")
            latencies.append(time.monotonic() - start)
        return sorted(latencies)

    def test_a_stalled_endpoint_never_holds_requests_up(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.origin.events_answer = "stall"
        self.serve(runtime=FAST + "events_timeout 60s; events_queue 100; events_batch_events 10; "
                   "events_log_rate off;")
        self.ok("app")
        wait_until(lambda: self.origin.event_posts >= 1, what="the first POST to stall")
        stalled = self.burst()  # 600 log lines behind one stalled POST
        wait_until(lambda: self.pool()["events_dropped"] > 0, what="the queue to drop")
        pool = self.pool()
        self.assertEqual(pool["events_queued"], 100, "the queue is full, and no fuller")
        self.assertGreaterEqual(pool["events_dropped"], 400)
        self.assertEqual(self.origin.event_posts, 1, "one POST in flight, still stalled")
        self.origin.released.set()
        # The same burst with the endpoint answering, for comparison (no timed assertion: a
        # shared host's noise decides more than the endpoint does).
        self.origin.events_answer = 200
        answering = self.burst()
        print(f"\n  median request latency: stalled endpoint {stalled[len(stalled) // 2] * 1000:.1f} ms, "
              f"answering endpoint {answering[len(answering) // 2] * 1000:.1f} ms", file=sys.stderr)

    def test_a_failing_endpoint_is_retried_with_backoff_then_given_up(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.origin.events_answer = 500
        self.serve(runtime=FAST + "events_retry 50ms 200ms 3;")
        self.ok("app")
        wait_until(lambda: self.pool()["events_failed"] >= 2, what="the first batch to be given up")
        pool = self.pool()
        self.assertGreaterEqual(pool["events_retries"], 2)
        self.assertGreaterEqual(self.origin.event_posts, 3, "3 attempts")
        for _ in range(10):
            self.ok("app", "/spam?n=5")
        self.assertEqual(self.origin.event_errors, [])

    def test_4xx_is_not_retried(self):
        self.origin.deployments["app"] = Deployment(code=CODE)
        self.origin.events_answer = 403
        self.serve(runtime=FAST + "events_retry 50ms 100ms 5;")
        self.ok("app")
        wait_until(lambda: self.pool()["events_failed"] >= 2, what="the batch to be rejected")
        self.ok("app", "/spam?n=3")
        wait_until(lambda: self.pool()["events_failed"] >= 5, what="the second batch to be rejected")
        pool = self.pool()
        self.assertEqual((pool["events_retries"], pool["events_sent"]), (0, 0))
        self.assertEqual(self.origin.event_posts, pool["events_posts"], "each batch was posted once")


if __name__ == "__main__":
    import unittest
    unittest.main()
