"""WebSockets over HTTP/2 (RFC 8441 extended CONNECT) on the client side: subgate advertises
SETTINGS_ENABLE_CONNECT_PROTOCOL, carries a `CONNECT :protocol websocket` stream to the upstream or
isolate as an HTTP/1.1 upgrade, answers the 101 with `:status 200`, and tunnels the stream's
DATA both ways. The client is h2_client.py (no Debian client sends extended CONNECT); the servers
are a WebSocket echo backend written here (it records what it was sent) and real Deno isolates."""

import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from h2_client import (CANCEL, H2Client, SETTINGS_ENABLE_CONNECT_PROTOCOL, WS_BINARY, WS_CLOSE,  # noqa: E402
                       WS_TEXT, ws_close_frame, ws_parse, ws_frame)
from harness import SubgateTestCase, free_port, port_open, request, wait_until  # noqa: E402
from ingress import Deployment, Origin, ingress_config, relay_token  # noqa: E402
from test_tls import make_ca, make_cert  # noqa: E402
from test_websockets import ECHO  # noqa: E402

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WsBackend:
    """An HTTP/1.1 WebSocket echo server on a thread per connection.
    any path but /refuse: upgrades (choosing the first offered subprotocol) and echoes "echo " + each message;
         "server-close" makes it send close 4000 and close; after the client's EOF it sends
         "bye after eof" and closes (a half-closed tunnel still carries the server's bytes).
    /refuse: 403 with a body. /ignore: 200 with a body (an upgrade it did not take).
    `requests` holds (method, target, {lowercase name: value});
    `events` what each tunnel saw ("close-frame", "eof")."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.requests = []
        self.events = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.sock.close()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _event(self, what):
        with self.lock:
            self.events.append(what)

    def _serve(self, conn):
        conn.settimeout(30)
        try:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            with self.lock:
                self.requests.append((method, target, headers))
            if target == "/ignore":
                body = b"plain page\n"
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                return
            if target == "/refuse" or headers.get("upgrade", "").lower() != "websocket":
                body = b"no websockets here\n"
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: %d\r\nx-refused: yes\r\n\r\n%s"
                             % (len(body), body))
                return
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest())
            extra = ""
            if "sec-websocket-protocol" in headers:
                extra = "Sec-WebSocket-Protocol: " + headers["sec-websocket-protocol"].split(",")[0].strip() + "\r\n"
            conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Accept: " + accept + b"\r\n" + extra.encode() + b"\r\n")
            self._echo(conn, buf)
        except OSError:
            return
        finally:
            conn.close()

    def _echo(self, conn, buf):
        while True:
            frame = ws_parse(buf)
            if frame is None:
                chunk = conn.recv(65536)
                if not chunk:
                    self._event("eof")
                    conn.sendall(ws_frame("bye after eof", mask=False))
                    return
                buf += chunk
                continue
            opcode, payload, used = frame
            buf = buf[used:]
            if opcode == WS_CLOSE:
                self._event("close-frame")
                conn.sendall(ws_frame(payload, WS_CLOSE, mask=False))
                return
            if payload == b"server-close":
                conn.sendall(ws_close_frame(4000, "server done", mask=False))
                return
            conn.sendall(ws_frame(b"echo " + payload, opcode, mask=False))


class Http2WebSocketsToUpstream(SubgateTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="subgate-h2ws-")
        make_ca(cls.dir)
        make_cert(cls.dir, "ws.test", 1)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def setUp(self):
        self.backend = WsBackend()
        self.addCleanup(self.backend.stop)
        self.tls_port = free_port()
        d = self.dir
        self.sg = self.start_subgate(f"""
            workers 1;
            error_log stderr info;
            server {{
                listen 127.0.0.1:@PORT@ http2;
                listen 127.0.0.1:{self.tls_port} ssl http2;
                ssl_certificate {d}/ws.test.pem;
                ssl_certificate_key {d}/ws.test.key;
                client_max_body_size 1k;
                client_body_timeout 1s;
                location / {{ proxy_pass http://127.0.0.1:{self.backend.port}; }}
                location /idle {{ proxy_pass http://127.0.0.1:{self.backend.port}; proxy_read_timeout 1s; }}
                location = /hello {{ return 200 "hello\\n"; }}
            }}
        """)
        wait_until(lambda: port_open(self.tls_port), what="the TLS listener")

    def client(self, tls=False):
        if tls:
            c = H2Client(self.tls_port, ca_file=os.path.join(self.dir, "ca.pem"), server_name="ws.test")
        else:
            c = H2Client(self.sg.port)
        self.addCleanup(c.close)
        return c

    def open_ws(self, c, path="/ws", headers=(), scheme="http"):
        s = c.websocket(path, headers=headers, scheme=scheme)
        c.wait(lambda: s.headers is not None or s.done, what="the WebSocket answer")
        return s

    def echo(self, c, s, payload, opcode=WS_TEXT):
        c.send_ws(s, payload, opcode)
        op, data = c.ws_next(s)
        self.assertEqual(op, opcode)
        self.assertEqual(data, b"echo " + (payload.encode() if isinstance(payload, str) else payload))

    def test_settings_advertise_extended_connect(self):
        c = self.client()
        self.assertEqual(c.peer_settings.get(SETTINGS_ENABLE_CONNECT_PROTOCOL), 1)

    def test_echo_and_client_close(self):
        c = self.client()
        s = self.open_ws(c, headers=[("sec-websocket-protocol", "chat, superchat"),
                                     ("sec-websocket-extensions", "x-test-ext"), ("origin", "http://ws.example")])
        self.assertEqual(s.status, 200, s.headers)
        names = [k for k, _ in s.headers]
        self.assertEqual(s.header("sec-websocket-protocol"), "chat")
        for dropped in ("sec-websocket-accept", "upgrade", "connection", "content-length"):
            self.assertNotIn(dropped, names)
        # What the upstream got: an HTTP/1.1 upgrade with a key subgate made.
        method, target, headers = self.backend.requests[-1]
        self.assertEqual((method, target), ("GET", "/ws"))
        self.assertEqual(headers["upgrade"], "websocket")
        self.assertEqual(headers["connection"].lower(), "upgrade")
        self.assertEqual(headers["sec-websocket-version"], "13")
        self.assertEqual(len(base64.b64decode(headers["sec-websocket-key"])), 16)
        self.assertEqual(headers["sec-websocket-protocol"], "chat, superchat")
        self.assertEqual(headers["sec-websocket-extensions"], "x-test-ext")
        self.assertEqual(headers["origin"], "http://ws.example")
        self.assertEqual(headers["host"], "test")
        self.echo(c, s, "one")
        # Larger than client_max_body_size (tunnel bytes are no body), than the stream window
        # subgate grants (256 KiB) and than the client's receive window (64 KiB).
        big = os.urandom(700 * 1024)
        self.echo(c, s, big, WS_BINARY)
        c.send_data(s, ws_close_frame(1000, "client done"))
        op, payload = c.ws_next(s)
        self.assertEqual((op, struct.unpack(">H", payload[:2])[0]), (WS_CLOSE, 1000))
        c.wait(lambda: s.ended, what="END_STREAM after the upstream closed")
        self.assertIsNone(s.reset)
        c.end_stream(s)
        self.assertIn("close-frame", self.backend.events)
        # The connection goes on serving.
        self.assertEqual(c.response(c.request("/hello")).data, b"hello\n")

    def test_server_closes(self):
        c = self.client()
        s = self.open_ws(c)
        c.send_ws(s, "server-close")
        op, payload = c.ws_next(s)
        self.assertEqual((op, struct.unpack(">H", payload[:2])[0], payload[2:]), (WS_CLOSE, 4000, b"server done"))
        c.wait(lambda: s.ended, what="END_STREAM")
        self.assertIsNone(s.reset)

    def test_end_stream_half_closes_toward_the_upstream(self):
        c = self.client()
        s = self.open_ws(c)
        self.echo(c, s, "before")
        c.end_stream(s)  # the upstream reads EOF, its own direction stays open
        op, data = c.ws_next(s)
        self.assertEqual((op, data), (WS_TEXT, b"bye after eof"))
        c.wait(lambda: s.ended, what="END_STREAM")
        self.assertIsNone(s.reset)
        self.assertIn("eof", self.backend.events)

    def test_reset_closes_the_upstream(self):
        c = self.client()
        s = self.open_ws(c)
        self.echo(c, s, "hi")
        c.reset(s, CANCEL)
        wait_until(lambda: "eof" in self.backend.events, what="the upstream connection to close")
        self.assertEqual(c.response(c.request("/hello")).data, b"hello\n")

    def test_refused_upgrade_is_an_ordinary_response(self):
        c = self.client()
        s = self.open_ws(c, path="/refuse")
        c.response(s)
        self.assertEqual(s.status, 403)
        self.assertEqual(s.header("x-refused"), "yes")
        self.assertEqual(bytes(s.data), b"no websockets here\n")
        self.assertIsNone(s.reset)

    def test_a_2xx_without_the_upgrade_is_no_tunnel(self):
        # An RFC 8441 client takes any 2xx as "tunnel open": only a 101 upstream may give one.
        c = self.client()
        s = self.open_ws(c, path="/ignore")
        c.response(s)
        self.assertEqual(s.status, 502)
        self.assertEqual(json.loads(s.header("x-deno-error"))["code"], "UPSTREAM_ERROR")

    def test_tls_h2(self):
        c = self.client(tls=True)
        self.assertEqual(c.peer_settings.get(SETTINGS_ENABLE_CONNECT_PROTOCOL), 1)
        s = self.open_ws(c, scheme="https")
        self.assertEqual(s.status, 200)
        self.echo(c, s, "over tls")
        self.echo(c, s, os.urandom(300 * 1024), WS_BINARY)
        c.send_data(s, ws_close_frame())
        self.assertEqual(c.ws_next(s)[0], WS_CLOSE)
        c.wait(lambda: s.ended, what="END_STREAM")

    def test_two_tunnels_and_a_request_multiplexed(self):
        c = self.client()
        a = c.websocket("/ws")
        b = c.websocket("/ws")
        plain = c.request("/hello")
        c.wait(lambda: a.headers and b.headers and plain.ended, what="three answers")
        self.assertEqual((a.status, b.status, plain.status), (200, 200, 200))
        for i in range(5):  # interleaved
            c.send_ws(a, f"a{i}")
            c.send_ws(b, f"b{i}")
        for i in range(5):
            self.assertEqual(c.ws_next(a)[1], f"echo a{i}".encode())
            self.assertEqual(c.ws_next(b)[1], f"echo b{i}".encode())
        self.assertEqual(len(self.backend.requests), 2)
        c.reset(a)
        self.echo(c, b, "b still open")
        c.send_data(b, ws_close_frame())
        self.assertEqual(c.ws_next(b)[0], WS_CLOSE)

    def test_idle_tunnel_times_out(self):
        c = self.client()
        s = self.open_ws(c, path="/idle")
        self.assertEqual(s.status, 200)
        self.echo(c, s, "x")
        started = time.monotonic()
        c.wait(lambda: s.done, timeout=10, what="the idle tunnel to end")
        self.assertLess(time.monotonic() - started, 8)
        self.assertIsNotNone(s.reset)
        wait_until(lambda: "tunnel idle" in self.sg.output(), what="the log line")
        # client_body_timeout (1s) is not for tunnels: it would have said "stalled".
        self.assertNotIn("stalled", self.sg.output())

    def test_reload_lets_open_tunnels_finish(self):
        c = self.client()
        s = self.open_ws(c)
        self.echo(c, s, "before")
        self.sg.signal(signal.SIGHUP)
        c.wait(lambda: len(c.goaways) >= 2, what="the shutdown notice and the final GOAWAY")
        self.assertEqual(c.goaways[:2], [(2**31 - 1, 0), (s.id, 0)])
        self.echo(c, s, "after the reload")
        c.send_data(s, ws_close_frame())
        self.assertEqual(c.ws_next(s)[0], WS_CLOSE)
        c.wait(lambda: s.ended, what="END_STREAM")
        c.end_stream(s)
        c.wait_closed()  # its last stream is done: the connection ends

    def test_bad_extended_connects(self):
        c = self.client()
        # Plain CONNECT (no :protocol).
        s = c.open_stream([(":method", "CONNECT"), (":authority", "example.com:443")])
        c.response(s)
        self.assertEqual(s.status, 400)
        self.assertEqual(json.loads(s.header("x-deno-error"))["code"], "BAD_REQUEST")
        # Another protocol.
        s = c.open_stream([(":method", "CONNECT"), (":protocol", "connect-udp"), (":scheme", "http"),
                           (":path", "/ws"), (":authority", "test")])
        c.response(s)
        self.assertEqual(s.status, 400)
        error = json.loads(s.header("x-deno-error"))
        self.assertEqual(error["code"], "BAD_REQUEST")
        self.assertIn(":protocol", error["message"])
        self.assertEqual(self.backend.requests, [])
        # The connection is fine.
        self.assertEqual(c.response(c.request("/hello")).data, b"hello\n")


def status(port):
    return json.loads(request(port, path="/status").body)


def active(port):
    return sorted(i["active"] for d in status(port)["deployments"] for i in d["isolates"])


class Http2WebSocketsToIsolates(SubgateTestCase):
    """The same tunnels to Deno isolates (Deno.upgradeWebSocket in user code)."""

    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["ws"] = Deployment(code=ECHO)
        self.dir = tempfile.mkdtemp(prefix="subgate-h2ws-iso-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        make_ca(self.dir)
        make_cert(self.dir, "ws.test", 1)
        self.tls_port = free_port()
        config = ingress_config(server="location = /status { status; }").replace(
            "listen 127.0.0.1:@PORT@;",
            f"listen 127.0.0.1:@PORT@ http2; listen 127.0.0.1:{self.tls_port} ssl http2; "
            f"ssl_certificate {self.dir}/ws.test.pem; ssl_certificate_key {self.dir}/ws.test.key;")
        self.sg = self.start_subgate(config)
        self.auth = [("x-deno-subhost", relay_token("ws", self.origin.rpc_root)), ("x-forwarded-host", "ws.example")]

    def client(self, tls=False):
        if tls:
            wait_until(lambda: port_open(self.tls_port), what="the TLS listener")
            c = H2Client(self.tls_port, ca_file=os.path.join(self.dir, "ca.pem"), server_name="ws.test")
        else:
            c = H2Client(self.sg.port)
        self.addCleanup(c.close)
        return c

    def open_ws(self, c, path="/", scheme="http"):
        s = c.websocket(path, headers=self.auth, scheme=scheme)
        c.wait(lambda: s.headers is not None or s.done, timeout=30, what="the WebSocket answer")
        self.assertEqual(s.status, 200, (s.headers, bytes(s.data)))
        op, hello = c.ws_next(s, timeout=15)
        self.assertTrue(hello.startswith(b"hello "), hello)
        return s, hello

    def test_echo_counts_toward_the_limit_until_closed(self):
        c = self.client()
        s, _ = self.open_ws(c)
        for text in ("one", "x" * 100000):
            c.send_ws(s, text)
            self.assertEqual(c.ws_next(s)[1], b"echo " + text.encode())
        self.assertEqual(active(self.sg.port), [1], "an open WebSocket is an active connection")
        c.send_data(s, ws_close_frame(1000, "client done"))
        self.assertEqual(c.ws_next(s)[0], WS_CLOSE)
        c.wait(lambda: s.done, what="the stream to end")
        if s.reset is None:
            c.end_stream(s)
        wait_until(lambda: active(self.sg.port) == [0], what="the connection to be released")

    def test_server_closes_and_instance_id_by_query(self):
        c = self.client()
        s, hello = self.open_ws(c, path="/?deno_isolate_instance_id=room-9")
        self.assertTrue(hello.endswith(b" room-9"), hello)
        c.send_ws(s, "bye")
        op, payload = c.ws_next(s)
        self.assertEqual((op, struct.unpack(">H", payload[:2])[0]), (WS_CLOSE, 4000))
        c.send_data(s, ws_close_frame(4000))  # the closing handshake: Deno then closes the socket
        c.wait(lambda: s.ended, what="the stream to end")
        self.assertIsNone(s.reset)

    def test_reset_releases_the_isolate(self):
        c = self.client()
        s, _ = self.open_ws(c)
        self.assertEqual(active(self.sg.port), [1])
        c.reset(s)
        wait_until(lambda: active(self.sg.port) == [0], what="the connection to be released")

    def test_tls_h2_two_sockets_and_a_request_on_one_connection(self):
        c = self.client(tls=True)
        a, hello_a = self.open_ws(c, scheme="https")
        b, hello_b = self.open_ws(c, scheme="https")
        plain = c.response(c.request("/", authority="ws.test", scheme="https", headers=self.auth))
        self.assertEqual(plain.status, 200)
        self.assertTrue(bytes(plain.data).startswith(b"plain "))
        c.send_ws(a, "to a")
        c.send_ws(b, "to b")
        self.assertEqual(c.ws_next(b)[1], b"echo to b")
        self.assertEqual(c.ws_next(a)[1], b"echo to a")
        self.assertEqual(active(self.sg.port), [2])

    def test_isolate_killed_mid_socket_ends_the_stream(self):
        c = self.client()
        s, _ = self.open_ws(c)
        pid = status(self.sg.port)["deployments"][0]["isolates"][0]["pid"]
        os.kill(pid, signal.SIGKILL)
        c.wait(lambda: s.done, timeout=10, what="the stream to end")


if __name__ == "__main__":
    unittest.main()
