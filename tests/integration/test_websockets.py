"""WebSockets over HTTP/1.1 (issue: HTTP/2, TLS and WebSockets): the Upgrade handshake passes
through subgate to isolates and plain upstreams, then bytes flow both ways until a side closes.
The client is Deno's WebSocket (tests/integration/ws_client.js); the server side is real user
code in isolates, or a Deno server behind proxy_pass."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, deno, request, wait_until, free_port  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Echoes messages; "bye" makes the server close; the first message tells the isolate's id.
ECHO = """const id = Math.random().toString(36).slice(2, 10);
Deno.serve((req) => {
    if (req.headers.get("upgrade") !== "websocket") return new Response("plain " + id);
    const instance = req.headers.get("x-deno-isolate-instance-id") ?? new URL(req.url).searchParams.get("deno_isolate_instance_id") ?? "";
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onopen = () => socket.send("hello " + id + " " + instance);
    socket.onmessage = (e) => {
        if (e.data === "bye") socket.close(4000, "server done");
        else socket.send("echo " + e.data);
    };
    return response;
});"""


class WsClient:
    def __init__(self, url, headers=None, ca_file=None):
        cert = ["--cert", ca_file] if ca_file else []
        self.proc = subprocess.Popen([deno(), "run", "--allow-net", *cert, os.path.join(HERE, "ws_client.js"), url,
                                      json.dumps(headers or {})],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.events = []
        self.pending = b""  # read from stdout, not yet a whole line

    def next_event(self, timeout=15.0):
        # Own line buffering on the raw pipe: select() must see every byte not yet consumed.
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            ready = left > 0 and select.select([self.proc.stdout], [], [], left)[0]
            chunk = os.read(self.proc.stdout.fileno(), 65536) if ready else b""
            if not chunk:
                stderr = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
                raise AssertionError(f"no WebSocket event within {timeout}s; seen {self.events}; {stderr}")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        event = json.loads(line)
        self.events.append(event)
        return event

    def expect(self, kind, timeout=15.0):
        event = self.next_event(timeout)
        while event["event"] == "error" and kind != "error":  # an error always comes with a close
            event = self.next_event(timeout)
        assert event["event"] == kind, f"expected {kind}, got {event} (seen {self.events})"
        return event

    def command(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def send(self, text):
        self.command("send " + text)

    def close(self):
        self.command("close")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()


def status(port):
    return json.loads(request(port, path="/status").body)


def active(port):
    return sorted(i["active"] for d in status(port)["deployments"] for i in d["isolates"])


class IsolateWebSockets(SubgateTestCase):
    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["ws"] = Deployment(code=ECHO)

    def serve(self, location="", runtime=""):
        self.sg = self.start_subgate(ingress_config(runtime=runtime, location=location,
                                                    server="location = /status { status; }"))

    def client(self, query="", headers=None):
        h = {"x-deno-subhost": relay_token("ws", self.origin.rpc_root), "x-forwarded-host": "ws.example"}
        h.update(headers or {})
        c = WsClient(f"ws://127.0.0.1:{self.sg.port}/{query}", h)
        self.addCleanup(c.stop)
        return c

    def test_echo_counts_toward_the_limit_until_closed(self):
        self.serve()
        c = self.client()
        c.expect("open")
        self.assertTrue(c.expect("message")["data"].startswith("hello "))
        for text in ("one", "two", "x" * 100000):
            c.send(text)
            self.assertEqual(c.expect("message")["data"], "echo " + text)
        self.assertEqual(active(self.sg.port), [1], "an open WebSocket is an active connection")
        c.close()
        # The isolate's Deno server echoes the client's close code through the tunnel.
        self.assertEqual(c.expect("close")["code"], 1000)
        wait_until(lambda: active(self.sg.port) == [0], what="the connection to be released")

    def test_server_closes(self):
        self.serve()
        c = self.client()
        c.expect("open")
        c.expect("message")
        c.send("bye")
        close = c.expect("close")
        self.assertEqual((close["code"], close["reason"]), (4000, "server done"))
        wait_until(lambda: active(self.sg.port) == [0], what="the connection to be released")

    def test_isolate_killed_mid_socket_closes_the_client(self):
        self.serve()
        c = self.client()
        c.expect("open")
        c.expect("message")
        pid = status(self.sg.port)["deployments"][0]["isolates"][0]["pid"]
        os.kill(pid, signal.SIGKILL)
        c.expect("close", timeout=10)
        # The deployment recovers with a new isolate.
        c2 = self.client()
        c2.expect("open")

    def test_instance_id_by_query_parameter(self):
        self.serve()
        c = self.client(query="?deno_isolate_instance_id=room-7")
        c.expect("open")
        self.assertTrue(c.expect("message")["data"].endswith(" room-7"))
        isolates = [i for d in status(self.sg.port)["deployments"] for i in d["isolates"]]
        self.assertEqual([i["instance_id"] for i in isolates], ["room-7"])

    def test_wss_through_a_tls_listener(self):
        import tempfile
        from test_tls import make_ca, make_cert
        d = tempfile.mkdtemp(prefix="subgate-wss-")
        self.addCleanup(shutil.rmtree, d, True)
        make_ca(d)
        make_cert(d, "ws.test", 1, ip="127.0.0.1")
        config = ingress_config().replace(
            "listen 127.0.0.1:@PORT@;",
            f"listen 127.0.0.1:@PORT@ ssl; ssl_certificate {d}/ws.test.pem; ssl_certificate_key {d}/ws.test.key;")
        self.sg = self.start_subgate(config)
        h = {"x-deno-subhost": relay_token("ws", self.origin.rpc_root), "x-forwarded-host": "ws.example"}
        c = WsClient(f"wss://127.0.0.1:{self.sg.port}/", h, ca_file=os.path.join(d, "ca.pem"))
        self.addCleanup(c.stop)
        c.expect("open")
        c.expect("message")
        c.send("over tls")
        self.assertEqual(c.expect("message")["data"], "echo over tls")
        c.close()
        self.assertEqual(c.expect("close")["code"], 1000)

    def test_plain_requests_still_work_next_to_sockets(self):
        self.serve()
        c = self.client()
        c.expect("open")
        h = {"x-deno-subhost": relay_token("ws", self.origin.rpc_root), "x-forwarded-host": "ws.example"}
        r = request(self.sg.port, headers=h)
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.startswith(b"plain "))


class UpstreamWebSockets(SubgateTestCase):
    """proxy_pass to a Deno WebSocket server, with an idle tunnel timeout."""

    def setUp(self):
        self.backend_port = free_port()
        code = ECHO.replace("Deno.serve(", f'Deno.serve({{ port: {self.backend_port}, hostname: "127.0.0.1" }}, ', 1)
        path = os.path.join(self.make_dir(), "server.js")
        with open(path, "w") as f:
            f.write(code)
        self.server = subprocess.Popen([deno(), "run", "--allow-net", path],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.stop_server)
        wait_until(lambda: self.port_open(self.backend_port), timeout=20, what="the Deno server")
        self.sg = self.start_subgate(f"""
            workers 1;
            error_log stderr info;
            server {{
                listen 127.0.0.1:@PORT@;
                location / {{ proxy_pass http://127.0.0.1:{self.backend_port}; proxy_read_timeout 1s; }}
            }}
        """)

    def make_dir(self):
        import shutil
        import tempfile
        d = tempfile.mkdtemp(prefix="subgate-ws-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    @staticmethod
    def port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    def stop_server(self):
        self.server.kill()
        self.server.wait(10)

    def test_echo_and_idle_timeout(self):
        c = WsClient(f"ws://127.0.0.1:{self.sg.port}/")
        self.addCleanup(c.stop)
        c.expect("open")
        c.expect("message")
        c.send("ping")
        self.assertEqual(c.expect("message")["data"], "echo ping")
        # Nothing flows for proxy_read_timeout: the tunnel is closed.
        started = time.monotonic()
        c.expect("close", timeout=10)
        self.assertLess(time.monotonic() - started, 8)
        self.assertIn("tunnel idle", self.sg.output())

    def test_refused_upgrade_is_an_ordinary_response(self):
        r = request(self.sg.port, headers={"connection": "upgrade", "upgrade": "not-websocket"})
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.startswith(b"plain "))


if __name__ == "__main__":
    unittest.main()
