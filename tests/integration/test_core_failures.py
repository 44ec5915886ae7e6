"""Upstream failures map to the error table; retries, timeouts and deadlines."""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from harness import BIN, Conn, SubgateTestCase, free_port, request


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


class ClosingKeptAliveBackend:
    """An upstream that answers the first request of its first connection and closes that
    connection, unanswered, when the second request arrives: a kept-alive connection it timed out
    just as the proxy reused it. Later connections answer each request once its whole body is
    in ("complete") or after 3 s without it ("incomplete")."""

    def __init__(self):
        import socket
        import threading
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import socket
        while not self.stopping:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            index = self.connections
            self.connections += 1
            conn.settimeout(3)
            with conn:
                for number in range(100):  # bounded: requests on one connection
                    data = b""
                    try:
                        while b"\r\n\r\n" not in data:
                            chunk = conn.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                        if b"\r\n\r\n" not in data:
                            break
                        if index == 0 and number == 1:
                            break  # closes under the proxy, unanswered
                        head, body = data.split(b"\r\n\r\n", 1)
                        state = "complete"
                        if b"transfer-encoding: chunked" in head.lower():
                            while b"0\r\n\r\n" not in body:
                                chunk = conn.recv(65536)
                                if not chunk:
                                    break
                                body += chunk
                    except socket.timeout:
                        state = "incomplete"
                    answer = f"connection {index}: {state}".encode()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))
                    if state != "complete":
                        break

    def stop(self):
        self.stopping = True
        self.thread.join(timeout=5)
        self.listener.close()


class KeptAliveConnectionClosedTest(SubgateTestCase):
    def test_request_is_sent_again_on_a_fresh_connection(self):
        backend = ClosingKeptAliveBackend()
        self.addCleanup(backend.stop)
        sg = self.start_subgate(f"""
            workers 1;
            error_log stderr warn;
            upstream up {{ server 127.0.0.1:{backend.port}; keepalive 8; }}
            server {{
                listen 127.0.0.1:@PORT@;
                location / {{ proxy_pass http://up; }}
            }}
        """)
        self.assertEqual(request(sg.port, path="/first").body, b"connection 0: complete")
        # The reused connection closes under this one; a chunked body that ended before it was
        # sent (an empty one) must be sent whole again, its last chunk included.
        c = Conn(sg.port)
        c.send("POST /again HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        r = c.read_response()
        c.close()
        self.assertEqual((r.status, r.body), (200, b"connection 1: complete"))


class ListenerConflictTest(SubgateTestCase):
    """Workers listen with SO_REUSEPORT, which would let a second process share their port and
    take part of its connections: subgate refuses an address another process holds."""

    CONFIG = """
        workers 2;
        error_log stderr warn;
        server {{ listen 127.0.0.1:{port}; location / {{ return 200 "{name}"; }} }}
    """

    def run_second(self, port):
        folder = tempfile.mkdtemp(prefix="subgate-test-")
        self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
        conf = os.path.join(folder, "subgate.conf")
        with open(conf, "w") as f:
            f.write(self.CONFIG.format(port=port, name="second"))
        return subprocess.run([BIN, "-c", conf, "-p", folder], capture_output=True, text=True,
                              timeout=30)

    def test_a_second_subgate_on_the_same_port_is_refused(self):
        first = self.start_subgate(self.CONFIG.format(port="@PORT@", name="first"))
        second = self.run_second(first.port)
        self.assertNotEqual(second.returncode, 0)
        self.assertIn(f"cannot listen on 127.0.0.1:{first.port}", second.stdout + second.stderr)
        self.assertIn("another process listens there", second.stdout + second.stderr)
        # Every connection still reaches the first.
        for _ in range(20):
            self.assertEqual(request(first.port).body, b"first")

    def test_a_port_another_program_shares_is_refused(self):
        # Another program that listens with SO_REUSEPORT itself, as a worker of another subgate.
        with socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            other.bind(("127.0.0.1", 0))
            other.listen()
            second = self.run_second(other.getsockname()[1])
        self.assertNotEqual(second.returncode, 0)
        self.assertIn("another process listens there", second.stdout + second.stderr)
