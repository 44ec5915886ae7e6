"""Malformed and oversized requests get the right status, x-deno-error code, and (for framing
errors) a closed connection, over raw sockets."""

from harness import Conn, SubgateTestCase, request

CONFIG = """
    workers 1;
    error_log stderr warn;
    server {
        listen 127.0.0.1:@PORT@;
        client_max_header_size 2k;
        client_max_headers 20;
        client_max_uri_size 256;
        client_max_body_size 1k;
        location / { return 200 "ok\\n"; }
        location /big { client_max_body_size 0; return 200 "big\\n"; }
        location /up/ { proxy_pass http://127.0.0.1:@BACKEND@; }
    }
"""

BAD_REQUESTS = {
    "content-length with transfer-encoding":
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "differing content-lengths":
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "differing content-length list": b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3, 4\r\n\r\nabcd",
    "non-numeric content-length": b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3a\r\n\r\nabc",
    "gzip transfer coding": b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n",
    "chunked not last": b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
    "chunked twice": b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
    "invalid chunk size": b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    "chunk size overflow":
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n11111111111111111\r\nab\r\n",
    "chunk data too long": b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  continued\r\n\r\n",
    "bare CR in a header": b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n",
    "bare LF line ending": b"GET / HTTP/1.1\nHost: t\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost: t\r\nX-A : 1\r\n\r\n",
    "space in header name": b"GET / HTTP/1.1\r\nHost: t\r\nX A: 1\r\n\r\n",
    "invalid byte in name": b"GET / HTTP/1.1\r\nHost: t\r\nX\x01A: 1\r\n\r\n",
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: t\r\nX-A: a\x00b\r\n\r\n",
    "NUL in the target": b"GET /a\x00b HTTP/1.1\r\nHost: t\r\n\r\n",
    "missing host": b"GET / HTTP/1.1\r\n\r\n",
    "two hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "bad version": b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
    "bad method": b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
    "two spaces": b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
    "transfer-encoding on HTTP/1.0": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
}


class RejectionTest(SubgateTestCase):
    def setUp(self):
        self.backend = self.start_backend()
        self.config = CONFIG.replace("@BACKEND@", str(self.backend.port))
        self.sg = self.start_subgate(self.config)

    def exchange(self, raw):
        c = Conn(self.sg.port, timeout=5)
        c.send(raw)
        response = c.read_response()
        return response, c

    def test_every_malformed_request_is_400_and_closes(self):
        for name, raw in BAD_REQUESTS.items():
            with self.subTest(name):
                # Sent to a proxied location, so that a body is read (and so checked) too.
                response, c = self.exchange(raw.replace(b" / HTTP", b" /up/count HTTP", 1))
                self.assertEqual(response.status, 400, response.body)
                self.assertEqual(response.error()["code"], "BAD_REQUEST")
                self.assertTrue(response.error()["message"])
                self.assertEqual(response.header("connection"), "close")
                self.assertTrue(c.closed(), "connection stays open")
                c.close()

    def test_valid_neighbours_are_accepted(self):
        # The same shapes, made valid, pass: the rejections above are about the flaw only.
        for raw in (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
                    b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: Chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: t\r\nX-A: \xff\xfe\r\n\r\n",
                    b"GET / HTTP/1.0\r\n\r\n"):
            response, c = self.exchange(raw)
            self.assertEqual(response.status, 200, raw)
            c.close()

    def test_header_limits(self):
        many = b"".join(b"X-%d: 1\r\n" % i for i in range(25))
        response, _ = self.exchange(b"GET / HTTP/1.1\r\nHost: t\r\n" + many + b"\r\n")
        self.assertEqual((response.status, response.error()["code"]), (431, "HEADER_TOO_LARGE"))
        big = b"X-Big: " + b"a" * 3000 + b"\r\n"
        response, _ = self.exchange(b"GET / HTTP/1.1\r\nHost: t\r\n" + big + b"\r\n")
        self.assertEqual((response.status, response.error()["code"]), (431, "HEADER_TOO_LARGE"))

    def test_uri_limit(self):
        response, _ = self.exchange(b"GET /" + b"a" * 300 + b" HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual((response.status, response.error()["code"]), (414, "URI_TOO_LONG"))

    def test_body_limit_by_content_length_is_answered_before_the_body(self):
        c = Conn(self.sg.port, timeout=5)
        c.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5000000\r\n\r\n")
        response = c.read_response()  # no body byte was sent
        self.assertEqual((response.status, response.error()["code"]), (413, "PAYLOAD_TOO_LARGE"))
        self.assertTrue(c.closed())

    def test_body_limit_by_chunked_body(self):
        chunk = b"400\r\n" + b"a" * 1024 + b"\r\n"
        response, c = self.exchange(
            b"POST /up/count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 3)
        self.assertEqual((response.status, response.error()["code"]), (413, "PAYLOAD_TOO_LARGE"))
        self.assertTrue(c.closed())
        # A location's own limit applies: client_max_body_size 0 = unlimited.
        self.assertEqual(request(self.sg.port, path="/big", body=b"x" * 5000).status, 200)

    def test_bad_timeout_header(self):
        for value in ("0", "-5", "abc", "1.5", "", " ", "12345678901"):
            with self.subTest(value=value):
                response = request(self.sg.port, headers={"x-deno-timeout-ms": value})
                self.assertEqual(response.status, 400)
                self.assertEqual(response.error()["code"], "BAD_REQUEST")
        self.assertEqual(request(self.sg.port, headers={"x-deno-timeout-ms": "250"}).status, 200)

    def test_incomplete_head_times_out_with_408(self):
        sg = self.start_subgate(self.config.replace("listen", "client_header_timeout 300ms;\n        listen"))
        c = Conn(sg.port, timeout=5)
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n")
        response = c.read_response()
        self.assertEqual((response.status, response.error()["code"]), (408, "CLIENT_TIMEOUT"))
        self.assertTrue(c.closed())
