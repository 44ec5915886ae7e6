"""Config check (-t), reload (SIGHUP) with and without load, graceful stop, immediate stop."""

import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from harness import BIN, ROOT, Conn, SubgateTestCase, request, wait_until


def run_check(config_text, name="subgate.conf", extra_files=None):
    d = tempfile.mkdtemp(prefix="subgate-check-")
    for rel, text in (extra_files or {}).items():
        os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
        with open(os.path.join(d, rel), "w") as f:
            f.write(text)
    path = os.path.join(d, name)
    with open(path, "w") as f:
        f.write(config_text)
    try:
        p = subprocess.run([BIN, "-t", "-c", path, "-p", d], capture_output=True, text=True,
                           timeout=20)
    finally:
        shutil.rmtree(d, ignore_errors=True)  # callers use the path only as text
    return p.returncode, p.stdout + p.stderr, path


GOOD = "server { listen 127.0.0.1:1; location / { return 200; } }\n"


class ConfigCheckTest(SubgateTestCase):
    def test_good_config(self):
        code, out, path = run_check(GOOD)
        self.assertEqual(code, 0, out)
        self.assertIn(f"configuration {path} is ok", out)

    def test_embedded_default_config_is_valid(self):
        # Its relative paths (conf/deployments) resolve against the repository, as scripts/run.sh runs it.
        p = subprocess.run([BIN, "-t", "-p", ROOT], capture_output=True, text=True, timeout=20)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_include(self):
        code, out, _ = run_check("include conf.d/*.conf;\n",
                                 extra_files={"conf.d/a.conf": GOOD})
        self.assertEqual(code, 0, out)

    def test_bad_configs_name_file_and_line(self):
        cases = {
            "unknown directive": ("server {\n  bogus 1;\n}\n", ":2: unknown directive \"bogus\""),
            "bad size": ("server {\n client_max_body_size 1x;\n location / { return 200; } }\n",
                         ":2: invalid size \"1x\""),
            "bad duration": ("server {\n keepalive_timeout 5y;\n location / { return 200; } }\n",
                             ":2: invalid duration \"5y\""),
            "missing semicolon": ("server {\n location / { return 200 }\n}\n", ":2: unexpected \"}\""),
            "unknown upstream": ("server {\n location / {\n  proxy_pass http://nope;\n }\n}\n",
                                 ":3: no upstream \"nope\""),
            "wrong context": ("server {\n location / { return 200; }\n}\nlisten 80;\n",
                              ":4: \"listen\" directive is not allowed here"),
            "duplicate listen": ("server {\n listen 127.0.0.1:5;\n listen 127.0.0.1:5;\n"
                                 " location / { return 200; } }\n", ":3: duplicate listen"),
            "unterminated string": ("server {\n location / { return 200 \"x; }\n}\n",
                                    ":2: unterminated string"),
            "missing include": ("include nothing-here.conf;\n", ":1: include \"nothing-here.conf\": no such file"),
        }
        for name, (text, expected) in cases.items():
            with self.subTest(name):
                code, out, path = run_check(text)
                self.assertEqual(code, 1, out)
                self.assertIn(path + expected, out)


class SignalTest(SubgateTestCase):
    CONFIG = """
        workers 2;
        error_log stderr info;
        shutdown_timeout 10s;
        upstream be {{ server 127.0.0.1:{backend}; keepalive 8; }}
        server {{
            listen 127.0.0.1:@PORT@;
            location = /version {{ return 200 "{version}"; }}
            location / {{ proxy_pass http://be; }}
        }}
    """

    def setUp(self):
        self.backend = self.start_backend()

    def config(self, version):
        return self.CONFIG.format(backend=self.backend.port, version=version)

    def test_reload_changes_new_requests(self):
        sg = self.start_subgate(self.config("one"))
        self.assertEqual(request(sg.port, path="/version").body, b"one")
        sg.write_config(self.config("two").replace("@PORT@", str(sg.port)))
        sg.signal(signal.SIGHUP)
        wait_until(lambda: request(sg.port, path="/version").body == b"two", what="the reload")

    def test_bad_reload_keeps_the_old_config(self):
        sg = self.start_subgate(self.config("one"))
        sg.write_config("server { this is not valid")
        sg.signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in sg.output(), what="the refusal in the log")
        self.assertEqual(request(sg.port, path="/version").body, b"one")
        self.assertIsNone(sg.proc.poll())

    def test_reload_under_load_loses_no_request(self):
        sg = self.start_subgate(self.config("one"))
        failures = []
        done = threading.Event()
        counts = [0, 0]

        def fresh_connections():
            deadline = time.monotonic() + 20
            while not done.is_set() and time.monotonic() < deadline:
                try:
                    r = request(sg.port, path="/hello")
                    if r.status != 200:
                        failures.append(r.status)
                    counts[0] += 1
                except OSError as e:
                    failures.append(repr(e))

        def keep_alive():
            deadline = time.monotonic() + 20
            c = Conn(sg.port)
            while not done.is_set() and time.monotonic() < deadline:
                try:
                    c.send(b"GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                    r = c.read_response()
                    if r.status != 200:
                        failures.append(r.status)
                    counts[1] += 1
                except (OSError, EOFError) as e:
                    failures.append(repr(e))
                    c = Conn(sg.port)
            c.close()

        threads = [threading.Thread(target=fresh_connections), threading.Thread(target=fresh_connections),
                   threading.Thread(target=keep_alive)]
        for t in threads:
            t.start()
        for version in ("two", "three", "four", "five"):
            wait_until(lambda: sum(counts) > 50, what="traffic")
            sg.write_config(self.config(version).replace("@PORT@", str(sg.port)))
            sg.signal(signal.SIGHUP)
            wait_until(lambda v=version: request(sg.port, path="/version").body == v.encode(),
                       what="the reload")
            counts[0] = counts[1] = 0
        done.set()
        for t in threads:
            t.join(30)
        self.assertEqual(failures, [])

    def test_sigterm_lets_requests_in_flight_finish(self):
        sg = self.start_subgate(self.config("one"))
        result = []
        before = self.backend.requests
        t = threading.Thread(target=lambda: result.append(request(sg.port, path="/slow?ms=700")))
        t.start()
        wait_until(lambda: self.backend.requests > before, what="the slow request to arrive")
        sg.signal(signal.SIGTERM)
        t.join(10)
        self.assertEqual(result[0].status, 200)
        self.assertEqual(sg.proc.wait(timeout=10), 0)
        self.assertFalse(__import__("harness").port_open(sg.port))

    def test_sigquit_exits_at_once(self):
        sg = self.start_subgate(self.config("one"))
        before = self.backend.requests
        t = threading.Thread(target=lambda: self._ignore(lambda: request(sg.port, path="/slow?ms=5000")))
        t.start()
        wait_until(lambda: self.backend.requests > before, what="the slow request to arrive")
        start = time.monotonic()
        sg.signal(signal.SIGQUIT)
        sg.proc.wait(timeout=10)
        self.assertLess(time.monotonic() - start, 2)
        t.join(10)

    @staticmethod
    def _ignore(fn):
        try:
            fn()
        except (OSError, EOFError):
            pass
