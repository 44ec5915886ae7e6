"""The core reverse proxy in front of a real backend: routing, headers, keep-alive, pipelining,
HTTP/1.0, HEAD, 100-continue, the access log."""

import json
import os

from harness import Conn, SubgateTestCase, request


class ProxyTest(SubgateTestCase):
    def setUp(self):
        self.backend = self.start_backend()
        self.log_path = None

    def start(self, extra_server="", extra_main=""):
        import shutil
        import tempfile
        log_dir = tempfile.mkdtemp(prefix="subgate-log-")
        self.addCleanup(shutil.rmtree, log_dir, True)
        self.log_path = os.path.join(log_dir, "access.log")
        return self.start_subgate(f"""
            workers 2;
            error_log stderr info;
            {extra_main}
            upstream backend {{ server 127.0.0.1:{self.backend.port}; keepalive 16; }}
            server {{
                listen 127.0.0.1:@PORT@;
                access_log {self.log_path} json;
                location = /healthz {{ return 200 "ok\\n"; }}
                location = /moved {{ return 301 https://example.com/; }}
                location /api/ {{ proxy_pass http://backend; }}
                location ~ ^/re/(a|b)$ {{ return 200 "regex\\n"; }}
                location /re/ {{ return 200 "prefix\\n"; }}
                {extra_server}
            }}
        """)

    def test_return_and_redirect(self):
        sg = self.start()
        r = request(sg.port, path="/healthz")
        self.assertEqual((r.status, r.body), (200, b"ok\n"))
        r = request(sg.port, path="/moved")
        self.assertEqual(r.status, 301)
        self.assertEqual(r.header("location"), "https://example.com/")

    def test_no_location_is_not_found_with_error_header(self):
        sg = self.start()
        r = request(sg.port, path="/nothing-here")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.error()["code"], "NOT_FOUND")
        self.assertIn(b"NOT_FOUND", r.body)

    def test_locations_exact_regex_prefix(self):
        sg = self.start()
        self.assertEqual(request(sg.port, path="/re/a").body, b"regex\n")
        self.assertEqual(request(sg.port, path="/re/c").body, b"prefix\n")
        self.assertEqual(request(sg.port, path="/healthz/x").status, 404)

    def test_proxies_to_the_backend(self):
        sg = self.start()
        r = request(sg.port, path="/api/x", host="h.example")
        self.assertEqual(r.status, 404)
        self.assertEqual(r.body, b"no such endpoint\n")  # the backend's own 404 passes untouched
        self.assertIsNone(r.header("x-deno-error"))

    def test_request_headers_reaching_the_backend(self):
        # The backend sees the path as sent: /api/... is not rewritten.
        sg = self.start(extra_server="location /headers { proxy_pass http://backend; }")
        r = request(sg.port, path="/headers", host="app.example:8443", headers={
            "X-Forwarded-For": "203.0.113.9", "Connection": "X-Drop", "X-Drop": "1",
            "Keep-Alive": "timeout=3", "TE": "trailers", "X-Keep": "yes", "Via": "1.1 edge"})
        self.assertEqual(r.status, 200)
        got = {k.lower(): v for k, v in json.loads(r.body)}
        self.assertEqual(got["host"], "app.example:8443")
        self.assertEqual(got["x-forwarded-for"], "203.0.113.9, 127.0.0.1")
        self.assertEqual(got["via"], "1.1 edge, 1.1 subgate")
        self.assertEqual(got["x-keep"], "yes")
        for hop in ("x-drop", "keep-alive", "te"):
            self.assertNotIn(hop, got)
        self.assertNotEqual(got.get("connection", "").lower(), "x-drop")

    def test_response_hop_by_hop_headers_are_removed(self):
        sg = self.start(extra_server="location /headers { proxy_pass http://backend; }")
        r = request(sg.port, path="/headers")
        self.assertEqual(r.header("x-end"), "1")
        self.assertIsNone(r.header("x-hop"))
        self.assertIsNone(r.header("keep-alive"))

    def test_client_keep_alive_and_upstream_reuse(self):
        sg = self.start(extra_server="location /conn { proxy_pass http://backend; }")
        ids = set()
        for _ in range(3):  # separate client connections, sequential
            c = Conn(sg.port)
            for _ in range(3):  # several requests on one client connection
                c.send("GET /conn HTTP/1.1\r\nHost: t\r\n\r\n")
                r = c.read_response()
                self.assertEqual(r.status, 200)
                ids.add(r.body)
            c.close()
        # Two workers, sequential requests: at most one upstream connection per worker.
        self.assertLessEqual(len(ids), 2, ids)

    def test_pipelined_requests_answer_in_order(self):
        sg = self.start()
        c = Conn(sg.port)
        c.send("GET /api/hello HTTP/1.1\r\nHost: t\r\n\r\n"
               "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
               "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nabcde"
               "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(c.read_response().body, b"hello from backend\n")
        self.assertEqual(c.read_response().body, b"ok\n")
        self.assertEqual(c.read_response().body, b"abcde")
        self.assertEqual(c.read_response().status, 404)
        c.close()

    def test_chunked_request_trailers_reach_the_upstream_without_framing_fields(self):
        sg = self.start()
        c = Conn(sg.port)
        c.send("POST /api/trailers HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               "3\r\nabc\r\n0\r\nX-Checksum: 1\r\nContent-Length: 3\r\nHost: elsewhere\r\n"
               "TE: trailers\r\nX-Part: 2\r\n\r\n")
        r = c.read_response()
        c.close()
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.body), {"bytes": 3, "framing": "chunked",
                                              "trailers": [["X-Checksum", "1"], ["X-Part", "2"]]})

    def test_http10_client(self):
        sg = self.start(extra_server="location /nolength { proxy_pass http://backend; }")
        c = Conn(sg.port)
        c.send("GET /api/hello HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertEqual((r.status, r.body), (200, b"hello from backend\n"))
        self.assertTrue(r.raw_head.startswith(b"HTTP/1.0 200"))
        self.assertTrue(c.closed())
        # A body without length reaches an HTTP/1.0 client close-delimited.
        c = Conn(sg.port)
        c.send("GET /nolength?bytes=5000 HTTP/1.0\r\n\r\n")
        r = c.read_response()
        self.assertEqual(len(r.body), 5000)
        self.assertIsNone(r.header("transfer-encoding"))

    def test_unknown_length_is_rechunked_for_http11(self):
        sg = self.start(extra_server="location /nolength { proxy_pass http://backend; }")
        c = Conn(sg.port)
        c.send("GET /nolength?bytes=70000 HTTP/1.1\r\nHost: t\r\n\r\n")
        r = c.read_response()
        self.assertEqual(r.header("transfer-encoding"), "chunked")
        self.assertEqual(len(r.body), 70000)
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")  # and the client connection lives on
        self.assertEqual(c.read_response().body, b"ok\n")

    def test_head_request(self):
        sg = self.start()
        r = request(sg.port, method="HEAD", path="/api/hello")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("content-length"), "19")

    def test_expect_100_continue(self):
        sg = self.start()
        c = Conn(sg.port)
        c.send("POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
        c.sock.settimeout(5)
        interim = c.sock.recv(100)
        self.assertTrue(interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), interim)
        c.buf = interim[len(b"HTTP/1.1 100 Continue\r\n\r\n"):]
        c.send("ping")
        self.assertEqual(c.read_response().body, b"ping")

    def test_access_log_has_one_json_line_per_request(self):
        sg = self.start()
        request(sg.port, path="/healthz")
        request(sg.port, path="/api/hello")
        request(sg.port, path="/missing")

        def lines():
            with open(self.log_path) as f:
                return [json.loads(line) for line in f]

        # A line is written once its response is on the wire, so it may trail the response.
        from harness import wait_until
        wait_until(lambda: len(lines()) == 3, what="three access log lines")
        # Two workers: a line may trail its response, so the order of lines is not the order of
        # requests.
        lines = sorted(lines(), key=lambda e: e["uri"])
        self.assertEqual([(e["uri"], e["status"]) for e in lines],
                         [("/api/hello", 200), ("/healthz", 200), ("/missing", 404)])
        self.assertEqual(lines[2]["error"], "NOT_FOUND")
        self.assertTrue(lines[0]["upstream"].startswith("127.0.0.1:"))


class ProxyWithoutIoUringTest(ProxyTest):
    """Every case above again with each socket write made directly (`io_uring off;`), the path
    of machines where io_uring is not available."""

    def start(self, extra_server="", extra_main=""):
        return super().start(extra_server, "io_uring off;\n" + extra_main)


class IoUringTest(SubgateTestCase):
    def test_workers_batch_their_writes_unless_turned_off(self):
        from harness import wait_until
        backend = self.start_backend()
        for setting, expected in (("on", "batched with io_uring, io_coalesce 20us\n"),
                                  ("off", "(io_uring off in the config)")):
            sg = self.start_subgate(f"""
                workers 2;
                error_log stderr debug;
                io_uring {setting};
                server {{
                    listen 127.0.0.1:@PORT@;
                    location / {{ proxy_pass http://127.0.0.1:{backend.port}; }}
                }}
            """)
            for _ in range(3):
                self.assertEqual(request(sg.port, path="/hello").body, b"hello from backend\n")
            if "reads and writes are not batched" in sg.output():  # this kernel or sandbox has none
                self.skipTest(sg.output().split("not batched: ", 1)[1].split("\n", 1)[0])
            wait_until(lambda: sg.output().count(expected) == 2, what=f"both workers: {expected!r}")

    def test_io_coalesce_is_set_and_reloaded(self):
        import signal
        from harness import wait_until
        backend = self.start_backend()
        config = """
            workers 2;
            error_log stderr debug;
            io_coalesce {value};
            server {{
                listen 127.0.0.1:{port};
                location / {{ proxy_pass http://127.0.0.1:{backend}; }}
            }}
        """
        sg = self.start_subgate(config.format(value="50us", port="@PORT@", backend=backend.port))
        self.assertEqual(request(sg.port, path="/hello").body, b"hello from backend\n")
        if "reads and writes are not batched:" in sg.output():  # this kernel or sandbox has none
            self.skipTest(sg.output().split("not batched: ", 1)[1].split("\n", 1)[0])
        wait_until(lambda: sg.output().count("io_coalesce 50us\n") == 2, what="both workers at 50us")
        sg.write_config(config.format(value="off", port=sg.port, backend=backend.port))
        sg.signal(signal.SIGHUP)
        wait_until(lambda: sg.output().count("io_coalesce off\n") == 2, what="both workers reloaded")
        for _ in range(3):
            self.assertEqual(request(sg.port, path="/hello").body, b"hello from backend\n")
