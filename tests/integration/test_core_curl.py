"""The proxy driven by curl, as a user would: keep-alive across URLs, chunked uploads, and
error bodies, plus the client-side body timeout and the upstream send timeout."""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import unittest

from harness import Conn, SubgateTestCase, request, wait_until


@unittest.skipUnless(shutil.which("curl"), "curl is not installed")
class CurlTest(SubgateTestCase):
    def setUp(self):
        self.backend = self.start_backend()
        self.sg = self.start_subgate(f"""
            workers 2;
            error_log stderr warn;
            upstream be {{ server 127.0.0.1:{self.backend.port}; keepalive 4; }}
            server {{
                listen 127.0.0.1:@PORT@;
                client_max_body_size 10m;
                client_body_timeout 300ms;
                location = /healthz {{ return 200 "ok\\n"; }}
                location / {{ proxy_pass http://be; }}
            }}
        """)
        self.base = f"http://127.0.0.1:{self.sg.port}"

    def curl(self, *args):
        p = subprocess.run(["curl", "-sS", "--max-time", "20", *args], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_keep_alive_across_urls(self):
        out = self.curl("-w", "%{num_connects}\\n", f"{self.base}/hello", f"{self.base}/healthz",
                        f"{self.base}/hello")
        self.assertEqual(out.count(b"hello from backend"), 2)
        self.assertIn(b"ok\n", out)
        # curl printed how many new connections each transfer needed: 1, then 0 and 0.
        counts = [line for line in out.split(b"\n") if line in (b"0", b"1")]
        self.assertEqual(counts, [b"1", b"0", b"0"])

    def test_chunked_upload(self):
        d = tempfile.mkdtemp()
        path = os.path.join(d, "data")
        with open(path, "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024 + 17))
        out = self.curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{path}", f"{self.base}/count")
        self.assertEqual(json.loads(out)["bytes"], 3 * 1024 * 1024 + 17)

    def test_error_body_and_header(self):
        out = self.curl("-i", "-H", "x-deno-timeout-ms: nope", f"{self.base}/hello")
        self.assertIn(b"HTTP/1.1 400 Bad Request", out)
        self.assertIn(b'x-deno-error: {"code":"BAD_REQUEST"', out)

    def test_stalled_request_body_times_out(self):
        c = Conn(self.sg.port)
        c.send(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
        r = c.read_response()  # the body stalls for longer than client_body_timeout
        self.assertEqual((r.status, r.error()["code"]), (408, "CLIENT_TIMEOUT"))
        self.assertTrue(c.closed())

    def test_in_flight_request_finishes_on_the_old_config(self):
        result = []
        before = self.backend.requests
        t = threading.Thread(target=lambda: result.append(request(self.sg.port, path="/slow?ms=600")))
        t.start()
        wait_until(lambda: self.backend.requests > before, what="the slow request to arrive")
        # The new config has no route to the backend at all.
        self.sg.write_config(f"""
            server {{ listen 127.0.0.1:{self.sg.port}; location / {{ return 410 "gone\\n"; }} }}
        """)
        self.sg.signal(signal.SIGHUP)
        wait_until(lambda: request(self.sg.port, path="/hello").status == 410, what="the reload")
        t.join(10)
        self.assertEqual(result[0].status, 200)
        self.assertEqual(result[0].body, b"slow\n")


class UpstreamSendTimeoutTest(SubgateTestCase):
    def test_upstream_that_stops_reading_times_out(self):
        import socket
        # A server that accepts and never reads: the upload fills the buffers, then stalls.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        self.addCleanup(listener.close)
        sg = self.start_subgate(f"""
            workers 1;
            error_log stderr warn;
            server {{
                listen 127.0.0.1:@PORT@;
                client_max_body_size 0;
                proxy_send_timeout 300ms;
                location / {{ proxy_pass http://127.0.0.1:{listener.getsockname()[1]}; }}
            }}
        """)
        c = Conn(sg.port, timeout=20)
        size = 64 * 1024 * 1024
        c.send(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        c.sock.settimeout(20)
        sent = 0
        chunk = b"x" * 65536
        try:
            while sent < size:
                c.sock.sendall(chunk)
                sent += len(chunk)
                if sent > 16 * 1024 * 1024:
                    break  # far more than the socket buffers hold: subgate has stopped reading
        except OSError:
            pass
        r = c.read_response()
        self.assertEqual((r.status, r.error()["code"]), (504, "UPSTREAM_TIMED_OUT"))
