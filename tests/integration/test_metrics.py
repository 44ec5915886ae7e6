"""`metrics;`: the Prometheus text a scrape gets after real traffic (requests by server and status
class, answers by x-deno-error code, histograms, bytes, connections, TLS, WebSockets, Lua
failures, the isolate pool's counters, per-deployment series), checked by value and by
`promtool check metrics`; and OpenMetrics when the scraper asks for it."""

import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import Conn, SubgateTestCase, request, wait_until, free_port  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402
from test_http2_websockets import WsBackend  # noqa: E402
from test_tls import make_ca, make_cert  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')


def parse(text):
    """{(name, labels text): value} of every sample."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples


def requests_of(samples, server, code):
    return samples.get(("subgate_http_requests_total", f'{{server="{server}",code="{code}"}}'), 0)


def promtool_check(case, text):
    tool = shutil.which("promtool")
    if not tool:
        if os.environ.get("CI") == "true":
            case.fail("promtool is missing (scripts/setup.sh test installs Debian's prometheus)")
        return  # checked by value only; the promtool check runs where it is installed
    check = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True)
    case.assertEqual(check.returncode, 0, check.stdout + check.stderr + "\n" + text)


def check_openmetrics(case, text):
    """What promtool does not check of OpenMetrics: one # EOF at the end; every family's HELP,
    TYPE (and UNIT, which its name ends with) before its samples; counters' samples end in
    _total, their family does not; histograms' in _bucket/_sum/_count."""
    case.assertTrue(text.endswith("\n# EOF\n"), text[-200:])
    lines = text.splitlines()[:-1]
    families = {}
    current = None
    for line in lines:
        case.assertNotEqual(line, "# EOF")
        if line.startswith("# "):
            kind, name, rest = line[2:].split(" ", 2)
            if kind == "HELP":
                case.assertNotIn(name, families, "family twice: " + name)
                families[name] = {}
                current = name
            case.assertEqual(name, current, line)
            families[name][kind] = rest
            if kind == "UNIT":
                case.assertTrue(name.endswith("_" + rest), line)
            continue
        m = SAMPLE.match(line)
        case.assertIsNotNone(m, line)
        kind = families[current]["TYPE"]
        suffixes = {"counter": ["_total"], "gauge": [""],
                    "histogram": ["_bucket", "_sum", "_count"]}[kind]
        case.assertIn(m.group(1), [current + x for x in suffixes], line)
    for name, f in families.items():
        if f["TYPE"] == "counter":
            case.assertFalse(name.endswith("_total"), name)


class Metrics(SubgateTestCase):
    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["hello"] = Deployment()
        self.metrics_port = free_port()
        # The ingress (no server_name: counted by its listen address) and, apart, the scrape's
        # own server, so that scraping does not move the counts under test.
        config = ingress_config(server="location = /missing { return 404; }") + f"""
            server {{
                listen 127.0.0.1:{self.metrics_port};
                server_name metrics.local;
                location = /metrics {{ metrics; }}
            }}
        """
        self.sg = self.start_subgate(config)
        self.ingress = f"127.0.0.1:{self.sg.port}"

    def scrape(self):
        r = request(self.metrics_port, path="/metrics")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("content-type"), CONTENT_TYPE)
        text = r.body.decode()
        promtool_check(self, text)
        return text, parse(text)

    def test_counts_what_the_test_caused(self):
        _, before = self.scrape()
        self.assertEqual(requests_of(before, self.ingress, "2xx"), 0)
        self.assertEqual(before[("subgate_isolate_boots_total", "")], 0)
        self.assertEqual(before[("subgate_isolates", "")], 0)

        token = relay_token("hello", self.origin.rpc_root)
        headers = {"x-deno-subhost": token, "x-forwarded-host": "example.com"}
        for _ in range(3):
            r = request(self.sg.port, path="/", headers=headers)
            self.assertEqual(r.status, 200, r.body)
        for _ in range(2):
            self.assertEqual(request(self.sg.port, path="/missing").status, 404)

        # A request is counted once its response ended, just after the client read it.
        def counted():
            _, now = self.scrape()
            return (requests_of(now, self.ingress, "2xx"), requests_of(now, self.ingress, "4xx"))
        wait_until(lambda: counted() == (3, 2), what="3 2xx and 2 4xx counted")

        text, after = self.scrape()
        self.assertEqual(requests_of(after, self.ingress, "5xx"), 0)
        self.assertGreaterEqual(requests_of(after, "metrics.local", "2xx"), 2)  # the scrapes
        self.assertEqual(after[("subgate_isolate_boots_total", "")], 1)
        self.assertEqual(after[("subgate_isolate_boot_failures_total", "")], 0)
        self.assertEqual(after[("subgate_isolate_deployments", "")], 1)
        self.assertEqual(after[("subgate_isolates", "")], 1)
        self.assertEqual(after[("subgate_isolate_ready_total", "")], 1)
        self.assertGreaterEqual(after[("subgate_isolate_processes_started_total", "")], 1)
        # The same token three times: the first verifies it, the others hit the worker's cache
        # (each worker verifies it once).
        self.assertGreaterEqual(after[("subgate_token_cache_hits_total", "")], 1)
        for reason in ("idle", "lru"):
            self.assertEqual(after[("subgate_isolate_evictions_total", f'{{reason="{reason}"}}')], 0)
        self.assertEqual(after[("subgate_isolate_failures_total", "")], 0)
        for family in ("subgate_cluster_broadcasts_total", "subgate_events_sent_total",
                       "subgate_events_queued"):
            self.assertIn(f"# TYPE {family} ", text)

    def test_isolates_that_fail_are_counted(self):
        # One whose code throws while loading, one that throws later from a timer (an uncaught
        # exception ends its isolate after it served).
        self.origin.deployments["broken"] = Deployment(code='throw new Error("broken on load");')
        self.origin.deployments["later"] = Deployment(code=(
            'Deno.serve(() => { setTimeout(() => { throw new Error("later"); }, 0);'
            ' return new Response("ok"); });'))
        for name, status in (("broken", 502), ("later", 200)):
            token = relay_token(name, self.origin.rpc_root)
            r = request(self.sg.port, path="/",
                        headers={"x-deno-subhost": token, "x-forwarded-host": "example.com"})
            self.assertEqual(r.status, status, r.body)
        wait_until(lambda: self.scrape()[1][("subgate_isolate_failures_total", "")] == 2,
                   what="two failed isolates counted")
        _, after = self.scrape()
        self.assertEqual(after[("subgate_isolate_limit_stops_total", '{reason="time_limit"}')], 0)
        self.assertEqual(after[("subgate_isolate_limit_stops_total", '{reason="memory_limit"}')], 0)


class CodeCache(SubgateTestCase):
    """An isolate stopped for idleness starts again from the cached code: a code cache hit, no
    second /boot; and the per-deployment isolates gauge follows it."""

    def test_code_cache_hit_after_idle_eviction(self):
        origin = Origin()
        self.addCleanup(origin.stop)
        origin.deployments["hello"] = Deployment()
        metrics_port = free_port()
        sg = self.start_subgate(ingress_config(runtime="idle_timeout 1s;") + f"""
            server {{
                listen 127.0.0.1:{metrics_port};
                location = /metrics {{ metrics; }}
            }}
        """)
        headers = {"x-deno-subhost": relay_token("hello", origin.rpc_root),
                   "x-forwarded-host": "example.com"}

        def scrape():
            text = request(metrics_port, path="/metrics").body.decode()
            promtool_check(self, text)
            return parse(text)

        hello = ("subgate_deployment_isolates", '{deployment="hello",subhoster="test"}')
        self.assertEqual(request(sg.port, headers=headers).status, 200)
        # The deployment's series appear once its request was counted at the end of the
        # request, which may come a little after the client read the answer (and on the other
        # worker than the scrape): until then the series is absent, not 0.
        wait_until(lambda: scrape().get(hello) == 1, what="the isolate counted for its deployment")
        wait_until(lambda: scrape()[("subgate_isolate_evictions_total", '{reason="idle"}')] == 1,
                   what="the idle eviction")
        wait_until(lambda: scrape()[hello] == 0, what="the isolate gone")
        self.assertEqual(scrape()[("subgate_isolate_code_cache_hits_total", "")], 0)
        self.assertEqual(request(sg.port, headers=headers).status, 200)
        m = scrape()
        self.assertEqual(m[("subgate_isolate_code_cache_hits_total", "")], 1)
        self.assertEqual(m[("subgate_isolate_boots_total", "")], 1)
        self.assertEqual(m[("subgate_isolate_boot_duration_seconds_count", '{spare="false"}')], 2)


SLOW = "Deno.serve(async () => { await new Promise(r => setTimeout(r, 1000)); return new Response('done'); });"
WS_HEAD = ("GET /ws/echo HTTP/1.1\r\nHost: edge.local\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")


def sample(samples, name, **labels):
    text = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else ""
    return samples.get((name, text))


class Traffic(SubgateTestCase):
    """Each family is caused by the test and read back: answers by x-deno-error code (a
    CAPACITY_EXCEEDED of one deployment, Lua failures), histograms, body bytes, connections by
    protocol, TLS handshakes, a WebSocket, boots with a spare, per-deployment series (top 2 of
    3, the third in _other), and the same in OpenMetrics."""

    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["hello"] = Deployment()
        self.origin.deployments["slow"] = Deployment(code=SLOW)
        self.origin.deployments["tiny"] = Deployment()
        self.ws = WsBackend()
        self.addCleanup(self.ws.stop)
        self.dir = tempfile.mkdtemp(prefix="subgate-metrics-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        make_ca(self.dir)
        make_cert(self.dir, "tls.local", 1)
        with open(os.path.join(self.dir, "error.lua"), "w") as f:
            f.write("function access(req)\n  error('boom')\nend\n")
        with open(os.path.join(self.dir, "loop.lua"), "w") as f:
            f.write("function access(req)\n  while true do end\nend\n")
        self.edge_port, self.tls_port, self.metrics_port = free_port(), free_port(), free_port()
        d = self.dir
        config = "metrics_deployments 2;\n" + ingress_config(
            runtime="spare 1; max_isolates_per_deployment 1; queue_timeout 300ms;",
            location="isolate_limit 1;") + f"""
            server {{
                listen 127.0.0.1:{self.edge_port} http2;
                server_name edge.local;
                location /ws/ {{ proxy_pass http://127.0.0.1:{self.ws.port}; }}
                location = /lua-error {{ lua_script {d}/error.lua; return 200 "no"; }}
                location = /lua-budget {{
                    lua_instructions 1000; lua_script {d}/loop.lua; return 200 "no";
                }}
                location = /hello {{ return 200 "hello"; }}
            }}
            server {{
                listen 127.0.0.1:{self.tls_port} ssl;
                server_name tls.local;
                ssl_certificate {d}/tls.local.pem;
                ssl_certificate_key {d}/tls.local.key;
                location / {{ return 200 "tls"; }}
            }}
            server {{
                listen 127.0.0.1:{self.metrics_port};
                server_name metrics.local;
                location = /metrics {{ metrics; }}
            }}
        """
        self.sg = self.start_subgate(config)
        self.ingress = f"127.0.0.1:{self.sg.port}"

    def scrape(self, accept=None):
        r = request(self.metrics_port, path="/metrics", headers={"accept": accept} if accept else None)
        self.assertEqual(r.status, 200, r.body)
        text = r.body.decode()
        if accept:
            self.assertEqual(r.header("content-type"), OPENMETRICS)
            check_openmetrics(self, text)
            text = text[:-len("# EOF\n")]
        else:
            self.assertEqual(r.header("content-type"), CONTENT_TYPE)
            promtool_check(self, text)
        return parse(text)

    def deployment(self, name, **headers):
        token = relay_token(name, self.origin.rpc_root)
        return {"x-deno-subhost": token, "x-forwarded-host": "example.com", **headers}

    def test_every_family_reads_back_what_the_test_caused(self):
        wait_until(lambda: sample(self.scrape(), "subgate_isolate_spares") == 1, timeout=20,
                   what="the spare")
        # The ingress: hello 3 GETs and a POST (the first boot takes the spare), slow one
        # answered and one CAPACITY_EXCEEDED while the first holds its only isolate, tiny once.
        for _ in range(3):
            self.assertEqual(request(self.sg.port, headers=self.deployment("hello")).status, 200)
        r = request(self.sg.port, method="POST", headers=self.deployment("hello"), body=b"x" * 1000)
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(request(self.sg.port, headers=self.deployment("slow")).status, 200)  # boot
        results = []
        first = threading.Thread(
            target=lambda: results.append(request(self.sg.port, headers=self.deployment("slow"))))
        first.start()
        # Nothing shows a request inside its isolate: give the first one time to get there (it
        # holds the isolate a second; the second request's queue wait is 300 ms).
        time.sleep(0.3)
        r = request(self.sg.port, headers=self.deployment("slow"))
        self.assertEqual((r.status, r.error()["code"]), (503, "CAPACITY_EXCEEDED"))
        first.join(10)
        self.assertEqual(results[0].status, 200)
        self.assertEqual(request(self.sg.port, headers=self.deployment("tiny")).status, 200)

        # The edge server: two Lua failures (one the budget), a WebSocket over HTTP/1.1.
        self.assertEqual(request(self.edge_port, path="/lua-error").status, 500)
        self.assertEqual(request(self.edge_port, path="/lua-budget").status, 500)
        ws = Conn(self.edge_port)
        self.addCleanup(ws.close)
        ws.send(WS_HEAD)
        self.assertEqual(ws.read_response(head_request=True).status, 101)

        # TLS: one handshake, one plaintext client on the TLS port.
        context = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.pem"))
        with socket.create_connection(("127.0.0.1", self.tls_port), timeout=10) as raw:
            with context.wrap_socket(raw, server_hostname="tls.local") as tls:
                tls.sendall(b"GET / HTTP/1.1\r\nHost: tls.local\r\nConnection: close\r\n\r\n")
                self.assertIn(b"200", tls.recv(100))
        plain = Conn(self.tls_port)
        self.addCleanup(plain.close)
        plain.send("GET / HTTP/1.1\r\nHost: tls.local\r\n\r\n")
        self.assertTrue(plain.closed())

        ingress_total = 8  # hello 4, slow 3, tiny 1
        wait_until(lambda: sum(sample(self.scrape(), "subgate_http_requests_total", server=self.ingress,
                                      code=c) for c in ("2xx", "5xx")) == ingress_total,
                   what="the ingress requests counted")
        wait_until(lambda: sample(self.scrape(), "subgate_tls_handshake_failures_total") == 1,
                   what="the failed handshake counted")
        m = self.scrape()
        ing = {"server": self.ingress}
        self.assertEqual(sample(m, "subgate_http_errors_total", **ing, code="CAPACITY_EXCEEDED"), 1)
        self.assertEqual(sample(m, "subgate_http_errors_total", **ing, code="DEPLOYMENT_FAILED"), 0)
        self.assertEqual(sample(m, "subgate_http_errors_total", server="edge.local",
                                code="INTERNAL_SERVER_ERROR"), 2)
        self.assertEqual(sample(m, "subgate_lua_errors_total"), 2)
        self.assertEqual(sample(m, "subgate_lua_budget_hits_total"), 1)
        self.assertEqual(sample(m, "subgate_http_request_body_bytes_total", **ing), 1000)
        self.assertGreaterEqual(sample(m, "subgate_http_response_body_bytes_total", **ing),
                                len(b"done") * 2)
        # Histograms: every ingress request once; the slow ones took a second or more.
        for family in ("subgate_http_request_duration_seconds",
                       "subgate_http_time_to_first_byte_seconds"):
            self.assertEqual(sample(m, family + "_count", **ing), ingress_total, family)
            self.assertEqual(sample(m, family + "_bucket", **ing, le="+Inf"), ingress_total)
            self.assertLessEqual(sample(m, family + "_bucket", **ing, le="0.5"), ingress_total - 2)
            self.assertGreaterEqual(sample(m, family + "_sum", **ing), 2.0)
        # The isolate wait: every ingress request; the CAPACITY_EXCEEDED one waited 300 ms.
        self.assertEqual(sample(m, "subgate_isolate_wait_seconds_count"), ingress_total)
        self.assertLessEqual(sample(m, "subgate_isolate_wait_seconds_bucket", le="0.25"),
                             ingress_total - 1)
        self.assertGreaterEqual(sample(m, "subgate_isolate_wait_seconds_sum"), 0.3)
        # Boots: three isolates ready, the first from the spare.
        self.assertEqual(sample(m, "subgate_isolate_ready_total"), 3)
        self.assertEqual(sample(m, "subgate_isolate_boot_duration_seconds_count", spare="true") +
                         sample(m, "subgate_isolate_boot_duration_seconds_count", spare="false"), 3)
        self.assertGreaterEqual(sample(m, "subgate_isolate_boot_duration_seconds_count", spare="true"), 1)
        self.assertEqual(sample(m, "subgate_isolates_by_state", state="ready"), 3)
        self.assertEqual(sample(m, "subgate_isolate_queued_requests"), 0)
        self.assertEqual(sample(m, "subgate_isolate_code_cache_hits_total"), 0)
        # Connections: one TLS handshake done, one failed; the WebSocket still open.
        self.assertEqual(sample(m, "subgate_tls_handshakes_total"), 1)
        self.assertEqual(sample(m, "subgate_websockets_total"), 1)
        self.assertEqual(sample(m, "subgate_websockets_open"), 1)
        self.assertGreaterEqual(sample(m, "subgate_connections_open", protocol="http1"), 1)
        self.assertGreaterEqual(sample(m, "subgate_connections_accepted_total"), 15)
        self.assertGreaterEqual(sample(m, "subgate_connections_total", protocol="http1"), 14)
        self.assertEqual(sample(m, "subgate_connections_total", protocol="http2"), 0)
        # Per deployment: hello (4) and slow (3) shown, tiny in _other.
        sub = {"subhoster": "test"}
        self.assertEqual(sample(m, "subgate_deployment_requests_total", deployment="hello", **sub,
                                code="2xx"), 4)
        self.assertEqual(sample(m, "subgate_deployment_requests_total", deployment="slow", **sub,
                                code="5xx"), 1)
        self.assertEqual(sample(m, "subgate_deployment_errors_total", deployment="slow", **sub,
                                code="CAPACITY_EXCEEDED"), 1)
        self.assertEqual(sample(m, "subgate_deployment_errors_total", deployment="hello", **sub,
                                code="CAPACITY_EXCEEDED"), 0)
        self.assertEqual(sample(m, "subgate_deployment_request_duration_seconds_count",
                                deployment="slow", **sub), 3)
        self.assertEqual(sample(m, "subgate_deployment_isolates", deployment="hello", **sub), 1)
        self.assertEqual(sample(m, "subgate_deployment_requests_total", deployment="_other",
                                subhoster="", code="2xx"), 1)
        self.assertEqual(sample(m, "subgate_deployment_isolates", deployment="_other", subhoster=""), 1)
        self.assertIsNone(sample(m, "subgate_deployment_requests_total", deployment="tiny", **sub,
                                 code="2xx"))

        # The WebSocket closed: the gauge goes back to zero.
        ws.close()
        wait_until(lambda: sample(self.scrape(), "subgate_websockets_open") == 0,
                   what="the WebSocket counted closed")

        # OpenMetrics, as Prometheus asks for it: the same values.
        om = self.scrape(accept=PROMETHEUS_ACCEPT)
        self.assertEqual(sample(om, "subgate_deployment_errors_total", deployment="slow", **sub,
                                code="CAPACITY_EXCEEDED"), 1)
        self.assertEqual(sample(om, "subgate_http_request_duration_seconds_count", **ing), ingress_total)

    def test_http2_connections_and_websockets_are_counted(self):
        from h2_client import H2Client, ws_close_frame
        c = H2Client(self.edge_port)
        self.assertEqual(c.response(c.request("/hello", authority="edge.local")).status, 200)
        m = self.scrape()
        self.assertEqual(sample(m, "subgate_connections_total", protocol="http2"), 1)
        self.assertEqual(sample(m, "subgate_connections_open", protocol="http2"), 1)
        # An RFC 8441 WebSocket: its 200 opens the tunnel, counted as a WebSocket.
        s = c.websocket("/ws/echo", authority="edge.local")
        c.wait(lambda: s.headers is not None or s.done, what="the WebSocket answer")
        self.assertEqual(s.status, 200)
        m = self.scrape()
        self.assertEqual(sample(m, "subgate_websockets_total"), 1)
        self.assertEqual(sample(m, "subgate_websockets_open"), 1)
        c.send_data(s, ws_close_frame())
        c.wait(lambda: s.ended, what="END_STREAM after the upstream closed")
        c.end_stream(s)
        wait_until(lambda: sample(self.scrape(), "subgate_websockets_open") == 0,
                   what="the WebSocket counted closed")
        c.close()
        wait_until(lambda: sample(self.scrape(), "subgate_connections_open", protocol="http2") == 0,
                   what="the HTTP/2 connection counted closed")


if __name__ == "__main__":
    unittest.main()
