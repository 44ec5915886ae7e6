"""What keeps an isolate small (docs/performance.md, "Isolates per GiB"): the harness loads no
Node.js compatibility module, reads its input into one buffer of its own (an idle isolate does
not grow with the supervisor's pings), and the isolate process starts with subgate's lean flags
(`--no-code-cache`, `v8_flags`' default) or the operator's. Each test fails if its setting is
dropped.

The harness tests run the harness (core/isolates/harness.js) directly under Deno, as subgate
starts it without the sandbox, driving its input line by line; the launch test starts the real
binary and reads the isolate process's command line from /proc."""

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, ROOT, deno, free_port  # noqa: E402
from ingress import Deployment, ingress_config  # noqa: E402
from test_ingress_isolates import IngressCase  # noqa: E402
from test_isolate_sandbox import isolate_processes  # noqa: E402

MIB = 1024 * 1024


def anonymous_bytes(pid):
    """The anonymous resident memory of `pid` (heaps, stacks, buffers), in bytes. Not its private
    file pages: a page of the deno binary counts as private only while no other process maps it,
    so another isolate's exit (parallel tests) made this process "grow" by 24 MiB of code."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Anonymous:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/{pid}/smaps_rollup has no Anonymous line")


# User code: logs a line in its handler (the report carries the request's id, which the harness
# finds through the request's async context) and answers.
USER_CODE = 'Deno.serve(() => { console.log("served", { a: 1 }); return new Response("ok"); });\n'


class HarnessProcess:
    """The harness under Deno in a folder of its own; with `poison`, an import map maps
    node:async_hooks and node:util to a module that throws: loading either fails the harness."""

    def __init__(self, case, poison=False):
        self.dir = tempfile.mkdtemp(prefix="subgate-harness-")
        case.addCleanup(shutil.rmtree, self.dir, True)
        for sub in ("root", "sock", "deno"):
            os.makedirs(os.path.join(self.dir, sub))
        shutil.copy(os.path.join(ROOT, "core", "isolates", "harness.js"), self.dir)
        with open(os.path.join(self.dir, "warm.ts"), "w") as f:
            f.write("export const warm: number = 1;\n")
        thrower = os.path.join(self.dir, "poison.js")
        with open(thrower, "w") as f:
            f.write('throw new Error("the harness loaded a Node.js compatibility module");\n')
        imports = {"node:async_hooks": "file://" + thrower, "node:util": "file://" + thrower} if poison else {}
        with open(os.path.join(self.dir, "import_map.json"), "w") as f:
            json.dump({"imports": imports}, f)
        with open(os.path.join(self.dir, "root", "main.js"), "w") as f:
            f.write(USER_CODE)
        self.sock = os.path.join(self.dir, "sock", "s.sock")
        # The young generation's bound that subgate starts isolates with (v8_flags' default): with
        # V8's own (16 MiB semi-spaces) the garbage of 3000 pings alone may hold 20 MiB.
        argv = [deno(), "run", "--quiet", "--no-prompt", "--no-config", "--no-lock", "--cached-only",
                "--v8-flags=--max-semi-space-size=4", f"--allow-read={self.dir}", f"--import-map={self.dir}/import_map.json",
                f"--allow-write={self.dir}/sock", "--allow-env", "--allow-net",
                os.path.join(self.dir, "harness.js"), self.sock]
        env = {"DENO_DIR": os.path.join(self.dir, "deno"), "HOME": self.dir, "NO_COLOR": "1",
               "DENO_NO_UPDATE_CHECK": "1", "PATH": "/usr/bin:/bin"}
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=self.dir)
        case.addCleanup(self.stop)
        self.stdout = b""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            stream.close()

    def send(self, message):
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def line(self, timeout=20.0):
        """The next line the harness reports on stdout ("" once it exited)."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.stdout:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the harness reported nothing within %ss" % timeout)
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if ready:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    return ""
                self.stdout += chunk
        line, self.stdout = self.stdout.split(b"\n", 1)
        return line.decode()

    def stderr(self):
        if self.proc.poll() is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")

    def assign(self):
        self.send({"nonce": "N0", "module": "file://" + os.path.join(self.dir, "root", "main.js"),
                   "envs": {}, "net": True, "loop_tag": "tag", "own_hosts": [], "cluster_timeout_ms": 5000,
                   "deployment_id": "memory", "region": "local"})

    def get(self, request_id):
        """GET / over the harness's unix socket: the status line."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(self.sock)
            s.sendall(f"GET / HTTP/1.1\r\nhost: example.com\r\nx-request-id: {request_id}\r\n"
                      "connection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.split(b"\r\n", 1)[0].decode()


class HarnessMemory(unittest.TestCase):
    def test_harness_loads_no_nodejs_module(self):
        harness = HarnessProcess(self, poison=True)
        harness.assign()
        self.assertEqual(harness.line(), "N0 ready", harness.stderr())
        self.assertEqual(harness.get("req-1"), "HTTP/1.1 200 OK")
        # The console call was formatted as Deno's console formats it, and the report names the
        # request it was made in: the async context works without node:async_hooks.
        self.assertEqual(harness.line(), 'N0 log info req-1 "served { a: 1 }"')

    def test_input_is_read_into_one_buffer(self):
        harness = HarnessProcess(self)
        harness.assign()
        self.assertEqual(harness.line(), "N0 ready", harness.stderr())
        self.assertEqual(harness.get("warm"), "HTTP/1.1 200 OK")
        self.assertTrue(harness.line().startswith("N0 log info warm"))
        before = anonymous_bytes(harness.proc.pid)
        # One ping at a time, as the supervisor sends them (each is a read of its own). With
        # 4 MiB semi-spaces, a new 64 KiB buffer per read made 3000 pings grow the process's
        # anonymous memory by 17 MiB; one buffer leaves what V8's young generation takes (5 to
        # 6 MiB).
        for seq in range(3000):
            harness.send({"op": "ping", "seq": seq})
            self.assertEqual(harness.line(), f"N0 pong {seq}")
        growth = anonymous_bytes(harness.proc.pid) - before
        self.assertLess(growth, 11 * MIB, f"grew by {growth / MIB:.1f} MiB over 3000 pings")


def deno_cmdline(case):
    pids = isolate_processes(case.sg.proc.pid)
    case.assertEqual(len(pids), 1, pids)
    with open(f"/proc/{pids[0]}/cmdline", "rb") as f:
        return [arg.decode() for arg in f.read().split(b"\0") if arg]


class IsolateLaunch(IngressCase):
    def boot(self, runtime=""):
        self.origin.deployments["lean"] = Deployment(code="Deno.serve(() => new Response('lean'));")
        self.serve(runtime=runtime)
        r = self.get("lean")
        self.assertEqual(r.status, 200, r.body)
        return deno_cmdline(self)

    def test_isolates_start_with_the_lean_flags(self):
        argv = self.boot("memory_limit 128m;")
        self.assertIn("--no-code-cache", argv)
        self.assertIn("--v8-flags=--max-old-space-size=128,--max-semi-space-size=4", argv)

    def test_v8_flags_replace_the_defaults(self):
        argv = self.boot("v8_flags --max-semi-space-size=8 --stack-size=900;")
        self.assertIn("--v8-flags=--max-old-space-size=256,--max-semi-space-size=8,--stack-size=900", argv)

    def test_v8_flags_with_no_flag_clears_them(self):
        argv = self.boot("v8_flags;")
        self.assertIn("--v8-flags=--max-old-space-size=256", argv)


class V8FlagsConfig(unittest.TestCase):
    def test_malformed_flags_are_refused_at_load(self):
        for flags in ("max-semi-space-size=4", "--a,--b", "--"):
            with self.subTest(flags=flags), tempfile.NamedTemporaryFile("w", suffix=".conf") as f:
                f.write(ingress_config(f"v8_flags {flags};").replace("@PORT@", str(free_port())))
                f.flush()
                out = subprocess.run([BIN, "-t", "-c", f.name], capture_output=True, text=True, timeout=60)
                self.assertNotEqual(out.returncode, 0)
                self.assertIn("is not a V8 flag", out.stdout + out.stderr)


if __name__ == "__main__":
    unittest.main()
