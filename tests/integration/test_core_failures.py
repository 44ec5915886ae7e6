"""Upstream failures map to the error table; retries, timeouts and deadlines."""

import time

from harness import SubgateTestCase, free_port, request


class UpstreamFailureTest(SubgateTestCase):
    def setUp(self):
        self.backend = self.start_backend()

    def proxy(self, servers, extra=""):
        lines = "\n".join(f"server {s};" for s in servers)
        return self.start_subgate(f"""
            workers 1;
            error_log stderr warn;
            upstream up {{ {lines} keepalive 8; }}
            server {{
                listen 127.0.0.1:@PORT@;
                {extra}
                location / {{ proxy_pass http://up; }}
            }}
        """)

    def assertError(self, response, status, code):
        self.assertEqual(response.status, status, response.body)
        self.assertEqual(response.error()["code"], code)

    def test_upstream_down_is_502(self):
        sg = self.proxy([f"127.0.0.1:{free_port()}"])
        self.assertError(request(sg.port, path="/hello"), 502, "UPSTREAM_ERROR")

    def test_upstream_closing_without_answer_is_502(self):
        sg = self.proxy([f"127.0.0.1:{self.backend.port}"])
        self.assertError(request(sg.port, path="/close"), 502, "UPSTREAM_ERROR")

    def test_malformed_upstream_response_is_502(self):
        sg = self.proxy([f"127.0.0.1:{self.backend.port}"])
        self.assertError(request(sg.port, path="/garbage"), 502, "UPSTREAM_ERROR")

    def test_retry_on_another_server_when_connect_fails(self):
        sg = self.proxy([f"127.0.0.1:{free_port()}", f"127.0.0.1:{self.backend.port}"])
        for _ in range(4):  # whichever server least-connections picks first
            r = request(sg.port, path="/hello")
            self.assertEqual(r.status, 200)

    def test_deadline_from_the_header(self):
        sg = self.proxy([f"127.0.0.1:{self.backend.port}"])
        start = time.monotonic()
        r = request(sg.port, path="/slow?ms=3000", headers={"x-deno-timeout-ms": "200"})
        elapsed = time.monotonic() - start
        self.assertError(r, 504, "REQUEST_TIMED_OUT")
        self.assertGreater(elapsed, 0.15)
        self.assertLess(elapsed, 2.5)
        self.assertEqual(request(sg.port, path="/slow?ms=50", headers={"x-deno-timeout-ms": "2000"}).status, 200)

    def test_default_deadline_and_clamp(self):
        sg = self.proxy([f"127.0.0.1:{self.backend.port}"],
                        "request_timeout 300ms; request_timeout_max 400ms;")
        start = time.monotonic()
        self.assertError(request(sg.port, path="/slow?ms=3000"), 504, "REQUEST_TIMED_OUT")
        self.assertLess(time.monotonic() - start, 2.5)
        start = time.monotonic()
        r = request(sg.port, path="/slow?ms=3000", headers={"x-deno-timeout-ms": "100000"})
        self.assertError(r, 504, "REQUEST_TIMED_OUT")  # clamped to 400ms
        self.assertLess(time.monotonic() - start, 2.5)

    def test_read_timeout(self):
        sg = self.proxy([f"127.0.0.1:{self.backend.port}"], "proxy_read_timeout 200ms;")
        self.assertError(request(sg.port, path="/slow?ms=3000"), 504, "UPSTREAM_TIMED_OUT")

    def test_upstream_dying_mid_body_truncates_the_response(self):
        sg = self.proxy([f"127.0.0.1:{self.backend.port}"])
        from harness import Conn
        c = Conn(sg.port)
        # /nolength answers with a body ended by close: a complete exchange, re-chunked.
        c.send(b"GET /nolength?bytes=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(len(c.read_response().body), 1000)

    def test_max_conns(self):
        sg = self.start_subgate(f"""
            workers 1;
            error_log stderr warn;
            upstream up {{ server 127.0.0.1:{self.backend.port} max_conns=1; }}
            server {{ listen 127.0.0.1:@PORT@; location / {{ proxy_pass http://up; }} }}
        """)
        import threading
        from harness import wait_until
        results = []
        before = self.backend.requests
        slow = threading.Thread(target=lambda: results.append(request(sg.port, path="/slow?ms=800").status))
        slow.start()
        # The slow request now holds the only connection the upstream may have.
        wait_until(lambda: self.backend.requests > before, what="the slow request to arrive")
        self.assertError(request(sg.port, path="/hello"), 502, "UPSTREAM_ERROR")
        slow.join(10)
        self.assertEqual(results, [200])
        self.assertEqual(request(sg.port, path="/hello").status, 200)
