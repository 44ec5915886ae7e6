"""Lua hooks with real Deno isolates: identify() and sticky placement under isolate_limit (the
gateway model, protocol.md §6) seen through the `status` endpoint, access() answering, route()
to an upstream / rewriting / choosing the deployment, failing scripts, `-t` and reload."""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, request, wait_until, BIN  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config, SUBHOSTER, SECRET  # noqa: E402

# Answers with its isolate's random id; ?wait=MS holds the response; /echo shows what arrived.
WHO = """const id = Math.random().toString(36).slice(2, 10);
Deno.serve(async (req) => {
    const url = new URL(req.url);
    if (url.pathname.endsWith("/echo")) {
        return Response.json({ path: url.pathname, search: url.search,
                               headers: Object.fromEntries(req.headers) });
    }
    const wait = Number(url.searchParams.get("wait") ?? 0);
    if (wait) await new Promise((r) => setTimeout(r, wait));
    return new Response(id);
});"""

HOOKS = """
function access(req)
    if req.path == "/forbidden" then
        return subgate.respond(403, "no entry\\n", { ["x-why"] = "lua" })
    end
    if req.path == "/error" then error("broken hook") end
    if req.path == "/loop" then while true do end end
    if req.path == "/bomb" then
        local t = {}
        while true do t[#t + 1] = string.rep("x", 4096) .. #t end
    end
end

function route(req)
    if req.path:sub(1, 5) == "/api/" then
        return { upstream = "backend", path = req.path:sub(5),
                 set_headers = { ["x-routed-by"] = "lua" }, remove_headers = { "x-secret" } }
    end
    if req.path == "/v2/echo" then
        return { path = "/echo", set_headers = { ["x-tenant"] = req.claims.deployment_id } }
    end
    if req.path == "/steal" then return { deployment = "someone-else" } end
    if req.path == "/bad-route" then return { path = "no-slash" } end
    if req.path == "/no-upstream" then return { upstream = "nope" } end
    if req.path == "/framing" then return { set_headers = { ["transfer-encoding"] = "chunked" } } end
    if req.path == "/query-in-path" then return { path = "/x?y=1" } end
end

function identify(req)
    return req.headers["x-user"]
end
"""


def status(port):
    r = request(port, path="/status")
    assert r.status == 200, r.status
    return json.loads(r.body)


def isolates(snapshot):
    return [i for d in snapshot["deployments"] for i in d["isolates"]]


class LuaCase(SubgateTestCase):
    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["who"] = Deployment(code=WHO)
        self.dir = tempfile.mkdtemp(prefix="subgate-lua-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.script = os.path.join(self.dir, "hooks.lua")
        self.write_script(HOOKS)

    def write_script(self, text):
        with open(self.script, "w") as f:
            f.write(text)

    def serve(self, limit=2, extra_server=""):
        self.backend = self.start_backend()
        config = ingress_config(
            location=f"isolate_limit {limit}; lua_script {self.script};",
            server="location = /status { status; } " + extra_server)
        config = config.replace("server {", f"upstream backend {{ server 127.0.0.1:{self.backend.port}; }}\n        server {{", 1)
        self.sg = self.start_subgate(config)

    def get(self, user=None, path="/", headers=None):
        h = {"x-deno-subhost": relay_token("who", self.origin.rpc_root), "x-forwarded-host": "lua.example"}
        if user:
            h["x-user"] = user
        h.update(headers or {})
        return request(self.sg.port, path=path, headers=h)

    def in_background(self, *args, **kwargs):
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", self.get(*args, **kwargs)))
        t.start()
        return t, out

    def active(self):
        return sorted(i["active"] for i in isolates(status(self.sg.port)))


class Gateway(LuaCase):
    def test_identify_sticks_and_the_limit_spills_to_a_second_isolate(self):
        self.serve(limit=2)
        alice = self.get("alice").body
        for _ in range(3):
            self.assertEqual(self.get("alice").body, alice, "alice stays on her isolate")
        # A request counts until its exchange has ended, which can be a moment after the client
        # read the answer (slow under ASan): start from an idle isolate.
        wait_until(lambda: self.active() == [0], what="alice's requests to end")
        # Two of alice's connections fill her isolate (isolate_limit 2)...
        slow = [self.in_background("alice", path="/?wait=1500") for _ in range(2)]
        wait_until(lambda: self.active() == [2], what="alice's two connections in her isolate")
        # ...so a new identifier's connection gets a second isolate.
        bob = self.get("bob")
        self.assertEqual(bob.status, 200)
        self.assertNotEqual(bob.body, alice)
        for t, out in slow:
            t.join(15)
            self.assertEqual(out["r"].body, alice)
        self.assertEqual(self.get("alice").body, alice, "the sticky identifier stays put")
        self.assertEqual(self.get("bob").body, bob.body, "bob goes back to his isolate")
        wait_until(lambda: self.active() == [0, 0], what="every request to end")
        snapshot = status(self.sg.port)
        self.assertEqual(snapshot["sticky"], 2)
        self.assertEqual(len(snapshot["deployments"]), 1)
        self.assertEqual(snapshot["deployments"][0]["deployment_id"], "who")

    def test_counts_are_exact_across_workers_and_return_to_zero(self):
        self.serve(limit=3)
        self.get()  # boot the first isolate
        slow = [self.in_background(path="/?wait=2000") for _ in range(6)]
        wait_until(lambda: self.active() == [3, 3], timeout=20, what="two full isolates")
        for t, out in slow:
            t.join(20)
            self.assertEqual(out["r"].status, 200)
        wait_until(lambda: self.active() == [0, 0], what="counts back to zero")

    def test_access_answers_and_failing_scripts_give_500(self):
        self.serve()
        r = self.get(path="/forbidden")
        self.assertEqual((r.status, r.body, r.header("x-why")), (403, b"no entry\n", "lua"))
        for path in ("/error", "/loop", "/bomb", "/bad-route", "/no-upstream", "/framing", "/query-in-path"):
            for _ in range(2):  # and again: the VM is still usable
                r = self.get(path=path)
                self.assertEqual((r.status, r.error()["code"]), (500, "INTERNAL_SERVER_ERROR"), path)
            self.assertEqual(self.get("carol").status, 200, "the worker goes on serving")
        log = self.sg.output()
        self.assertIn("hooks.lua:6: broken hook", log)
        self.assertIn("instruction budget exhausted", log)
        self.assertIn("memory limit exceeded", log)
        self.assertIn("route() path must start with '/'", log)
        self.assertIn('unknown upstream "nope"', log)
        self.assertIn('cannot set the framing header "transfer-encoding"', log)
        self.assertIn("path with '?' or '#'", log)

    def test_route_to_an_upstream_and_rewrites(self):
        self.serve()
        r = self.get(path="/api/headers?x=1", headers={"x-secret": "s3cret", "x-kept": "yes"})
        self.assertEqual(r.status, 200, r.body)
        sent = {k.lower(): v for k, v in json.loads(r.body)}
        self.assertEqual(sent.get("x-routed-by"), "lua")
        self.assertEqual(sent.get("x-kept"), "yes")
        self.assertNotIn("x-secret", sent)
        r = self.get(path="/api/hello")
        self.assertEqual(r.status, 200)
        # To the isolate, with a rewritten path (the query stays) and a header from the claims.
        r = self.get(path="/v2/echo?q=1")
        echo = json.loads(r.body)
        self.assertEqual((echo["path"], echo["search"]), ("/echo", "?q=1"))
        self.assertEqual(echo["headers"].get("x-tenant"), "who")
        # The deployment comes from the token here.
        r = self.get(path="/steal")
        self.assertEqual((r.status, r.error()["code"]), (500, "INTERNAL_SERVER_ERROR"))
        self.assertIn("cannot change the deployment", self.sg.output())

    def test_config_check_and_reload_without_dropping_connections(self):
        self.serve()
        self.assertEqual(self.get(path="/forbidden").status, 403)
        bad = os.path.join(self.dir, "bad.lua")
        with open(bad, "w") as f:
            f.write("function access(req)\n  return (\nend\n")
        with open(self.sg.conf_path) as f:
            text = f.read()
        bad_conf = os.path.join(self.dir, "bad.conf")
        with open(bad_conf, "w") as f:
            f.write(text.replace(self.script, bad))
        p = subprocess.run([BIN, "-t", "-c", bad_conf], capture_output=True, text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("bad.lua:3:", p.stderr)
        # A request in flight across the reload finishes on the old config.
        t, out = self.in_background("dave", path="/?wait=1500")
        wait_until(lambda: self.active() == [1], what="the slow request in its isolate")
        self.write_script("function access(req) end\n")
        self.sg.signal(signal.SIGHUP)
        wait_until(lambda: "reloaded" in self.sg.output(), what="reload")
        self.assertEqual(self.get(path="/forbidden").status, 200, "the new script answers")
        t.join(15)
        self.assertEqual(out["r"].status, 200)


class ConfigChecks(LuaCase):
    def test_directive_errors(self):
        from test_core_signals import run_check
        no_hooks = os.path.join(self.dir, "none.lua")
        with open(no_hooks, "w") as f:
            f.write("local x = 1\n")
        server = "server { listen 127.0.0.1:1; location / { %s return 200; } }"
        code, output, _ = run_check("runtime deno { sticky_ttl 5s; sticky_max 10; }\n" +
                                    server % f"lua_script {self.script}; lua_instructions 5000; lua_memory 1m;")
        self.assertEqual(code, 0, output)
        for directives, message in [
            ("lua_script /nonexistent/x.lua;", "/nonexistent/x.lua"),
            (f"lua_script {no_hooks};", "defines none of the hooks"),
            (f"lua_script {self.script}; lua_memory 1k;", "lua_memory"),
            (f"lua_script {self.script}; lua_memory_total 100k;", "lua_memory_total"),
            (f"lua_script {self.script}; lua_instructions 10;", "lua_instructions"),
        ]:
            code, output, _ = run_check(server % directives)
            self.assertNotEqual(code, 0, directives)
            self.assertIn(message, output)
        code, output, _ = run_check("runtime deno { sticky_max lots; }\n" + server % "")
        self.assertNotEqual(code, 0)
        self.assertIn("sticky_max", output)


class RoutedDeployments(LuaCase):
    """A trusted listener without subhost_auth: route() names the deployment."""

    def test_route_chooses_the_deployment_by_host(self):
        self.origin.deployments["hello"] = Deployment()
        self.write_script("""
            local tenants = { ["who.localhost"] = "who", ["hello.localhost"] = "hello" }
            function route(req)
                if req.host == "stranger.localhost" then return { deployment = "who", subhoster = "other" } end
                local d = tenants[req.host]
                if not d then return subgate.respond(404, "unknown tenant\\n") end
                return { deployment = d }
            end
        """)
        self.sg = self.start_subgate(f"""
            workers 2;
            error_log stderr info;
            subhoster {SUBHOSTER} {{ secret "{SECRET}"; rpc_root_allow {self.origin.rpc_root}; }}
            runtime deno {{ spare 0; boot_timeout 15s; }}
            server {{
                listen 127.0.0.1:@PORT@;
                location / {{ lua_script {self.script}; isolates; }}
            }}
        """)
        r = request(self.sg.port, host="hello.localhost")
        self.assertEqual((r.status, r.body), (200, b"hello from hello.localhost\n"))
        r = request(self.sg.port, host="who.localhost")
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 8)
        r = request(self.sg.port, host="nobody.localhost")
        self.assertEqual((r.status, r.body), (404, b"unknown tenant\n"))
        r = request(self.sg.port, host="stranger.localhost")
        self.assertEqual((r.status, r.error()["code"]), (500, "INTERNAL_SERVER_ERROR"))
        self.assertIn('unknown subhoster "other"', self.sg.output())


if __name__ == "__main__":
    unittest.main()
