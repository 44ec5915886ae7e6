"""Bodies stream both ways with back-pressure: chunked in and out (also more chunks at once than
one loop turn takes), first bytes before the upstream finishes, a 1 GiB upload and a 512 MiB
download to a slow reader in bounded memory; and to an upstream on a unix socket, for which
subgate asks for write events only while a write waits for room."""

import hashlib
import json
import os
import shutil
import tempfile
import time

from backend_server import pattern_bytes
from harness import Conn, SubgateTestCase

MIB = 1 << 20


def upload_and_check(case, port, size, timeout):
    """POSTs `size` bytes of the test pattern to the backend's /count through subgate on `port`
    and checks that all of them arrived, in order."""
    c = Conn(port, timeout=timeout)
    c.send(b"POST /count HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
    digest = hashlib.sha256()
    for piece in pattern_bytes(size):
        c.sock.sendall(piece)
        digest.update(piece)
    result = json.loads(c.read_response().body)
    case.assertEqual(result, {"bytes": size, "sha256": digest.hexdigest()})


class StreamingTest(SubgateTestCase):
    def setUp(self):
        self.backend = self.start_backend()
        self.sg = self.start_subgate(f"""
            workers 1;
            error_log stderr warn;
            server {{
                listen 127.0.0.1:@PORT@;
                client_max_body_size 0;
                location / {{ proxy_pass http://127.0.0.1:{self.backend.port}; }}
            }}
        """)

    def test_chunked_request_body_is_rechunked_intact(self):
        c = Conn(self.sg.port)
        pieces = [b"a" * 10, b"b" * 70000, b"c"]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\nX-T: 1\r\n\r\n"
        c.send(b"POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
        result = json.loads(c.read_response().body)
        joined = b"".join(pieces)
        self.assertEqual(result, {"bytes": len(joined), "sha256": hashlib.sha256(joined).hexdigest()})

    def test_more_chunks_than_one_turn_takes_all_sent_at_once(self):
        # 20,000 one-byte chunks arrive in one go, and nothing more comes after them. The body
        # pump takes 1,024 steps per turn (one chunk each), so it needs about 20 turns. No socket
        # event comes after the first one, so the pump must schedule the rest itself.
        count = 20000
        c = Conn(self.sg.port, timeout=10)
        c.send(b"POST /count HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" +
               b"1\r\nx\r\n" * count + b"0\r\n\r\n")
        result = json.loads(c.read_response().body)
        self.assertEqual(result, {"bytes": count, "sha256": hashlib.sha256(b"x" * count).hexdigest()})

    def test_response_streams_before_the_upstream_finishes(self):
        c = Conn(self.sg.port)
        start = time.monotonic()
        c.send(b"GET /stream?chunks=3&interval_ms=1000 HTTP/1.1\r\nHost: t\r\n\r\n")
        c.sock.settimeout(5)
        first = b""
        while b"chunk 0" not in first:
            data = c.sock.recv(4096)
            self.assertTrue(data, "closed early")
            first += data
        self.assertLess(time.monotonic() - start, 0.9, "the first chunk waited for the rest")
        self.assertIn(b"transfer-encoding: chunked", first.lower())
        c.buf = first
        c.buf = c.buf[c.buf.index(b"\r\n\r\n") + 4:]
        rest = b""
        while b"\r\n0\r\n" not in b"\r\n" + c.buf + rest:
            rest += c.sock.recv(4096)
        self.assertIn(b"chunk 2", rest)
        self.assertIn(b"X-Trailer: done", rest)  # trailers pass through

    def test_one_gib_upload_in_bounded_memory(self):
        upload_and_check(self, self.sg.port, 1024 * MIB, timeout=60)
        peak = self.sg.rss_kib("VmHWM")
        self.assertLess(peak, 100 * 1024, f"subgate peaked at {peak} KiB")

    def test_slow_reader_download_in_bounded_memory(self):
        size = 512 * MIB
        c = Conn(self.sg.port, timeout=60)
        c.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 64 * 1024)
        c.send(b"GET /big?bytes=%d HTTP/1.1\r\nHost: t\r\n\r\n" % size)
        received = 0
        digest = hashlib.sha256()
        head = b""
        while b"\r\n\r\n" not in head:
            head += c.sock.recv(4096)
        body = head[head.index(b"\r\n\r\n") + 4:]
        received += len(body)
        digest.update(body)
        pauses = 0
        while received < size:
            data = c.sock.recv(1 << 20)
            self.assertTrue(data, "closed early")
            received += len(data)
            digest.update(data)
            if received > 32 * MIB and pauses < 3 and received // (64 * MIB) > pauses:
                time.sleep(0.5)  # a slow client: subgate must hold back, not buffer
                pauses += 1
        self.assertEqual(received, size)
        expected = hashlib.sha256()
        for piece in pattern_bytes(size):
            expected.update(piece)
        self.assertEqual(digest.hexdigest(), expected.hexdigest())
        peak = self.sg.rss_kib("VmHWM")
        self.assertLess(peak, 100 * 1024, f"subgate peaked at {peak} KiB")


def unix_socket_inodes():
    """The inodes of every unix socket on the machine (/proc/net/unix)."""
    with open("/proc/net/unix") as f:
        next(f)
        return {line.split()[6] for line in f}


def epoll_interest(pid):
    """{fd: the events mask it is registered with} over every epoll instance of process `pid`
    (/proc/PID/fdinfo of each epoll descriptor)."""
    interest = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:[eventpoll]":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("tfd:"):  # "tfd: FD events: MASK data: ..."
                        fields = line.split()
                        interest[int(fields[1])] = int(fields[3], 16)
        except OSError:  # closed meanwhile
            continue
    return interest


EPOLLOUT = 0x4


class UnixUpstreamTest(SubgateTestCase):
    """A unix socket signals room to its writer each time its reader takes bytes: with a
    standing EPOLLOUT, subgate's worker woke once more per request (3 context switches per
    request at one connection instead of 2). Write interest is registered only while a write
    waits for room."""

    def setUp(self):
        folder = tempfile.mkdtemp(prefix="subgate-unix-")
        self.addCleanup(shutil.rmtree, folder, True)
        self.backend = self.start_backend(unix_path=os.path.join(folder, "backend.sock"))
        self.sg = self.start_subgate(f"""
            workers 1;
            error_log stderr warn;
            upstream backend {{ server {self.backend.address}; keepalive 8; }}
            server {{
                listen 127.0.0.1:@PORT@;
                client_max_body_size 0;
                location / {{ proxy_pass http://backend; }}
            }}
        """)

    def test_upload_through_writes_that_wait_for_room(self):
        # 64 MiB through socket buffers of some 200 KiB: subgate's writes find no room again and
        # again, and each time only the write event it asks for then lets it go on.
        upload_and_check(self, self.sg.port, 64 * MIB, timeout=30)

    def test_a_kept_alive_connection_asks_for_no_write_events(self):
        c = Conn(self.sg.port)
        for _ in range(3):
            c.send(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertEqual(c.read_response().status, 200)
        unix = unix_socket_inodes()
        upstream = {}
        for fd, mask in epoll_interest(self.sg.proc.pid).items():
            try:
                target = os.readlink(f"/proc/{self.sg.proc.pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in unix:
                upstream[fd] = mask
        self.assertEqual(len(upstream), 1, f"subgate's unix sockets in its epoll sets: {upstream}")
        for fd, mask in upstream.items():
            self.assertFalse(mask & EPOLLOUT, f"fd {fd} is registered with EPOLLOUT ({mask:#x})")

