"""A real HTTP/1.1 backend for the integration tests, run in-process on a thread per connection.

Endpoints (query parameters in brackets):
  /hello                 small fixed body
  /headers               the request headers it received, as a JSON list of [name, value]
  /echo                  the request body back (content-length)
  /count                 reads the body (content-length or chunked), answers {"bytes", "sha256"}
  /trailers              reads the body, answers {"bytes", "framing" ("chunked", "content-length"
                         or "none"), "trailers": the trailer fields of a chunked body, [name, value]};
                         each answer is kept in `trailer_bodies` too
  /slow[?ms=N]           waits N ms before the head
  /stream[?chunks=N&interval_ms=M]   a chunked body, one chunk per interval
  /big[?bytes=N]         N bytes of a repeating pattern, content-length, written in pieces
  /nolength[?bytes=N]    a body without length, ended by closing the connection
  /close                 closes the connection without answering
  /garbage               answers with an invalid status line
  /status/N              status N, empty body
  /conn                  the id of the TCP connection this request came on
"""

import hashlib
import itertools
import json
import socket
import threading
import time
import urllib.parse

PATTERN = bytes(range(256)) * 256  # 64 KiB


def pattern_bytes(n):
    """The first n bytes of the repeating test pattern, as an iterator of pieces."""
    while n > 0:
        piece = PATTERN[: min(n, len(PATTERN))]
        n -= len(piece)
        yield piece


class Backend:
    def __init__(self, host="127.0.0.1", unix_path=None):
        """Listens on `host` (a loopback address) and a free port, or on the unix socket
        `unix_path`; `address` is what an upstream block's `server` takes."""
        self.host = host
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix_path)
            self.port = None
            self.address = "unix:" + unix_path
        else:
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, 0))
            self.port = self.sock.getsockname()[1]
            self.address = f"{host}:{self.port}"
        self.sock.listen(128)
        self.ids = itertools.count(1)
        self.connections = 0
        self.requests = 0
        self.trailer_bodies = []  # what /trailers answered, in order: the bodies read to their end
        self.lock = threading.Lock()
        self.stopping = False
        self.threads = []
        self.accept_thread = threading.Thread(target=self._accept, daemon=True)
        self.accept_thread.start()

    def stop(self):
        self.stopping = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            t = threading.Thread(target=self._serve, args=(conn, next(self.ids)), daemon=True)
            t.start()

    def _serve(self, conn, conn_id):
        conn.settimeout(30)
        reader = conn.makefile("rb")
        try:
            while not self.stopping:
                request_line = reader.readline()
                if not request_line:
                    return
                method, target, _ = request_line.decode().split(" ", 2)
                headers = []
                while True:
                    line = reader.readline()
                    if line in (b"\r\n", b""):
                        break
                    name, _, value = line.decode().partition(":")
                    headers.append([name.strip(), value.strip()])
                with self.lock:
                    self.requests += 1
                if not self._handle(conn, reader, method, target, headers, conn_id):
                    return
        except (OSError, ValueError):
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass

    @staticmethod
    def _read_body(reader, headers, trailers=None):
        """Yields the body's pieces; a chunked body's trailer fields go to `trailers` (a list)."""
        lower = {k.lower(): v for k, v in headers}
        if "chunked" in lower.get("transfer-encoding", "").lower():
            while True:
                size = int(reader.readline().split(b";")[0], 16)
                if size == 0:
                    while (line := reader.readline()) not in (b"\r\n", b""):
                        if trailers is not None:
                            name, _, value = line.decode().partition(":")
                            trailers.append([name.strip(), value.strip()])
                    return
                remaining = size
                while remaining:
                    piece = reader.read(min(remaining, 1 << 16))
                    if not piece:
                        raise OSError("eof in body")
                    remaining -= len(piece)
                    yield piece
                reader.readline()
        else:
            remaining = int(lower.get("content-length", "0"))
            while remaining:
                piece = reader.read(min(remaining, 1 << 16))
                if not piece:
                    raise OSError("eof in body")
                remaining -= len(piece)
                yield piece

    def _handle(self, conn, reader, method, target, headers, conn_id):
        url = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        if path.startswith("/api/"):  # tests mount the backend under /api/ too
            path = path[4:]
        keep = not any(k.lower() == "connection" and "close" in v.lower() for k, v in headers)

        def respond(status, body=b"", extra=()):
            head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"] + list(extra)
            if not keep:
                head.append("Connection: close")
            conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + (b"" if method == "HEAD" else body))
            return keep

        if path == "/close":
            return False
        if path == "/garbage":
            conn.sendall(b"HTTP/9 banana\r\n\r\n")
            return False
        if path in ("/count", "/echo"):
            digest = hashlib.sha256()
            total = 0
            data = bytearray() if path == "/echo" else None
            for piece in self._read_body(reader, headers):
                digest.update(piece)
                total += len(piece)
                if data is not None:
                    data += piece
            if path == "/echo":
                return respond(200, bytes(data))
            return respond(200, json.dumps({"bytes": total, "sha256": digest.hexdigest()}).encode())
        if path == "/trailers":
            lower = {k.lower(): v for k, v in headers}
            framing = ("chunked" if "transfer-encoding" in lower else
                       "content-length" if "content-length" in lower else "none")
            trailers = []
            result = {"bytes": sum(len(piece) for piece in self._read_body(reader, headers, trailers)),
                      "framing": framing, "trailers": trailers}
            with self.lock:
                self.trailer_bodies.append(result)
            return respond(200, json.dumps(result).encode())
        for _ in self._read_body(reader, headers):  # other endpoints ignore a body
            pass
        if path == "/hello":
            return respond(200, b"hello from backend\n", ["Content-Type: text/plain", "X-Backend: yes"])
        if path == "/headers":
            return respond(200, json.dumps(headers).encode(),
                           ["Connection: keep-alive, X-Hop", "X-Hop: 1", "Keep-Alive: timeout=5",
                            "X-End: 1"])
        if path == "/conn":
            return respond(200, str(conn_id).encode())
        if path.startswith("/status/"):
            return respond(int(path.split("/")[2]))
        if path == "/slow":
            time.sleep(int(query.get("ms", "1000")) / 1000)
            return respond(200, b"slow\n")
        if path == "/stream":
            chunks = int(query.get("chunks", "3"))
            interval = int(query.get("interval_ms", "100")) / 1000
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            for i in range(chunks):
                if i:
                    time.sleep(interval)
                data = f"chunk {i}\n".encode()
                conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            conn.sendall(b"0\r\nX-Trailer: done\r\n\r\n")
            return keep
        if path == "/big":
            n = int(query.get("bytes", str(1 << 20)))
            conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode())
            for piece in pattern_bytes(n):
                conn.sendall(piece)
            return keep
        if path == "/nolength":
            n = int(query.get("bytes", "1000"))
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            for piece in pattern_bytes(n):
                conn.sendall(piece)
            return False
        return respond(404, b"no such endpoint\n")
