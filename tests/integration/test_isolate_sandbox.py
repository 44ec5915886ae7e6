"""The tenant sandbox (docs/security.md), tried with probe deployments on real Deno isolates: no
deployment reads another's storage, isolates reach no host or private address (by address or by
a name that resolves to one) unless the operator opens it, listen nowhere, and run in their own
namespaces as their own users with nothing of the host's filesystem but Deno. Every test fails if
its wall is removed. Only loopback addresses are used."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(__file__))
from harness import request, wait_until  # noqa: E402
from ingress import Deployment  # noqa: E402
from test_ingress_isolates import IngressCase  # noqa: E402


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"host service"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_service(case, address):
    """A plain HTTP service on `address` (loopback), standing for a database or an admin page."""
    server = ThreadingHTTPServer((address, 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    case.addCleanup(server.server_close)
    case.addCleanup(server.shutdown)
    return server.server_address[1]


# Tries one way out per query parameter and answers what happened, as JSON.
EGRESS_PROBE = """
async function attempt(kind, target) {
  try {
    if (kind === "fetch") { const r = await fetch(target); await r.text(); return "reached " + r.status; }
    const [hostname, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
    if (kind === "connect") { const c = await Deno.connect({ hostname, port }); c.close(); return "reached"; }
    if (kind === "node") {
      const net = await import("node:net");
      return await new Promise((resolve, reject) => {
        const s = net.connect(port, hostname); s.on("error", reject); s.on("connect", () => { s.destroy(); resolve("reached"); });
      });
    }
    if (kind === "ws") {
      return await new Promise((resolve) => {
        const ws = new WebSocket(target);
        ws.onopen = () => { ws.close(); resolve("reached"); };
        ws.onerror = (e) => resolve(/Requires net access/.test(e.message) ? "NotCapable" : "error " + e.message);
      });
    }
    if (kind === "listen") { const l = Deno.listen({ hostname, port }); l.close(); return "listening"; }
    if (kind === "listen-unix") { const l = Deno.listen({ transport: "unix", path: target }); l.close(); return "listening"; }
    if (kind === "listen-udp") {
      const dgram = await import("node:dgram");
      return await new Promise((resolve, reject) => {
        const uncaught = (e) => { e.preventDefault(); removeEventListener("error", uncaught); reject(e.error); };
        addEventListener("error", uncaught);
        const s = dgram.createSocket("udp4"); s.on("error", reject); s.bind(port, hostname, () => { s.close(); resolve("listening"); });
      });
    }
    if (kind === "listen-node") {
      // Deno's node:net throws a refused listen as an uncaught error, not an "error" event.
      const net = await import("node:net");
      return await new Promise((resolve, reject) => {
        const uncaught = (e) => { e.preventDefault(); removeEventListener("error", uncaught); reject(e.error); };
        addEventListener("error", uncaught);
        const s = net.createServer(); s.on("error", reject); s.listen(port, hostname, () => { s.close(); resolve("listening"); });
      });
    }
  } catch (e) { return e.name; }
  return "unknown kind " + kind;
}
Deno.serve(async (req) => {
  const out = {};
  for (const [kind, target] of new URL(req.url).searchParams) out[kind + " " + target] = await attempt(kind, target);
  return Response.json(out);
});
"""


class Storage(IngressCase):
    CODE = """Deno.serve(async (req) => {
        const url = new URL(req.url);
        const cache = await caches.open("shared-name");
        if (url.pathname === "/write") {
            localStorage.setItem("secret", "of " + url.searchParams.get("who"));
            await cache.put("https://cache.example/key", new Response("cached by " + url.searchParams.get("who")));
            return new Response("written");
        }
        const hit = await cache.match("https://cache.example/key");
        return Response.json({ local: localStorage.getItem("secret"), cache: hit ? await hit.text() : null });
    });"""

    def test_a_deployment_never_reads_another_ones_storage(self):
        self.origin.deployments["tenant-a"] = Deployment(code=self.CODE)
        self.origin.deployments["tenant-b"] = Deployment(code=self.CODE)
        self.serve()
        self.assertEqual(self.get("tenant-a", path="/write?who=a").body, b"written")
        own = json.loads(self.get("tenant-a", path="/read").body)
        self.assertEqual(own, {"local": "of a", "cache": "cached by a"}, "the writer reads its own")
        other = json.loads(self.get("tenant-b", path="/read").body)
        self.assertEqual(other, {"local": None, "cache": None})


class Egress(IngressCase):
    def probe(self, deployment, attempts):
        query = "&".join(f"{kind}={target}" for kind, target in attempts)
        r = self.get(deployment, path="/?" + query)
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)

    def test_host_and_private_addresses_are_refused_by_address_and_by_name(self):
        service = start_service(self, "127.0.0.2")
        self.origin.deployments["probe"] = Deployment(code=EGRESS_PROBE)
        self.serve()
        origin = self.origin.port
        attempts = [
            ("fetch", f"http://127.0.0.2:{service}/"),          # a service on the host
            ("fetch", f"http://localhost:{self.sg.port}/"),     # subgate itself, by name
            ("fetch", f"http://127.0.0.1:{origin}/v1/boot"),    # the origin
            ("fetch", f"http://[::1]:{self.sg.port}/"),
            ("fetch", f"http://[::ffff:127.0.0.2]:{service}/"),
            ("fetch", f"http://2130706434:{service}/"),          # 127.0.0.2 in one number
            ("connect", f"127.0.0.2:{service}"),
            ("connect", f"localhost:{self.sg.port}"),
            ("node", f"127.0.0.2:{service}"),
            ("ws", f"ws://localhost:{self.sg.port}/"),
        ]
        before = self.pool()["egress_denied"]
        result = self.probe("probe", attempts)
        for kind, target in attempts:
            self.assertEqual(result[f"{kind} {target}"], "NotCapable", (kind, target, result))
        # Every refusal counts, node:net's too (through the harness's stand-in for node:net).
        counted = len(attempts)
        wait_until(lambda: self.pool()["egress_denied"] >= before + counted, what="the refusals counted")
        self.assertIn("refused by the egress policy", self.sg.output())

    def test_operator_opens_and_closes_exceptions(self):
        open_port = start_service(self, "127.0.0.2")
        closed_port = start_service(self, "127.0.0.3")
        self.origin.deployments["probe"] = Deployment(code=EGRESS_PROBE)
        self.serve(runtime="egress_allow 127.0.0.0/8; egress_deny 127.0.0.3;")
        result = self.probe("probe", [("fetch", f"http://127.0.0.2:{open_port}/"),
                                      ("connect", f"127.0.0.2:{open_port}"),
                                      ("fetch", f"http://127.0.0.3:{closed_port}/")])
        self.assertEqual(result[f"fetch http://127.0.0.2:{open_port}/"], "reached 200")
        self.assertEqual(result[f"connect 127.0.0.2:{open_port}"], "reached")
        self.assertEqual(result[f"fetch http://127.0.0.3:{closed_port}/"], "NotCapable")

    def test_bad_egress_entries_are_refused_at_load(self):
        for entry, words in [("127.0.0.1:99999", "invalid port"), ("[fc00::1]", "IPv6"),
                             ("10.0.0.1/8", "not an IPv4 address or CIDR"), ("nonsense", "not an IPv4")]:
            result = run_subgate("runtime deno { egress_allow %s; } "
                                 "server { listen 127.0.0.1:@PORT@; location / { isolates; } }" % entry,
                                 check_only=True)
            self.assertNotEqual(result.returncode, 0, entry)
            self.assertIn(words, result.stderr, entry)
        # Without the sandbox nothing could hold a port: the whole address would open.
        result = run_subgate("runtime deno { sandbox off; egress_allow 127.0.0.2:5432; } "
                             "server { listen 127.0.0.1:@PORT@; location / { isolates; } }", check_only=True)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("needs the sandbox", result.stderr)

    def test_the_kernel_holds_the_port_of_an_exception(self):
        # Deno's list can only open 127.0.0.2 as a whole; the kernel's check of each connect()
        # keeps every other port of it closed, whatever the code calls.
        open_port = start_service(self, "127.0.0.2")
        closed_port = start_service(self, "127.0.0.2")
        self.origin.deployments["probe"] = Deployment(code=EGRESS_PROBE)
        self.serve(runtime=f"egress_allow 127.0.0.2:{open_port};")
        before = self.pool()["egress_denied"]
        result = self.probe("probe", [("fetch", f"http://127.0.0.2:{open_port}/"),
                                      ("connect", f"127.0.0.2:{open_port}"),
                                      ("connect", f"127.0.0.2:{closed_port}"),
                                      ("node", f"127.0.0.2:{closed_port}"),
                                      ("connect", f"127.0.0.3:{closed_port}")])
        self.assertEqual(result[f"fetch http://127.0.0.2:{open_port}/"], "reached 200")
        self.assertEqual(result[f"connect 127.0.0.2:{open_port}"], "reached")
        self.assertEqual(result[f"connect 127.0.0.2:{closed_port}"], "PermissionDenied", result)
        self.assertIn(result[f"node 127.0.0.2:{closed_port}"], ("PermissionDenied", "Error"), result)
        self.assertEqual(result[f"connect 127.0.0.3:{closed_port}"], "NotCapable", "Deno's wall first")
        wait_until(lambda: self.pool()["egress_denied"] >= before + 3, what="the refusals counted")
        self.assertIn(f"egress to kernel: 127.0.0.2:{closed_port} refused", self.sg.output())


class Listening(IngressCase):
    def test_tenant_code_listens_nowhere(self):
        self.origin.deployments["probe"] = Deployment(code=EGRESS_PROBE)
        self.serve()
        attempts = [("listen", "0.0.0.0:0"), ("listen", "127.0.0.1:0"), ("listen-node", "0.0.0.0:0"),
                    ("listen-node", "127.0.0.5:0"), ("listen-udp", "0.0.0.0:0"),
                    ("listen-unix", "/tmp/tenant.sock")]
        result = Egress.probe(self, "probe", attempts)
        for kind, target in attempts:
            self.assertEqual(result[f"{kind} {target}"], "NotCapable", (kind, target, result))

    def test_the_kernel_refuses_a_listen_that_deno_would_allow(self):
        # The operator opens all of loopback; Landlock still refuses any TCP bind.
        self.origin.deployments["probe"] = Deployment(code=EGRESS_PROBE)
        self.serve(runtime="egress_allow 127.0.0.0/8 0.0.0.0/8;")
        result = Egress.probe(self, "probe", [("listen", "127.0.0.1:0")])
        self.assertEqual(result["listen 127.0.0.1:0"], "PermissionDenied", result)

    def test_user_code_reaches_no_unix_socket_not_even_its_own_server(self):
        # The harness warms its server up through its own socket before user code loads (the
        # kernel's check lets that one path through); then write access is gone, and with it
        # every unix socket: its own server's and another isolate's.
        code = """Deno.serve(async (req) => {
            const path = new URL(req.url).searchParams.get("path");
            try {
              const conn = await Deno.connect({ transport: "unix", path });
              conn.close();
              return new Response("connected");
            } catch (e) { return new Response(e.name); }
        });"""
        self.origin.deployments["one"] = Deployment(code=code)
        self.origin.deployments["two"] = Deployment(code=code)
        self.serve()
        self.assertEqual(self.get("one", path="/?path=/nowhere").status, 200)
        self.assertEqual(self.get("two", path="/?path=/nowhere").status, 200)
        sockets = {}
        for pid in isolate_processes(self.sg.proc.pid):
            folder = os.readlink(f"/proc/{pid}/cwd")
            sockets[folder] = os.path.join(folder, "sock", "s.sock")
        self.assertEqual(len(sockets), 2, sockets)
        outcomes = {self.get("one", path="/?path=" + path).body.decode() for path in sockets.values()}
        self.assertEqual(outcomes, {"NotCapable"})


def isolate_processes(subgate_pid):
    """The pids of `deno` processes descending from subgate (through bubblewrap)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().split(b"\0")
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append((int(entry), cmdline))
    found, frontier = [], [subgate_pid]
    for _ in range(10):  # bounded depth: subgate -> bwrap -> bwrap -> deno
        nxt = []
        for parent in frontier:
            for pid, cmdline in children.get(parent, []):
                nxt.append(pid)
                if cmdline and os.path.basename(cmdline[0]) == b"deno":
                    found.append(pid)
        frontier = nxt
    return found


def status_field(pid, name):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].split()
    return None


class OsSandbox(IngressCase):
    def test_each_isolate_runs_in_its_own_namespaces_seeing_only_deno(self):
        self.origin.deployments["one"] = Deployment(code="Deno.serve(() => new Response('one'));")
        self.origin.deployments["two"] = Deployment(code="Deno.serve(() => new Response('two'));")
        self.serve()
        self.assertEqual(self.get("one").body, b"one")
        self.assertEqual(self.get("two").body, b"two")
        pids = isolate_processes(self.sg.proc.pid)
        self.assertEqual(len(pids), 2, pids)
        for pid in pids:
            for ns in ("mnt", "pid", "ipc", "uts", "user"):
                self.assertNotEqual(os.readlink(f"/proc/{pid}/ns/{ns}"), os.readlink(f"/proc/self/ns/{ns}"),
                                    f"isolate {pid} has its own {ns} namespace")
            self.assertEqual(status_field(pid, "NoNewPrivs"), ["1"])
            self.assertEqual(status_field(pid, "Seccomp"), ["2"], "a seccomp filter")
            self.assertEqual(status_field(pid, "CapEff"), ["0000000000000000"])
            root = f"/proc/{pid}/root"
            # The system folders, plus the first folder of each path the sandbox shows at its
            # real place (the Deno binary, the isolate folder), wherever this checkout lives.
            shown = {top_folder(os.path.realpath(subprocess_deno())), top_folder(os.readlink(f"/proc/{pid}/cwd"))}
            allowed = {"dev", "etc", "lib", "lib64", "proc", "tmp", "usr", "src"} | shown  # src: main.ts
            self.assertEqual(sorted(os.listdir(root)), sorted(set(os.listdir(root)) & allowed))
            self.assertFalse(os.path.exists(f"{root}/etc/passwd"), "no host files")
            self.assertFalse(os.path.exists(f"{root}/bin/sh"), "no shell")
            self.assertTrue(os.path.exists(f"{root}/proc/1"), "its own /proc")
        if os.geteuid() == 0:
            uids = {status_field(pid, "Uid")[0] for pid in pids}
            self.assertEqual(len(uids), 2, "one user per isolate")
            self.assertNotIn("0", uids)
        # Each sees only its own folder of the isolate tree.
        folders = [sorted(os.listdir(f"/proc/{pid}/root" + os.path.dirname(os.readlink(f"/proc/{pid}/cwd"))))
                   for pid in pids]
        for listing in folders:
            self.assertEqual(len([name for name in listing if name.startswith("iso-")]), 1, listing)

    def test_a_socket_path_an_isolate_controls_leads_to_no_other_isolate(self):
        # An isolate owns its socket folder; one that broke out of Deno could put a link to
        # another isolate's socket there. subgate checks who listens (SO_PEERCRED) and refuses.
        self.origin.deployments["one"] = Deployment(code="Deno.serve(() => new Response('one'));")
        self.origin.deployments["two"] = Deployment(code="Deno.serve(() => new Response('two'));")
        self.serve()
        self.assertEqual(self.get("one").body, b"one")
        self.assertEqual(self.get("two", headers={"x-deno-prewarm": "1"}).status, 204)
        sockets = {}
        for pid in isolate_processes(self.sg.proc.pid):
            folder = os.readlink(f"/proc/{pid}/cwd")
            with open(os.path.join(folder, "root", "src", "main.ts")) as f:
                code = f.read()
            sockets["one" if "'one'" in code else "two"] = os.path.join(folder, "sock", "s.sock")
        os.remove(sockets["two"])
        os.symlink(sockets["one"], sockets["two"])
        r = self.get("two")
        self.assertEqual(r.status, 502, r.body)
        self.assertNotIn(b"one", r.body)
        self.assertIn("is not the process it belongs to", self.sg.output())
        self.assertEqual(self.get("one").body, b"one", "the other isolate is untouched")

    def test_sandboxed_isolates_die_with_subgate_even_on_kill_9(self):
        self.origin.deployments["one"] = Deployment(code="Deno.serve(() => new Response('one'));")
        self.serve(runtime="spare 1;")
        self.assertEqual(self.get("one").body, b"one")
        wait_until(lambda: len(isolate_processes(self.sg.proc.pid)) == 2, what="isolate and spare")
        pids = isolate_processes(self.sg.proc.pid)
        self.sg.proc.kill()
        self.sg.proc.wait(5)

        def gone(pid):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                return True
        wait_until(lambda: all(gone(pid) for pid in pids), timeout=5, what="deno inside the sandbox to die")

    def test_sandbox_off_runs_without_namespaces(self):
        # Without a root of its own, the module lives at its path under the isolate's root folder.
        self.origin.deployments["one"] = Deployment(code="Deno.serve(() => new Response(import.meta.url));")
        self.serve(runtime="sandbox off;")
        self.assertRegex(self.get("one").body.decode(), r"^file:///.*/iso-\d+/root/src/main\.ts$")
        pids = isolate_processes(self.sg.proc.pid)
        self.assertEqual(len(pids), 1)
        self.assertEqual(os.readlink(f"/proc/{pids[0]}/ns/mnt"), os.readlink("/proc/self/ns/mnt"))
        self.assertIn("isolate sandbox: off", self.sg.output())

    def test_refuses_to_start_when_the_sandbox_cannot_run(self):
        conf = ("runtime deno {{ sandbox_bwrap {}; }} "
                "server {{ listen 127.0.0.1:@PORT@; location / {{ isolates; }} }}")
        missing = run_subgate(conf.format("/nonexistent/bwrap"))
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("needs bubblewrap", missing.stderr)
        self.assertIn("sandbox off", missing.stderr)
        failing = run_subgate(conf.format(shutil.which("false")))  # a sandbox that cannot start
        self.assertNotEqual(failing.returncode, 0)
        self.assertIn("the isolate sandbox cannot start here", failing.stderr)

    @unittest.skipUnless(os.geteuid() == 0, "needs root: isolates have their own users only then")
    def test_a_deno_binary_in_a_closed_folder_still_runs(self):
        hidden = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, hidden, True)
        os.chmod(hidden, 0o700)
        deno = os.path.join(hidden, "deno")
        shutil.copy(os.path.realpath(subprocess_deno()), deno)
        self.origin.deployments["one"] = Deployment(code="Deno.serve(() => new Response('one'));")
        self.serve(runtime=f"deno_path {deno};")
        self.assertEqual(self.get("one").body, b"one")


def top_folder(path):
    return path.lstrip("/").split("/", 1)[0]


def subprocess_deno():
    root = os.path.join(os.path.dirname(__file__), "..", "..")
    return subprocess.run([os.path.join(root, "scripts", "deno_path.sh")], capture_output=True,
                          text=True, check=True).stdout.strip()


def run_subgate(conf, check_only=False):
    """Runs subgate on `conf` until it exits (60 s at most, then it is killed and the result says
    so with returncode 0): for configs it must refuse."""
    from harness import BIN, free_port
    with tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False) as f:
        f.write(conf.replace("@PORT@", str(free_port())))
    try:
        args = [BIN, "-c", f.name] + (["-t"] if check_only else [])
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(args, 0, e.stdout, (e.stderr or b"").decode() + " (kept running)")
    finally:
        os.unlink(f.name)


if __name__ == "__main__":
    unittest.main()
