"""HTTP/2 from clients (`listen ... http2`): ALPN h2 over TLS and h2c by prior knowledge on a
plaintext listener, multiplexed streams, local error replies, proxying large bodies both ways to
the HTTP/1.1 test backend, trailers both ways, HTTP/1.1 clients on the same listener, an h2load
run, defences (garbage after the preface, rapid reset), and the access log's protocol and status
for streams. Real clients: curl, nghttp, h2load; h2_client.py where they cannot (request
trailers, extended CONNECT)."""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from backend_server import PATTERN  # noqa: E402
from h2_client import PROTOCOL_ERROR, H2Client, ws_close_frame  # noqa: E402
from harness import Conn, SubgateTestCase, free_port, request, wait_until  # noqa: E402
from test_http2_websockets import WsBackend  # noqa: E402
from test_tls import corrupt_record_after_handshake, make_ca, make_cert  # noqa: E402

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def read_frames(sock, until, limit=2000):
    """Frames (type, flags, stream, payload) until `until(frames)` or EOF; bounded."""
    buf, frames = b"", []
    for _ in range(limit):
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            frames.append((buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + length]))
            buf = buf[9 + length:]
        if until(frames):
            return frames, False
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            return frames, True
        if not data:
            return frames, True
        buf += data
    return frames, False


def expected_pattern(n):
    return (PATTERN * (n // len(PATTERN) + 1))[:n]


class Http2(SubgateTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="subgate-h2-")
        make_ca(cls.dir)
        make_cert(cls.dir, "a.test", 1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.backend = self.start_backend()
        self.tls_port = free_port()
        d = self.dir
        self.config = f"""
            workers 2;
            error_log stderr info;
            server {{
                listen 127.0.0.1:@PORT@ http2;
                listen 127.0.0.1:{self.tls_port} ssl http2;
                server_name a.test;
                ssl_certificate {d}/a.test.pem;
                ssl_certificate_key {d}/a.test.key;
                client_max_body_size 0;
                location / {{ return 200 "hello\\n"; }}
                location /small {{ return 200 "small\\n"; }}
                location /api/ {{ proxy_pass http://127.0.0.1:{self.backend.port}; }}
                location /limited {{ client_max_body_size 1k; proxy_pass http://127.0.0.1:{self.backend.port}; }}
                location /dead {{ proxy_pass http://127.0.0.1:1; }}
                location = /count {{ client_body_timeout 1s; proxy_pass http://127.0.0.1:{self.backend.port}; }}
            }}
        """
        self.sg = self.start_subgate(self.config)
        self.h2c = f"http://127.0.0.1:{self.sg.port}"
        self.h2s = f"https://a.test:{self.tls_port}"
        wait_until(lambda: self._port_open(self.tls_port), what="the TLS listener")

    @staticmethod
    def _port_open(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            return False

    def curl(self, *args, timeout=60):
        cmd = ["curl", "-sS", "--cacert", os.path.join(self.dir, "ca.pem"),
               "--resolve", f"a.test:{self.tls_port}:127.0.0.1", *args]
        return subprocess.run(cmd, capture_output=True, timeout=timeout)

    def test_a_stalled_request_body_times_out(self):
        # curl sends what stdin gives it and then waits: the stream's body stalls.
        p = subprocess.Popen(["curl", "-sS", "--http2-prior-knowledge", "-T", "-", "-w", "\n%{http_code}",
                              self.h2c + "/count"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        try:
            p.stdin.write(b"x" * 10)
            p.stdin.flush()
            wait_until(lambda: "stalled" in self.sg.output(), what="the body timeout")
            # The 408 was produced then; curl prints it once its stdin ends.
            out, _ = p.communicate(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        self.assertTrue(out.endswith(b"408"), out)
        self.assertIn(b"CLIENT_TIMEOUT", out)
        self.assertEqual(self.curl("--http2-prior-knowledge", self.h2c + "/small").stdout, b"small\n")

    def test_tls_alpn_h2(self):
        p = self.curl("--http2", "-v", self.h2s + "/small")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"ALPN: server accepted h2", p.stderr)
        self.assertIn(b"< HTTP/2 200", p.stderr)
        self.assertEqual(p.stdout, b"small\n")

    def test_tls_corrupt_record_closes_only_that_connection(self):
        settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"  # an empty SETTINGS frame
        self.assertTrue(corrupt_record_after_handshake(self.tls_port, os.path.join(self.dir, "ca.pem"), "h2",
                                                       first=PREFACE + settings))
        p = self.curl("--http2", self.h2s + "/small")
        self.assertEqual((p.returncode, p.stdout), (0, b"small\n"), p.stderr)

    def test_tls_http11_client_still_served(self):
        p = self.curl("--http1.1", "-v", self.h2s + "/small")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"ALPN: server accepted http/1.1", p.stderr)
        self.assertEqual(p.stdout, b"small\n")

    def test_via_names_the_protocol_the_request_came_with(self):
        # RFC 9110 §7.6.3: "2 subgate" for a request received over HTTP/2, "1.1" otherwise.
        for flag, via in (("--http2-prior-knowledge", "2 subgate"), ("--http1.1", "1.1 subgate")):
            p = self.curl(flag, "-H", "Via: 1.1 edge", self.h2c + "/api/headers")
            self.assertEqual(p.returncode, 0, p.stderr)
            seen = dict((k.lower(), v) for k, v in json.loads(p.stdout))
            self.assertEqual(seen["via"], f"1.1 edge, {via}")

    def test_h2c_prior_knowledge(self):
        p = self.curl("--http2-prior-knowledge", "-v", self.h2c + "/small")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"< HTTP/2 200", p.stderr)
        self.assertEqual(p.stdout, b"small\n")

    def test_http11_client_on_h2c_listener(self):
        r = request(self.sg.port, path="/small")
        self.assertEqual((r.status, r.body), (200, b"small\n"))

    def test_nghttp_frames_and_multiplexing(self):
        uris = [self.h2c + f"/small?{i}" for i in range(8)]
        p = subprocess.run(["nghttp", "-nv", *uris], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("recv SETTINGS frame", out)
        self.assertIn("(niv=4)", out)
        self.assertIn("[SETTINGS_ENABLE_CONNECT_PROTOCOL(0x08):1]", out)
        self.assertIn("[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):128]", out)
        self.assertEqual(out.count(":status: 200"), 8)
        # One connection, eight streams.
        streams = {int(line.split("stream_id=")[1].split(">")[0]) for line in out.splitlines()
                   if "recv DATA frame" in line}
        self.assertEqual(len(streams), 8)

    def test_curl_parallel_on_one_connection(self):
        urls = [self.h2s + f"/api/big?bytes={100000 + i}" for i in range(6)]
        args = ["--http2", "--parallel", "--parallel-max", "6", "-w", "%{http_version} %{num_connects}\\n"]
        for url in urls:
            args += ["-o", "/dev/null", url]
        p = self.curl(*args)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.decode().split()
        self.assertEqual(lines.count("2"), 6)

    def test_local_error_reply_has_x_deno_error(self):
        p = self.curl("--http2-prior-knowledge", "-i", self.h2c + "/dead")
        self.assertEqual(p.returncode, 0, p.stderr)
        head, _, body = p.stdout.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/2 502"), head)
        error = [line for line in head.split(b"\r\n") if line.startswith(b"x-deno-error:")]
        self.assertEqual(len(error), 1, head)
        self.assertEqual(json.loads(error[0].split(b":", 1)[1])["code"], "UPSTREAM_ERROR")

    def test_not_found_and_head(self):
        p = self.curl("--http2-prior-knowledge", "-I", self.h2c + "/small")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"content-length: 6", p.stdout)

    def test_proxy_large_download(self):
        size = 20 * 1024 * 1024 + 7
        for base in (self.h2c, self.h2s):
            p = self.curl("--http2-prior-knowledge" if base == self.h2c else "--http2",
                          base + f"/api/big?bytes={size}")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(p.stdout), size)
            self.assertEqual(p.stdout, expected_pattern(size))

    def test_proxy_large_upload(self):
        body = os.urandom(8 * 1024 * 1024 + 3)
        path = os.path.join(self.dir, "upload.bin")
        with open(path, "wb") as f:
            f.write(body)
        for base, flag in ((self.h2c, "--http2-prior-knowledge"), (self.h2s, "--http2")):
            p = self.curl(flag, "--data-binary", "@" + path, base + "/api/count")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout),
                             {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})
        p = subprocess.run(["nghttp", "-d", path, self.h2c + "/api/count"], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["sha256"], hashlib.sha256(body).hexdigest())
        # Without a length (curl reading stdin): the body ends with END_STREAM, sent on chunked.
        with open(path, "rb") as f:
            p = subprocess.run(["curl", "-sS", "--http2-prior-knowledge", "-X", "POST", "-T", "-",
                                self.h2c + "/api/count"], stdin=f, capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout), {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()})

    def test_body_too_large(self):
        path = os.path.join(self.dir, "upload-small.bin")
        with open(path, "wb") as f:
            f.write(b"x" * 300000)
        # With a length: refused before the body; without: once it passes the limit.
        for extra in ([], ["-X", "POST", "-T", path]):
            args = extra or ["--data-binary", "@" + path]
            p = self.curl("--http2-prior-knowledge", "-i", *args, self.h2c + "/limited/count")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(p.stdout.startswith(b"HTTP/2 413"), p.stdout[:300])
            self.assertIn(b"PAYLOAD_TOO_LARGE", p.stdout)

    def test_proxy_streamed_chunked_response(self):
        p = self.curl("--http2-prior-knowledge", self.h2c + "/api/stream?chunks=3&interval_ms=50")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"chunk 2", p.stdout)

    def test_h2load(self):
        for url in (self.h2c + "/small", f"https://127.0.0.1:{self.tls_port}/small"):
            p = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", url],
                               capture_output=True, timeout=120)
            out = p.stdout.decode()
            self.assertEqual(p.returncode, 0, out + p.stderr.decode())
            self.assertIn("2000 succeeded, 0 failed, 0 errored", out)
            self.assertIn("status codes: 2000 2xx", out)

    def test_garbage_after_preface_closes_only_that_connection(self):
        s = socket.create_connection(("127.0.0.1", self.sg.port), timeout=5)
        other = socket.create_connection(("127.0.0.1", self.sg.port), timeout=5)
        other.sendall(b"GET /small HTTP/1.1\r\nHost: t\r\n")  # an unfinished request meanwhile
        s.sendall(PREFACE + b"\x00\x00\xffgarbage that is no frame at all" * 10)
        frames, eof = read_frames(s, lambda fs: any(f[0] == 7 for f in fs))
        goaway = [f for f in frames if f[0] == 7]
        self.assertTrue(goaway or eof, frames)
        if goaway:
            self.assertNotEqual(int.from_bytes(goaway[0][3][4:8], "big"), 0)  # an error code
        s.close()
        other.sendall(b"\r\n")
        self.assertIn(b"small", other.recv(4096))
        other.close()
        p = self.curl("--http2-prior-knowledge", self.h2c + "/small")
        self.assertEqual(p.stdout, b"small\n")

    def test_rapid_reset_gets_enhance_your_calm(self):
        s = socket.create_connection(("127.0.0.1", self.sg.port), timeout=5)
        out = PREFACE + frame(4, 0, 0)  # empty SETTINGS
        # GET / with static-table fields: :method GET, :scheme http, :path /, :authority t.
        block = b"\x82\x86\x84\x41\x01t"
        for i in range(300):
            stream = 1 + 2 * i
            out += frame(1, 0x4 | 0x1, stream, block) + frame(3, 0, stream, struct.pack(">I", 8))
        s.sendall(out)
        frames, _ = read_frames(s, lambda fs: any(f[0] == 7 for f in fs))
        goaway = [f for f in frames if f[0] == 7]
        self.assertTrue(goaway, "no GOAWAY")
        self.assertEqual(int.from_bytes(goaway[0][3][4:8], "big"), 0xB)  # ENHANCE_YOUR_CALM
        s.close()
        p = self.curl("--http2-prior-knowledge", self.h2c + "/small")
        self.assertEqual(p.stdout, b"small\n")

    def test_header_limits(self):
        p = self.curl("--http2-prior-knowledge", "-i", "-H", "x-big: " + "a" * 40000, self.h2c + "/small")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"HTTP/2 431"), p.stdout[:200])

    def test_graceful_stop_finishes_open_streams(self):
        # nghttp, not curl: curl 7.88 ends a transfer as soon as its session, told GOAWAY, has no
        # open stream left, dropping DATA it had not handed over yet when trailers (which
        # /stream sends) close the stream in the same read.
        proc = subprocess.Popen(["nghttp", "-v", self.h2c + "/api/stream?chunks=4&interval_ms=300"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        wait_until(lambda: self.backend.requests >= 1, what="the request to reach the backend")
        self.sg.signal(15)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(b"recv GOAWAY frame", out)
        self.assertIn(b"chunk 3", out)
        self.assertIn(b"x-trailer: done", out)


    def test_response_trailers(self):
        # The backend's chunked /stream ends with the trailer "X-Trailer: done": a trailing
        # HEADERS frame with END_STREAM after the DATA.
        url = "/api/stream?chunks=2&interval_ms=10"
        p = subprocess.run(["nghttp", "-v", self.h2c + url], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.decode()
        self.assertIn("recv (stream_id=13) x-trailer: done", out)
        tail = out[out.index("x-trailer: done"):]
        self.assertIn("recv HEADERS frame", tail)
        self.assertIn("; END_STREAM | END_HEADERS", tail)
        p = self.curl("--http2", "-i", self.h2s + url)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(p.stdout.startswith(b"HTTP/2 200"), p.stdout)
        self.assertTrue(p.stdout.endswith(b"chunk 1\nx-trailer: done\r\n"), p.stdout)
        c = H2Client(self.sg.port)
        self.addCleanup(c.close)
        s = c.response(c.request(url))
        self.assertEqual(bytes(s.data), b"chunk 0\nchunk 1\n")
        self.assertEqual(s.trailers, [("x-trailer", "done")])
        data_frames = [f for f in c.frames if f[0] == 0 and f[2] == s.id]
        self.assertFalse(any(flags & 1 for _, flags, _ in data_frames), "END_STREAM on a DATA frame")
        # A response with a length has no trailers: END_STREAM on its last DATA frame.
        s = c.response(c.request("/small"))
        self.assertIsNone(s.trailers)

    def test_request_trailers_reach_the_upstream(self):
        # A trailing HEADERS frame (END_STREAM) after the body: without a content-length the
        # upstream request is chunked and the fields follow its last chunk, as an HTTP/1.1
        # client's would. Framing, routing and connection fields are dropped.
        c = H2Client(self.sg.port)
        self.addCleanup(c.close)
        body = os.urandom(300 * 1024)  # more than the stream window: the trailers wait behind it
        digest = hashlib.sha256(body).hexdigest()
        s = c.response(c.request("/api/trailers", method="POST", body=body, trailers=[
            ("x-checksum", digest), ("x-part", "1"), ("x-part", "2"), ("host", "elsewhere.test"),
            ("te", "trailers"), ("trailer", "x-checksum"), ("content-length", str(len(body)))]))
        self.assertEqual(s.status, 200, bytes(s.data))
        self.assertEqual(json.loads(bytes(s.data)), {"bytes": len(body), "framing": "chunked", "trailers": [
            ["x-checksum", digest], ["x-part", "1"], ["x-part", "2"]]})
        # Trailers right after the head: an empty chunked body with its trailers.
        s = c.response(c.request("/api/trailers", method="POST", trailers=[("x-only", "yes")]))
        self.assertEqual(json.loads(bytes(s.data)),
                         {"bytes": 0, "framing": "chunked", "trailers": [["x-only", "yes"]]})
        # With a content-length the upstream request keeps it, which leaves no place for trailers.
        s = c.response(c.request("/api/trailers", method="POST", headers=[("content-length", "3")], body=b"abc",
                                 trailers=[("x-lost", "1")]))
        self.assertEqual(json.loads(bytes(s.data)), {"bytes": 3, "framing": "content-length", "trailers": []})
        # A pseudo-header or a connection-specific field in trailers makes the request malformed
        # (RFC 9113 §8.1, §8.2.2): the stream is reset with PROTOCOL_ERROR, the connection goes on.
        for field in ((":path", "/x"), ("connection", "close"), ("transfer-encoding", "chunked")):
            s = c.response(c.request("/api/trailers", method="POST", body=b"abc", trailers=[field]))
            self.assertEqual((s.status, s.reset), (None, PROTOCOL_ERROR), field)
        # Larger than an HTTP/1.1 client may send (8 KiB): refused like those, and the upstream
        # request is never completed.
        s = c.response(c.request("/api/trailers", method="POST", body=b"abc", trailers=[("x-big", "a" * 9000)]))
        self.assertEqual(s.status, 400)
        self.assertEqual(json.loads(s.header("x-deno-error"))["code"], "BAD_REQUEST")
        s = c.response(c.request("/api/trailers", method="POST", body=b"last", trailers=[("x-last", "1")]))
        self.assertEqual(s.status, 200)
        self.assertEqual([(b["bytes"], b["trailers"]) for b in self.backend.trailer_bodies],
                         [(len(body), [["x-checksum", digest], ["x-part", "1"], ["x-part", "2"]]),
                          (0, [["x-only", "yes"]]), (3, []), (4, [["x-last", "1"]])])

    def test_reload_sends_goaway_and_open_streams_finish(self):
        c = H2Client(self.sg.port)
        self.addCleanup(c.close)
        self.assertEqual(bytes(c.response(c.request("/")).data), b"hello\n")
        slow = c.request("/api/slow?ms=1500")
        nghttp = subprocess.Popen(["nghttp", "-v", f"https://127.0.0.1:{self.tls_port}/api/slow?ms=1500"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: nghttp.poll() is None and nghttp.kill())
        wait_until(lambda: self.backend.requests >= 2, what="both slow requests to reach the backend")
        self.sg.write_config(self.config.replace('return 200 "hello\\n"', 'return 200 "two\\n"')
                             .replace("@PORT@", str(self.sg.port)))
        self.sg.signal(signal.SIGHUP)
        c.wait(lambda: len(c.goaways) >= 2, what="the shutdown notice and the final GOAWAY")
        # NO_ERROR both; the final one names the stream in flight, which is served.
        self.assertEqual(c.goaways[:2], [(2**31 - 1, 0), (slow.id, 0)])
        self.assertFalse(slow.done)
        c.response(slow)
        self.assertEqual((slow.status, bytes(slow.data)), (200, b"slow\n"))
        c.wait_closed()  # no streams left: the connection ends
        out, err = nghttp.communicate(timeout=30)
        self.assertEqual(nghttp.returncode, 0, err)
        self.assertIn(b"recv GOAWAY frame", out)
        self.assertIn(b":status: 200", out)
        self.assertIn(b"slow", out)
        # New connections serve the new config.
        fresh = H2Client(self.sg.port)
        self.addCleanup(fresh.close)
        self.assertEqual(bytes(fresh.response(fresh.request("/")).data), b"two\n")

    def test_reload_serves_streams_opened_before_the_client_saw_goaway(self):
        # The client reads the shutdown notice but holds back the PING ACK: a stream it opens
        # meanwhile stands for one that was on the wire when the notice left. It is served, and
        # the final GOAWAY (after the ACK) names it.
        c = H2Client(self.sg.port, answer_pings=False)
        self.addCleanup(c.close)
        self.assertEqual(c.response(c.request("/")).status, 200)
        self.sg.signal(signal.SIGHUP)
        c.wait(lambda: c.goaways and c.pings, what="the shutdown notice and its PING")
        self.assertEqual(c.goaways, [(2**31 - 1, 0)])
        late = c.response(c.request("/small"))
        self.assertEqual((late.status, bytes(late.data)), (200, b"small\n"))
        self.assertEqual(len(c.goaways), 1)
        c.send_frame(6, 1, 0, c.pings[0])  # PING ACK
        c.wait(lambda: len(c.goaways) >= 2, what="the final GOAWAY")
        self.assertEqual(c.goaways[1], (late.id, 0))
        c.wait_closed()


class Http2AccessLog(SubgateTestCase):
    """The access log names the protocol the client spoke, as nginx does ($server_protocol):
    HTTP/2.0 for streams, HTTP/1.0 and HTTP/1.1 on the same listener; the method the client sent
    (CONNECT for an RFC 8441 WebSocket, though the upstream sees GET); and the status the client
    got: 200 for an RFC 8441 WebSocket the upstream accepted with 101."""

    def setUp(self):
        self.ws = WsBackend()
        self.addCleanup(self.ws.stop)
        self.dir = tempfile.mkdtemp(prefix="subgate-h2log-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        d = self.dir
        upstream = f"proxy_pass http://127.0.0.1:{self.ws.port};"
        self.sg = self.start_subgate(f"""
            workers 1;
            error_log stderr info;
            server {{
                listen 127.0.0.1:@PORT@ http2;
                access_log {d}/combined.log combined;
                location /c/ {{ {upstream} }}
                location = /c/hello {{ return 200 "hello\\n"; }}
                location /j/ {{ access_log {d}/json.log json; {upstream} }}
                location = /j/hello {{ access_log {d}/json.log json; return 200 "hello\\n"; }}
            }}
        """)

    def exchanges(self, prefix):
        """Five requests: GET and a WebSocket over HTTP/2, GET over HTTP/1.1 and HTTP/1.0, a
        WebSocket over HTTP/1.1 (its client does get the 101)."""
        c = H2Client(self.sg.port)
        self.addCleanup(c.close)
        self.assertEqual(c.response(c.request(prefix + "/hello")).status, 200)
        s = c.websocket(prefix + "/ws")
        c.wait(lambda: s.headers is not None or s.done, what="the WebSocket answer")
        self.assertEqual(s.status, 200)
        c.send_data(s, ws_close_frame())
        c.wait(lambda: s.ended, what="END_STREAM after the upstream closed")
        c.end_stream(s)
        self.assertEqual(request(self.sg.port, path=prefix + "/hello").status, 200)
        for head in (f"GET {prefix}/hello HTTP/1.0\r\n\r\n",
                     f"GET {prefix}/ws HTTP/1.1\r\nHost: test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"):
            conn = Conn(self.sg.port)
            self.addCleanup(conn.close)
            conn.send(head)
            if conn.read_response(head_request=True).status == 101:  # the head only: no body follows
                conn.send(ws_close_frame())
            self.assertTrue(conn.closed(), "the server kept the connection open")

    def lines(self, name, count):
        path = os.path.join(self.dir, name)

        def read():
            if not os.path.exists(path):
                return []
            with open(path) as f:
                return f.read().splitlines()

        wait_until(lambda: len(read()) >= count, what=f"{count} lines in {name}")
        return read()

    expected = sorted([("GET", "/hello", "HTTP/1.0", 200), ("GET", "/hello", "HTTP/1.1", 200),
                       ("GET", "/hello", "HTTP/2.0", 200), ("GET", "/ws", "HTTP/1.1", 101),
                       ("CONNECT", "/ws", "HTTP/2.0", 200)])

    def test_combined(self):
        self.exchanges("/c")
        got = []
        for line in self.lines("combined.log", 5):
            m = re.search(r'\] "(\S+) /c(\S+) (\S+)" (\d+) ', line)
            self.assertIsNotNone(m, line)
            got.append((m.group(1), m.group(2), m.group(3), int(m.group(4))))
        self.assertEqual(sorted(got), self.expected)

    def test_json(self):
        self.exchanges("/j")
        entries = [json.loads(line) for line in self.lines("json.log", 5)]
        got = [(e["method"], e["uri"][2:], e["protocol"], e["status"]) for e in entries]
        self.assertEqual(sorted(got), self.expected)


if __name__ == "__main__":
    unittest.main()
