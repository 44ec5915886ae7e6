"""Shared helpers for the integration tests: free ports, a subgate process with a given config,
raw-socket HTTP/1.1 exchanges, and the test backend. Standard library only.

Every wait here is a bounded poll; every process started is stopped in cleanup."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import unittest
import warnings

# Tests close what matters; the interpreter's reports of sockets it collects are noise here.
warnings.simplefilter("ignore", ResourceWarning)

ROOT = os.environ.get("SUBGATE_SOURCE_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("SUBGATE_BIN") or os.path.join(ROOT, "build", "subgate")


def deno():
    """The Deno runtime the isolates use: SUBGATE_DENO, else the pinned one (scripts/deno_path.sh)."""
    path = os.environ.get("SUBGATE_DENO")
    if path:
        return path
    return subprocess.run([os.path.join(ROOT, "scripts", "deno_path.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class Subgate:
    """A subgate process serving `config` (text); `{port}`-style fields are filled by the caller."""

    def __init__(self, config, port, workers_dir=None):
        self.dir = workers_dir or tempfile.mkdtemp(prefix="subgate-test-")
        self.port = port
        self.conf_path = os.path.join(self.dir, "subgate.conf")
        self.write_config(config)
        self.log_path = os.path.join(self.dir, "subgate.log")
        self.removed = None  # the log's text once stop() removed the folder
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([BIN, "-c", self.conf_path, "-p", self.dir],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(lambda: port_open(port) or self.proc.poll() is not None, what="subgate to listen")
        if self.proc.poll() is not None:
            raise AssertionError("subgate exited at start:\n" + self.output())

    def write_config(self, config):
        with open(self.conf_path, "w") as f:
            f.write(textwrap.dedent(config))

    def output(self):
        if self.removed is not None:
            return self.removed
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.log.close()
        self.removed = self.output()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rss_kib(self, field="VmHWM"):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0


class Response:
    def __init__(self, status, headers, body, raw_head):
        self.status = status
        self.headers = headers  # list of (lowercase name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    def error(self):
        value = self.header("x-deno-error")
        return json.loads(value) if value else None


class Conn:
    """A raw client connection that reads HTTP/1.1 responses with a deadline."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, head_request=False):
        while True:
            status_line = self._line()
            headers = []
            raw = [status_line]
            while True:
                line = self._line()
                if not line:
                    break
                raw.append(line)
                name, _, value = line.partition(b":")
                headers.append((name.decode().strip().lower(), value.decode().strip()))
            status = int(status_line.split()[1])
            if status >= 200 or status == 101:
                break
        resp = Response(status, headers, b"", b"\r\n".join(raw))
        if head_request or status in (204, 304):
            return resp
        te = resp.header("transfer-encoding")
        cl = resp.header("content-length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exact(size)
                self._exact(2)
            resp.body = body
        elif cl is not None:
            resp.body = self._exact(int(cl))
        else:
            try:
                while True:
                    self._fill()
            except EOFError:
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def closed(self, timeout=3.0):
        """True if the server closes the connection (EOF or reset) within `timeout`."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def request(port, method="GET", path="/", headers=None, body=None, host="test"):
    """One request on a fresh connection; returns the Response."""
    c = Conn(port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        data = body or b""
        if body is not None:
            lines.append(f"Content-Length: {len(data)}")
        lines.append("Connection: close")
        c.send(("\r\n".join(lines) + "\r\n\r\n").encode() + data)
        return c.read_response(head_request=method == "HEAD")
    finally:
        c.close()


class SubgateTestCase(unittest.TestCase):
    """Starts subgate (and optionally the backend) per test; prints subgate's log on failure."""

    def start_backend(self, host="127.0.0.1", unix_path=None):
        from backend_server import Backend
        backend = Backend(host, unix_path)
        self.addCleanup(backend.stop)
        return backend

    def start_subgate(self, config, port=None):
        port = port or free_port()
        sg = Subgate(config.replace("@PORT@", str(port)), port)
        self.addCleanup(sg.stop)
        self._subgates = getattr(self, "_subgates", []) + [sg]
        return sg

    def run(self, result=None):
        result = super().run(result)
        if result is not None and (result.failures or result.errors):
            for sg in getattr(self, "_subgates", []):
                mine = [t for t, _ in result.failures + result.errors if t is self]
                if mine:
                    print("\n--- subgate log ---\n" + sg.output()[-4000:])
        return result
