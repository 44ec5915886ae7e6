"""`log_format` through the real binary: a custom format on a proxied location and on an
isolate-served one (deployment, subhoster, instance id, isolate, isolate wait, first byte, body
bytes received), a hostile header that cannot forge a line, the built-in json's isolate fields,
and the request id on tenant output lines in the error log (and in their log events). The
variables one by one: tests/unit/log_format_test.cc."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, SubgateTestCase, free_port, request, wait_until  # noqa: E402
from ingress import Deployment, ingress_config  # noqa: E402
from test_ingress_isolates import IngressCase  # noqa: E402

SECONDS = r"\d+\.\d{3}"
TAG = r"isolate app(\[inst-1\])?#\d+: "  # the error log's name of an isolate

FORMAT = (
    "log_format custom '$remote_addr \"$request\" $status $body_bytes_sent $request_body_length '\n"
    "    'rid=$request_id up=$upstream_addr t=$request_time fb=$upstream_header_time '\n"
    "    'dep=$deployment_id sub=$subhoster inst=$instance_id iso=$isolate wait=$isolate_wait '\n"
    "    'err=$error_code srv=$server_name ua=\"$http_user_agent\" end=${status}x';\n")


def read_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8").splitlines()
    except FileNotFoundError:
        return []


class ProxiedLogFormat(SubgateTestCase):
    def test_a_custom_format_on_a_proxied_location(self):
        backend = self.start_backend()
        sg = self.start_subgate(FORMAT + f"""
            upstream backend {{ server 127.0.0.1:{backend.port}; }}
            upstream down {{ server 127.0.0.1:{free_port()}; }}
            server {{
                listen 127.0.0.1:@PORT@;
                server_name proxied.test;
                access_log custom.log custom;
                location / {{ proxy_pass http://backend; }}
                location /down {{ proxy_pass http://down; }}
            }}
        """)
        path = os.path.join(sg.dir, "custom.log")
        # A hostile User-Agent: a quote and a forged line's start cannot leave its field.
        r = request(sg.port, method="POST", path="/echo?a=1", body=b"hello world",
                    headers={"X-Request-Id": "rid-1", "User-Agent": 'evil" 1.2.3.4 "GET é'})
        self.assertEqual(r.status, 200, r.body)
        wait_until(lambda: len(read_lines(path)) == 1, what="the access log line")
        line = read_lines(path)[0]
        self.assertRegex(line, (
            r'^127\.0\.0\.1 "POST /echo\?a=1 HTTP/1\.1" 200 \d+ 11 '
            rf"rid=rid-1 up=127\.0\.0\.1:{backend.port} t={SECONDS} fb={SECONDS} "
            r"dep=- sub=- inst=- iso=- wait=- err=- srv=proxied\.test "
            r'ua="evil\\x22 1\.2\.3\.4 \\x22GET \\xC3\\xA9" end=200x$'))

        # A failure: its x-deno-error code.
        failed = request(sg.port, path="/down", headers={"X-Request-Id": "rid-2"})
        self.assertEqual(failed.status, 502, failed.body)
        wait_until(lambda: len(read_lines(path)) == 2, what="two access log lines")
        self.assertRegex(read_lines(path)[1], r' "GET /down HTTP/1\.1" 502 \d+ 0 rid=rid-2 .* '
                                              r"err=UPSTREAM_ERROR ")

    def test_config_errors_name_their_line(self):
        d = tempfile.mkdtemp(prefix="subgate-logfmt-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "subgate.conf")
        for config, error in [
            ("log_format f '$status';\nserver { listen 127.0.0.1:1;\n access_log a.log nosuch;\n"
             " location / { return 200; } }\n", r':3: unknown log format "nosuch"'),
            ("log_format f '$status $nope';\nserver { listen 127.0.0.1:1;\n"
             " location / { return 200; } }\n", r':1: unknown log variable "\$nope"'),
        ]:
            with open(path, "w") as f:
                f.write(config)
            p = subprocess.run([BIN, "-t", "-c", path, "-p", d], capture_output=True, text=True,
                               timeout=20)
            self.assertNotEqual(p.returncode, 0)
            self.assertRegex(p.stdout + p.stderr, re.escape(path) + error)


class IsolateLogFormat(IngressCase):
    CODE = r"""
import { AsyncLocalStorage } from "node:async_hooks";
const mine = new AsyncLocalStorage();
console.log("top-level output");
Deno.serve(async (req) => {
  const url = new URL(req.url);
  console.log("handling", url.pathname);
  console.log("control: bell\x07 ansi\x1b[31m cr\r nul\0 end");
  await new Promise((resolve) => setTimeout(resolve, 1));
  console.warn("after a timer\nsecond line");
  setTimeout(() => console.log("in a timer of", url.pathname), 0);
  await mine.run("user data", async () => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    console.log("in a context of user code:", mine.getStore());
  });
  return new Response("ok " + (await req.text()).length);
});
"""

    def serve_with(self, access_log, main=""):
        self.origin.deployments["app"] = Deployment(code=self.CODE)
        config = main + ingress_config(
            runtime="events_flush_interval 50ms;", server=access_log, subhoster="events on;")
        self.sg = self.start_subgate(config)
        return os.path.join(self.sg.dir, "access.log")

    def test_a_custom_format_on_an_isolate(self):
        path = self.serve_with("access_log access.log custom;", main=FORMAT)
        r = self.get("app", method="POST", path="/p", body=b"12345",
                     headers={"X-Request-Id": "relay-7", "x-deno-isolate-instance-id": "inst-1"})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.body, b"ok 5")
        wait_until(lambda: len(read_lines(path)) == 1, what="the access log line")
        line = read_lines(path)[0]
        self.assertRegex(line, (
            r'^127\.0\.0\.1 "POST /p HTTP/1\.1" 200 4 5 rid=relay-7 up=\S+ '
            rf"t={SECONDS} fb={SECONDS} dep=app sub=test inst=inst-1 iso=iso-\d+ "
            rf"wait={SECONDS} err=- srv=- "))
        # A cold start waited for its isolate; a warm request on it does not.
        wait = float(re.search(r" wait=(\S+)", line).group(1))
        total = float(re.search(r" t=(\S+)", line).group(1))
        self.assertGreater(wait, 0)
        self.assertLessEqual(wait, total)

        # Tenant output: the request's id on each line of a console call made in its handler
        # (also after an await), none on top-level output.
        out = lambda: self.sg.output()  # noqa: E731
        wait_until(lambda: "second line" in out(), what="the handler's output")
        self.assertRegex(out(), TAG + r"handling /p, request_id: relay-7\n")
        self.assertRegex(out(), TAG + r"after a timer, request_id: relay-7\n")
        self.assertRegex(out(), TAG + r"second line, request_id: relay-7\n")
        wait_until(lambda: "in a timer of /p" in out(), what="the timer's output")
        self.assertRegex(out(), TAG + r"in a timer of /p, request_id: relay-7\n")
        self.assertRegex(out(), TAG + r"in a context of user code: user data, request_id: relay-7\n")
        self.assertRegex(out(), TAG + r"top-level output\n")
        # Control bytes of user code's output are escaped in the error log (no forged line, no
        # terminal escape, no NUL cutting the line short); its log event keeps them.
        self.assertRegex(out(), TAG + re.escape(r"control: bell\x07 ansi\x1b[31m cr\x0d nul\x00 end")
                         + r", request_id: relay-7\n")
        # A second request gets its own id, a new one when the client sent none.
        r2 = self.get("app", path="/q", headers={"x-deno-isolate-instance-id": "inst-1"})
        self.assertEqual(r2.status, 200, r2.body)
        rid = r2.header("x-request-id")
        wait_until(lambda: f"handling /q, request_id: {rid}" in out(), what="the second id")
        # The log events carry it too (inside the event object; its six fields unchanged).
        wait_until(lambda: any(e["event"].get("request_id") == rid
                               for e in self.origin.events_of("log", "app")),
                   what="the log event with the request id")
        events = self.origin.events_of("log", "app")
        top = [e for e in events if e["event"]["msg"] == "top-level output"]
        self.assertEqual(len(top), 1)
        self.assertNotIn("request_id", top[0]["event"])
        handled = [e for e in events if e["event"]["msg"] == "handling /p"]
        self.assertEqual([e["event"].get("request_id") for e in handled], ["relay-7"])
        self.assertEqual(len(handled[0]), 6)
        self.assertIn("control: bell\x07 ansi\x1b[31m cr\r nul\x00 end",
                      [e["event"]["msg"] for e in events])

    def test_the_json_format_carries_the_isolate_fields(self):
        path = self.serve_with("access_log access.log json;")
        r = self.get("app", path="/j", headers={"X-Request-Id": "relay-8",
                                                "User-Agent": 'x" \\ é'})
        self.assertEqual(r.status, 200, r.body)
        wait_until(lambda: len(read_lines(path)) == 1, what="the access log line")
        entry = json.loads(read_lines(path)[0])
        self.assertEqual(entry["request_id"], "relay-8")
        self.assertEqual(entry["deployment_id"], "app")
        self.assertEqual(entry["subhoster"], "test")
        self.assertRegex(entry["isolate"], r"^iso-\d+$")
        self.assertGreater(entry["isolate_wait_ms"], 0)
        self.assertGreaterEqual(entry["first_byte_ms"], entry["isolate_wait_ms"])
        self.assertLessEqual(entry["first_byte_ms"], entry["duration_ms"])
        self.assertEqual(entry["request_bytes"], 0)
        self.assertEqual(entry["error"], "")
