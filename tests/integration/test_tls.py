"""TLS listeners (issue: HTTP/2, TLS and WebSockets): `listen ... ssl` with certificates the test
makes, SNI choosing among them, TLS 1.2 and 1.3, ALPN http/1.1, session resumption, a reload
that swaps the certificate, and a bad client that only loses its own connection. Real clients:
curl and openssl s_client."""

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, wait_until  # noqa: E402


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=subgate test CA",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)


def make_cert(d, name, serial, ip=None):
    """A leaf for DNS `name` (and `ip`) signed by the test CA: name.pem / name.key in d."""
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName=DNS:{name}" + (f",IP:{ip}" if ip else "") + "\n")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", cwd=d)
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", str(serial),
            "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=d)


def corrupt_record_after_handshake(port, ca_file, alpn, first=b""):
    """Completes a handshake (ALPN `alpn`), sends `first` through TLS and reads the answer if
    any, then writes a record that cannot be decrypted straight to the socket; returns True when
    the server then closes the connection (EOF or a reset within 10 s)."""
    context = ssl.create_default_context(cafile=ca_file)
    context.set_alpn_protocols([alpn])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
        s = context.wrap_socket(plain, server_hostname="a.test")
        assert s.selected_alpn_protocol() == alpn, s.selected_alpn_protocol()
        if first:
            s.sendall(first)
            s.recv(4096)  # the server has read it and answered: nothing else is due from it
        raw = socket.socket(fileno=os.dup(s.fileno()))  # beneath TLS: the same connection
        with raw:
            raw.settimeout(10)
            raw.sendall(b"\x17\x03\x03\x00\x20" + bytes(32))  # application data, bad tag
            try:
                for _ in range(100):
                    if not raw.recv(4096):  # (the server may send an alert first)
                        return True
            except ConnectionResetError:
                return True
            except socket.timeout:
                return False
        return False


class Tls(SubgateTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="subgate-tls-")
        make_ca(cls.dir)
        make_cert(cls.dir, "a.test", 1)
        make_cert(cls.dir, "b.test", 2)
        make_cert(cls.dir, "a2.test", 3)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def config(self, a_cert="a.test"):
        d = self.dir
        return f"""
            workers 2;
            error_log stderr debug;
            server {{
                listen 127.0.0.1:@PORT@ ssl;
                server_name a.test;
                ssl_certificate {d}/{a_cert}.pem;
                ssl_certificate_key {d}/{a_cert}.key;
                location / {{ return 200 "server a\\n"; }}
            }}
            server {{
                listen 127.0.0.1:@PORT@ ssl;
                server_name b.test;
                ssl_certificate {d}/b.test.pem;
                ssl_certificate_key {d}/b.test.key;
                location / {{ return 200 "server b\\n"; }}
            }}
        """

    def setUp(self):
        self.sg = self.start_subgate(self.config())

    def curl(self, name, *extra):
        p = subprocess.run(["curl", "-sS", "-v", "--cacert", os.path.join(self.dir, "ca.pem"),
                            "--resolve", f"{name}:{self.sg.port}:127.0.0.1", *extra,
                            f"https://{name}:{self.sg.port}/"], capture_output=True, text=True, timeout=20)
        return p

    def subject(self, name, *extra):
        p = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.sg.port}", "-servername", name,
                            "-CAfile", os.path.join(self.dir, "ca.pem"), *extra],
                           input="", capture_output=True, text=True, timeout=20)
        return p.stdout

    def test_sni_picks_the_certificate_and_the_server(self):
        a = self.curl("a.test")
        self.assertEqual(a.returncode, 0, a.stderr)
        self.assertEqual(a.stdout, "server a\n")
        self.assertIn("ALPN: server accepted http/1.1", a.stderr)
        b = self.curl("b.test")
        self.assertEqual(b.returncode, 0, b.stderr)
        self.assertEqual(b.stdout, "server b\n")
        self.assertIn("subject=CN = b.test", self.subject("b.test"))
        # An unknown name gets the default server's certificate, which curl rightly refuses.
        other = self.curl("c.test")
        self.assertNotEqual(other.returncode, 0)
        self.assertIn("subject=CN = a.test", self.subject("c.test"))

    def test_tls_1_2_and_1_3(self):
        p = self.curl("a.test", "--tlsv1.2", "--tls-max", "1.2")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("TLSv1.2", p.stderr)
        p = self.curl("a.test", "--tlsv1.3")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("TLSv1.3", p.stderr)

    def test_session_resumption(self):
        sess = os.path.join(self.dir, f"session-{self.sg.port}")
        first = self.subject("a.test", "-tls1_2", "-sess_out", sess)
        self.assertIn("New,", first)
        second = self.subject("a.test", "-tls1_2", "-sess_in", sess)
        self.assertIn("Reused,", second)

    def test_plaintext_and_garbage_close_only_that_connection(self):
        with socket.create_connection(("127.0.0.1", self.sg.port), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            s.settimeout(5)
            data = b""
            try:
                while True:  # the server closes (or resets): no HTTP answer on a TLS port
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            self.assertNotIn(b"HTTP/1.1 200", data)
        idle = socket.create_connection(("127.0.0.1", self.sg.port), timeout=5)  # never handshakes
        self.addCleanup(idle.close)
        p = self.curl("a.test")
        self.assertEqual((p.returncode, p.stdout), (0, "server a\n"), p.stderr)
        self.assertIn("TLS handshake with 127.0.0.1 failed", self.sg.output())

    def tls_socket(self):
        context = ssl.create_default_context(cafile=os.path.join(self.dir, "ca.pem"))
        raw = socket.create_connection(("127.0.0.1", self.sg.port), timeout=10)
        s = context.wrap_socket(raw, server_hostname="a.test")
        self.addCleanup(s.close)
        return s

    def read_responses(self, s, count):
        """`count` whole responses with bodies "server a\n" (bounded by the socket's timeout)."""
        data = b""
        while data.count(b"server a\n") < count:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data

    def test_pipelined_requests_in_one_record_and_a_head_in_one_byte_records(self):
        s = self.tls_socket()
        # Three requests in one TLS record: each is answered, in order, on the same connection.
        s.sendall(b"GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\n" * 3)
        data = self.read_responses(s, 3)
        self.assertEqual(data.count(b"HTTP/1.1 200"), 3, data)
        # A head sent one byte per record: it is reassembled across many small records.
        for byte in b"GET /2 HTTP/1.1\r\nHost: a.test\r\n\r\n":
            s.sendall(bytes([byte]))
        data = self.read_responses(s, 1)
        self.assertIn(b"HTTP/1.1 200", data)
        # A close_notify from the client ends the connection cleanly.
        raw = s.unwrap()
        raw.settimeout(10)
        self.assertEqual(raw.recv(100), b"")

    def test_a_corrupt_record_closes_only_that_connection(self):
        self.assertTrue(corrupt_record_after_handshake(self.sg.port, os.path.join(self.dir, "ca.pem"),
                                                       "http/1.1"))
        wait_until(lambda: "TLS read from client 127.0.0.1 failed" in self.sg.output(), what="the log")
        p = self.curl("a.test")
        self.assertEqual((p.returncode, p.stdout), (0, "server a\n"), p.stderr)

    def test_tls_reads_and_writes_join_the_io_uring_batch(self):
        # Only TLS clients and no upstreams: every batched operation is a TLS connection's.
        d = self.dir
        for protocol, flags in (("h2", []), ("http/1.1", ["--h1"])):
            sg = self.start_subgate(f"""
                workers 1;
                error_log stderr debug;
                server {{
                    listen 127.0.0.1:@PORT@ ssl http2;
                    ssl_certificate {d}/a.test.pem;
                    ssl_certificate_key {d}/a.test.key;
                    location / {{ return 200 "batched\\n"; }}
                }}
            """)
            p = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "10", *flags,
                                f"https://127.0.0.1:{sg.port}/"], capture_output=True, text=True, timeout=120)
            self.assertIn("2000 succeeded", p.stdout, p.stdout + p.stderr)
            self.assertIn(f"Application protocol: {protocol}", p.stdout)
            sg.stop()
            out = sg.output()
            if "reads and writes are not batched:" in out:  # this kernel or sandbox has none
                self.skipTest(out.split("not batched: ", 1)[1].split("\n", 1)[0])
            carried = re.search(r"io_uring carried (\d+) reads and writes", out)
            self.assertIsNotNone(carried, out[-2000:])
            self.assertGreater(int(carried.group(1)), 0, f"{protocol}: no TLS operation was batched")

    def test_reload_swaps_the_certificate(self):
        self.assertIn("subject=CN = a.test", self.subject("a.test"))
        self.sg.write_config(self.config(a_cert="a2.test").replace("@PORT@", str(self.sg.port)))
        self.sg.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in self.sg.output(), what="reload")
        self.assertIn("subject=CN = a2.test", self.subject("a.test"))

    def test_streams_large_bodies_both_ways_over_keep_alive(self):
        backend = self.start_backend()
        d = self.dir
        sg = self.start_subgate(f"""
            workers 1;
            server {{
                listen 127.0.0.1:@PORT@ ssl;
                ssl_certificate {d}/a.test.pem;
                ssl_certificate_key {d}/a.test.key;
                client_max_body_size 16m;
                location / {{ proxy_pass http://127.0.0.1:{backend.port}; }}
            }}
        """)
        body = os.path.join(d, f"upload-{sg.port}")
        with open(body, "wb") as f:
            f.write(os.urandom(3 * 1024 * 1024))
        base = f"https://a.test:{sg.port}"
        p = subprocess.run(["curl", "-sS", "--cacert", os.path.join(d, "ca.pem"),
                            "--resolve", f"a.test:{sg.port}:127.0.0.1",
                            f"{base}/big?bytes=5000000", "-o", os.devnull, "-w", "%{size_download} %{num_connects}\n",
                            "--next", "--cacert", os.path.join(d, "ca.pem"),
                            "--resolve", f"a.test:{sg.port}:127.0.0.1",
                            "--data-binary", f"@{body}", f"{base}/count", "-w", "\n%{num_connects}\n"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.strip().split("\n")
        self.assertEqual(lines[0], "5000000 1")
        self.assertIn('"bytes": 3145728', lines[1])
        self.assertEqual(lines[2], "0", "the second request reused the TLS connection")

    def test_config_errors(self):
        from test_core_signals import run_check
        d = self.dir
        for config, message in [
            ("server { listen 127.0.0.1:1 ssl; location / { return 200; } }", "needs ssl_certificate"),
            (f"server {{ listen 127.0.0.1:1 ssl; ssl_certificate {d}/a.test.pem; "
             f"ssl_certificate_key {d}/b.test.key; }}", "mismatch"),
            (f"server {{ listen 127.0.0.1:1 ssl; ssl_certificate {d}/a.test.pem; "
             f"ssl_certificate_key {d}/a.test.key; ssl_protocols TLSv1.1; }}", "unsupported protocol"),
            (f"server {{ listen 127.0.0.1:1 ssl; ssl_certificate {d}/a.test.pem; ssl_certificate_key "
             f"{d}/a.test.key; }} server {{ listen 127.0.0.1:1; }}", "used with and without ssl"),
        ]:
            code, output, _ = run_check(config)
            self.assertNotEqual(code, 0, config)
            self.assertIn(message, output)


if __name__ == "__main__":
    unittest.main()
