"""Request ids (x-request-id) and W3C trace context through a real subgate to the test backend
and to a Deno isolate: the id the upstream, the client and the JSON access log see; traceparent
and tracestate passed on; trace_child_span; and SIGUSR1 reopening the access and error logs
after a rotation."""

import json
import os
import re
import signal

from h2_client import H2Client
from harness import SubgateTestCase, request, wait_until
from ingress import Deployment, Origin, ingress_config, relay_token

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class RequestIdTest(SubgateTestCase):
    def start(self, location_extra="", listen_extra=""):
        self.backend = self.start_backend()
        sg = self.start_subgate(f"""
            error_log stderr info;
            upstream backend {{ server 127.0.0.1:{self.backend.port}; }}
            server {{
                listen 127.0.0.1:@PORT@ {listen_extra};
                access_log access.json json;
                location /headers {{ {location_extra} proxy_pass http://backend; }}
                location = /local {{ return 200 "local"; }}
            }}
        """)
        self.access_path = os.path.join(sg.dir, "access.json")
        return sg

    def access_lines(self):
        try:
            with open(self.access_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def upstream_headers(self, response):
        self.assertEqual(response.status, 200, response.body)
        return json.loads(response.body)

    def values(self, headers, name):
        return [v for k, v in headers if k.lower() == name]

    def test_a_new_id_reaches_upstream_client_and_access_log(self):
        sg = self.start()
        r = request(sg.port, path="/headers")
        sent = self.values(self.upstream_headers(r), "x-request-id")
        self.assertEqual(len(sent), 1)
        self.assertRegex(sent[0], r"^[0-9a-f]{32}$")
        self.assertEqual(r.all("x-request-id"), sent)
        wait_until(lambda: len(self.access_lines()) == 1, what="the access log line")
        line = self.access_lines()[0]
        self.assertEqual(line["request_id"], sent[0])
        self.assertEqual(line["trace_id"], "")
        # A local answer and a failure carry one too, each its own.
        local = request(sg.port, path="/local")
        missing = request(sg.port, path="/nowhere")
        self.assertEqual(missing.status, 404)
        ids = {sent[0], local.header("x-request-id"), missing.header("x-request-id")}
        self.assertEqual(len(ids), 3)

    def test_http2_sends_ids_unindexed(self):
        # Each id is new, so HPACK must not index it: indexed, each would take a dynamic table
        # entry no later response reuses and evict the fields that repeat.
        sg = self.start(listen_extra="http2")
        client = H2Client(sg.port)
        try:
            ids = []
            for _ in range(60):  # 60 ids x 76 bytes would overflow the 4,096-byte table
                stream = client.response(client.request("/local"))
                self.assertEqual(stream.status, 200)
                ids.append(stream.header("x-request-id"))
            self.assertEqual(len(set(ids)), 60)
            self.assertEqual([v for k, v in client.decoder.never_indexed if k == "x-request-id"], ids)
            self.assertEqual([e for e in client.decoder.table if e[0] == "x-request-id"], [])
            # What repeats is still indexed: the second and later heads are small.
            self.assertIn("content-type", [name for name, _ in client.decoder.table])
        finally:
            client.close()

    def test_a_well_formed_client_id_is_kept(self):
        sg = self.start()
        r = request(sg.port, path="/headers", headers={"X-Request-Id": "edge-42:a.b_c"})
        self.assertEqual(self.values(self.upstream_headers(r), "x-request-id"), ["edge-42:a.b_c"])
        self.assertEqual(r.all("x-request-id"), ["edge-42:a.b_c"])
        wait_until(lambda: len(self.access_lines()) == 1, what="the access log line")
        self.assertEqual(self.access_lines()[0]["request_id"], "edge-42:a.b_c")

    def test_a_malformed_client_id_is_replaced(self):
        sg = self.start()
        for bad in ("has space", "x" * 129, "semi;colon"):
            with self.subTest(bad=bad):
                r = request(sg.port, path="/headers", headers={"X-Request-Id": bad})
                sent = self.values(self.upstream_headers(r), "x-request-id")
                self.assertEqual(len(sent), 1)
                self.assertRegex(sent[0], r"^[0-9a-f]{32}$")
                self.assertEqual(r.all("x-request-id"), sent)

    def test_request_id_off_sends_the_clients_header_on_untouched(self):
        sg = self.start(location_extra="request_id off;")
        r = request(sg.port, path="/headers", headers={"X-Request-Id": "has space"})
        self.assertEqual(self.values(self.upstream_headers(r), "x-request-id"), ["has space"])
        self.assertIsNone(r.header("x-request-id"))

    def test_trace_context_passes_through_unchanged(self):
        sg = self.start()
        r = request(sg.port, path="/headers",
                    headers={"traceparent": TRACEPARENT, "tracestate": "vendor=abc,other=1"})
        got = self.upstream_headers(r)
        self.assertEqual(self.values(got, "traceparent"), [TRACEPARENT])
        self.assertEqual(self.values(got, "tracestate"), ["vendor=abc,other=1"])
        wait_until(lambda: len(self.access_lines()) == 1, what="the access log line")
        self.assertEqual(self.access_lines()[0]["trace_id"], TRACE_ID)

    def test_a_malformed_traceparent_goes_on_as_is_without_a_trace_id(self):
        sg = self.start(location_extra="trace_child_span on;")
        bad = "00-" + "0" * 32 + "-00f067aa0ba902b7-01"
        r = request(sg.port, path="/headers", headers={"traceparent": bad})
        self.assertEqual(self.values(self.upstream_headers(r), "traceparent"), [bad])
        wait_until(lambda: len(self.access_lines()) == 1, what="the access log line")
        self.assertEqual(self.access_lines()[0]["trace_id"], "")

    def test_trace_child_span_keeps_the_trace_id_and_changes_the_parent_id(self):
        sg = self.start(location_extra="trace_child_span on;")
        r = request(sg.port, path="/headers",
                    headers={"traceparent": TRACEPARENT, "tracestate": "vendor=abc"})
        got = self.upstream_headers(r)
        sent = self.values(got, "traceparent")
        self.assertEqual(len(sent), 1)
        match = re.fullmatch(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})", sent[0])
        self.assertIsNotNone(match, sent[0])
        self.assertEqual(match.group(1), TRACE_ID)
        self.assertNotEqual(match.group(2), "00f067aa0ba902b7")
        self.assertNotEqual(match.group(2), "0" * 16)
        self.assertEqual(match.group(3), "01")
        self.assertEqual(self.values(got, "tracestate"), ["vendor=abc"])
        wait_until(lambda: len(self.access_lines()) == 1, what="the access log line")
        self.assertEqual(self.access_lines()[0]["trace_id"], TRACE_ID)


class LogReopenTest(SubgateTestCase):
    def test_sigusr1_reopens_access_and_error_logs_after_a_rename(self):
        sg = self.start_subgate("""
            error_log error.log info;
            server {
                listen 127.0.0.1:@PORT@;
                access_log access.json json;
                location / { return 200 "ok"; }
            }
        """)
        access = os.path.join(sg.dir, "access.json")
        error = os.path.join(sg.dir, "error.log")

        def read(path):
            try:
                with open(path) as f:
                    return f.read()
            except FileNotFoundError:
                return ""

        first = request(sg.port, path="/before").header("x-request-id")
        wait_until(lambda: first in read(access), what="the first access line")
        wait_until(lambda: "subgate started" in read(error), what="the error log")
        os.rename(access, access + ".1")
        os.rename(error, error + ".1")
        # Until the signal, lines go on to the renamed files.
        second = request(sg.port, path="/still-old").header("x-request-id")
        wait_until(lambda: second in read(access + ".1"), what="a line in the renamed file")
        self.assertFalse(os.path.exists(access))

        sg.signal(signal.SIGUSR1)
        wait_until(lambda: "log files reopened" in read(error), what="the reopened error log")
        third = request(sg.port, path="/after").header("x-request-id")
        wait_until(lambda: third in read(access), what="a line in the fresh access log")
        lines = [json.loads(line) for line in read(access).splitlines()]
        self.assertEqual([line["request_id"] for line in lines], [third])
        self.assertEqual([line["uri"] for line in lines], ["/after"])
        old = [json.loads(line)["request_id"] for line in read(access + ".1").splitlines()]
        self.assertEqual(old, [first, second])  # nothing lost, nothing duplicated
        self.assertIn("subgate started", read(error + ".1"))
        self.assertNotIn("log files reopened", read(error + ".1"))
        self.assertEqual(sg.proc.poll(), None)  # still serving, no reload
        self.assertNotIn("reloading", read(error) + read(error + ".1"))


class IsolateTest(SubgateTestCase):
    """An isolate gets the same headers as an upstream (one ProxySession writes both heads)."""

    def test_request_id_and_trace_context_reach_an_isolate(self):
        origin = Origin()
        self.addCleanup(origin.stop)
        origin.deployments["echo"] = Deployment(
            code="Deno.serve((req) => Response.json(Object.fromEntries(req.headers)));")
        sg = self.start_subgate(ingress_config(location="trace_child_span on;"))
        headers = {"x-deno-subhost": relay_token("echo", origin.rpc_root),
                   "x-forwarded-host": "example.com", "X-Request-Id": "bad id",
                   "traceparent": TRACEPARENT, "tracestate": "vendor=abc"}
        r = request(sg.port, headers=headers)
        self.assertEqual(r.status, 200, r.body)
        got = json.loads(r.body)
        self.assertRegex(got["x-request-id"], r"^[0-9a-f]{32}$")
        self.assertEqual(r.header("x-request-id"), got["x-request-id"])
        self.assertEqual(got["tracestate"], "vendor=abc")
        self.assertTrue(got["traceparent"].startswith("00-" + TRACE_ID + "-"), got["traceparent"])
        self.assertNotEqual(got["traceparent"], TRACEPARENT)
        self.assertTrue(got["traceparent"].endswith("-01"))
        # A well-formed id passes as it is.
        headers["X-Request-Id"] = "relay-7"
        r = request(sg.port, headers=headers)
        self.assertEqual((r.status, json.loads(r.body)["x-request-id"]), (200, "relay-7"))
        self.assertEqual(r.header("x-request-id"), "relay-7")
