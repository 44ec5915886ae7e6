"""Requests through subgate to real Deno isolates booted from a real origin: the seed's instance
targeting session, single-flight boots, prewarm, envs and permissions, streaming, failures of
user code and isolates, eviction, capacity and loops."""

import json
import re
import shutil
import tempfile
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, request, wait_until, Conn, BIN  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402

INSTANCE_ID_CODE = open(os.path.join(os.path.dirname(__file__), "..", "..", "conf", "deployments",
                                     "instance-id", "main.ts")).read()


class IngressCase(SubgateTestCase):
    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)

    def serve(self, runtime="", location="", server=""):
        server += " location = /_pool { status; }"
        self.sg = self.start_subgate(ingress_config(runtime, location, server))
        return self.sg

    def pool(self):
        """The `status;` JSON: the pool's counters (boots, ready, evictions, ...) and deployments."""
        r = request(self.sg.port, path="/_pool")
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)

    def get(self, deployment, path="/", headers=None, method="GET", body=None, host="example.com"):
        h = {"x-deno-subhost": relay_token(deployment, self.origin.rpc_root), "x-forwarded-host": host}
        h.update(headers or {})
        return request(self.sg.port, method=method, path=path, headers=h, body=body)

    def deno_children(self):
        out = subprocess.run(["pgrep", "-P", str(self.sg.proc.pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]


class InstanceTargeting(IngressCase):
    def test_seed_session(self):
        self.origin.deployments["instance-id"] = Deployment(code=INSTANCE_ID_CODE)
        self.serve()
        outputs = []
        for instance in ["foo", "foo", "bar", "foo"]:
            r = self.get("instance-id", headers={"x-deno-isolate-instance-id": instance})
            self.assertEqual(r.status, 200, r.body)
            lines = dict(line.split(": ", 1) for line in r.body.decode().strip().split("\n"))
            outputs.append(lines)
        self.assertEqual([o["x-deno-isolate-instance-id"] for o in outputs], ["foo", "foo", "bar", "foo"])
        self.assertEqual([o["Counter"] for o in outputs], ["0", "1", "0", "2"])
        foo = outputs[0]["Random global"]
        self.assertEqual(outputs[1]["Random global"], foo)
        self.assertEqual(outputs[3]["Random global"], foo)
        self.assertNotEqual(outputs[2]["Random global"], foo)
        self.assertEqual(outputs[0]["Start time"], outputs[3]["Start time"])
        # Requests without an id never land on foo's (or bar's) isolate.
        for _ in range(5):
            r = self.get("instance-id")
            lines = dict(line.split(": ", 1) for line in r.body.decode().strip().split("\n"))
            self.assertEqual(lines["x-deno-isolate-instance-id"], "null")
            self.assertNotIn(lines["Random global"], (foo, outputs[2]["Random global"]))
        # The query parameter targets the same isolate as the header.
        r = self.get("instance-id", path="/?deno_isolate_instance_id=foo")
        self.assertIn(f"Random global: {foo}", r.body.decode())
        self.assertEqual(self.origin.boots["instance-id"], 1, "the code is fetched once")


# Counts the requests in flight in this isolate and answers with the most it saw at once and
# which isolate it is.
CONCURRENCY_CODE = """
let inflight = 0, most = 0;
const me = crypto.randomUUID();
Deno.serve(async () => {
  inflight++;
  most = Math.max(most, inflight);
  await new Promise(r => setTimeout(r, 40));
  inflight--;
  return new Response(JSON.stringify({most, me}));
});
"""


class WarmPath(IngressCase):
    """Warm requests take the lock-free placement path (status: warm_leases) and it still keeps
    isolate_limit and wakes queued requests."""

    def status(self):
        return {d["deployment_id"]: d for d in self.pool()["deployments"]}

    def test_sequential_warm_requests_take_no_lock(self):
        self.origin.deployments["hello"] = Deployment()
        self.serve()
        for _ in range(100):
            self.assertEqual(self.get("hello").status, 200)
        # Each worker places its first request on the locked path (it learns the deployment
        # there); every later one is warm.
        self.assertGreaterEqual(self.status()["hello"]["warm_leases"], 97)

    def test_concurrent_warm_requests_keep_the_limit(self):
        self.origin.deployments["count"] = Deployment(code=CONCURRENCY_CODE)
        self.serve(location="isolate_limit 3;")
        self.assertEqual(self.get("count").status, 200)  # the first isolate is ready
        results = []

        def burst():
            for _ in range(8):
                results.append(self.get("count"))

        threads = [threading.Thread(target=burst) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(len(results), 96)
        self.assertEqual(sorted({r.status for r in results}), [200])
        answers = [json.loads(r.body) for r in results]
        self.assertLessEqual(max(a["most"] for a in answers), 3, "isolate_limit held")
        self.assertGreater(len({a["me"] for a in answers}), 1, "12 clients at 3 per isolate")
        self.assertGreater(self.status()["count"]["warm_leases"], 0)

    def test_sticky_requests_take_the_warm_path_too(self):
        self.origin.deployments["count"] = Deployment(code=CONCURRENCY_CODE)
        script_dir = tempfile.mkdtemp(prefix="subgate-lua-")
        self.addCleanup(shutil.rmtree, script_dir, True)
        script = os.path.join(script_dir, "identify.lua")
        with open(script, "w") as f:
            f.write('function identify(req) return req.headers["x-user"] end\n')
        self.serve(location=f"isolate_limit 2; lua_script {script};")
        # Two users, each pinned to the isolate it first landed on while that has room.
        seen = {}
        for i in range(60):
            user = "alice" if i % 2 else "bob"
            r = self.get("count", headers={"x-user": user})
            self.assertEqual(r.status, 200, r.body)
            seen.setdefault(user, set()).add(json.loads(r.body)["me"])
        self.assertEqual([len(isolates) for isolates in seen.values()], [1, 1])
        status = self.status()["count"]
        self.assertEqual(status["sticky"], 2)
        self.assertGreaterEqual(status["warm_leases"], 56)

    def test_warm_requests_never_reach_another_deployment(self):
        # Two tenants' deployments answer who they are; alternating warm requests (each worker's
        # placement cache holds both) must each reach their own deployment's isolate, and an
        # instance id of one never names the other's.
        for name in ("tenant-a", "tenant-b"):
            self.origin.deployments[name] = Deployment(
                code=f"Deno.serve(() => new Response('{name}'));")
        self.serve()
        for i in range(40):
            name = "tenant-a" if i % 2 else "tenant-b"
            r = self.get(name)
            self.assertEqual((r.status, r.body), (200, name.encode()))
            r = self.get(name, headers={"x-deno-isolate-instance-id": "shared-name"})
            self.assertEqual((r.status, r.body), (200, name.encode()))
        pool = self.status()
        self.assertGreater(pool["tenant-a"]["warm_leases"], 30)
        self.assertGreater(pool["tenant-b"]["warm_leases"], 30)

    def test_dedicated_instances_take_the_warm_path_too(self):
        self.origin.deployments["count"] = Deployment(code=CONCURRENCY_CODE)
        self.serve(location="isolate_limit 1;")
        mine = {json.loads(self.get("count", headers={"x-deno-isolate-instance-id": "foo"}).body)["me"]}
        for _ in range(20):
            r = self.get("count", headers={"x-deno-isolate-instance-id": "foo"})
            self.assertEqual(r.status, 200, r.body)
            mine.add(json.loads(r.body)["me"])
        shared = json.loads(self.get("count").body)["me"]
        self.assertEqual(len(mine), 1, "one dedicated isolate")
        self.assertNotIn(shared, mine, "never the shared one")
        self.assertGreaterEqual(self.status()["count"]["warm_leases"], 18)

    def test_isolates_and_the_warm_path_survive_a_reload(self):
        self.origin.deployments["count"] = Deployment(code=CONCURRENCY_CODE)
        self.serve()
        first = json.loads(self.get("count").body)["me"]
        warm_before = self.status()["count"]["warm_leases"]
        with open(self.sg.conf_path) as f:
            self.sg.write_config(f.read().replace("location = /_pool", "location = /state"))
        self.sg.signal(signal.SIGHUP)
        wait_until(lambda: "configuration reloaded" in self.sg.output(), what="reload")
        for _ in range(10):
            r = self.get("count")
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(json.loads(r.body)["me"], first, "the same isolate serves")
        r = request(self.sg.port, path="/state")
        self.assertEqual(r.status, 200, r.body)
        after = {d["deployment_id"]: d for d in json.loads(r.body)["deployments"]}
        self.assertGreaterEqual(after["count"]["warm_leases"], warm_before + 8)
        self.assertEqual(self.origin.boots["count"], 1)

    def test_queued_requests_are_woken_by_lock_free_releases(self):
        self.origin.deployments["count"] = Deployment(code=CONCURRENCY_CODE)
        self.serve(runtime="max_isolates_per_deployment 1; queue_timeout 10s;",
                   location="isolate_limit 1;")
        self.assertEqual(self.get("count").status, 200)
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.get("count"))) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        # 16 requests of 40 ms one at a time; a missed wake-up would end in CAPACITY_EXCEEDED.
        self.assertEqual(sorted({r.status for r in results}), [200])
        self.assertEqual(max(json.loads(r.body)["most"] for r in results), 1)


class RequestChecks(IngressCase):
    def test_bad_instance_id_and_missing_auth(self):
        self.origin.deployments["hello"] = Deployment()
        self.serve(server="location /unauthenticated { isolates; }")
        r = self.get("hello", path="/?deno_isolate_instance_id=%zz")
        self.assertEqual((r.status, r.error()["code"]), (400, "BAD_REQUEST"))
        r = self.get("hello", headers={"x-deno-isolate-instance-id": "x" * 300})
        self.assertEqual((r.status, r.error()["code"]), (400, "BAD_REQUEST"))
        r = request(self.sg.port, path="/unauthenticated")
        self.assertEqual((r.status, r.error()["code"]), (500, "INTERNAL_SERVER_ERROR"))
        self.assertEqual(self.origin.boots, {}, "nothing was booted")


class Boot(IngressCase):
    def test_single_flight_under_concurrency(self):
        self.origin.deployments["hello"] = Deployment(stall=0.3)
        self.serve(location="isolate_limit 100;")
        results = []

        def one():
            results.append(self.get("hello"))

        threads = [threading.Thread(target=one) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(len(results), 100)
        self.assertEqual(sorted({r.status for r in results}), [200])
        self.assertEqual(self.origin.boots["hello"], 1)
        self.assertEqual(self.pool()["ready"], 1, "one isolate started")
        self.assertEqual(len(self.deno_children()), 1)

    def test_limit_forces_more_isolates(self):
        self.origin.deployments["hello"] = Deployment(stall=0.3)
        self.serve(location="isolate_limit 10;")
        results = []
        threads = [threading.Thread(target=lambda: results.append(self.get("hello"))) for _ in range(25)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual(sorted({r.status for r in results}), [200])
        self.assertEqual(self.origin.boots["hello"], 1, "still one /boot call")
        self.assertEqual(len(self.deno_children()), 3, "25 concurrent requests at 10 per isolate")

    def test_prewarm_then_request(self):
        self.origin.deployments["hello"] = Deployment()
        self.serve()
        r = self.get("hello", headers={"x-deno-prewarm": "1"})
        self.assertEqual(r.status, 204)
        self.assertIsNone(r.header("content-length"), "204 carries no Content-Length")
        self.assertEqual(r.body, b"")
        self.assertEqual(self.pool()["ready"], 1, "204 once the isolate is ready")
        children = self.deno_children()
        r = self.get("hello")
        self.assertEqual(r.status, 200)
        self.assertEqual(self.deno_children(), children, "the request used the prewarmed isolate")
        self.assertEqual(self.origin.boots["hello"], 1)

    def test_boot_errors(self):
        self.origin.deployments.update({
            "fails": Deployment(status=500),
            "garbled": Deployment(raw_config="{not json"),
            "wrong-types": Deployment(config={"envs": {"A": 1}}),
            "bad-net": Deployment(config={"permissions": {"net": "yes"}}),
            "eszip": Deployment(config={"layers": []}),
            "no-config": Deployment(omit_config=True),
        })
        self.serve()
        cases = {
            "fails": (502, "ORIGIN_BOOT_RPC_ERROR"),
            "missing": (404, "DEPLOYMENT_NOT_FOUND"),
            "garbled": (502, "ORIGIN_INVALID_XDENO_CONFIG"),
            "wrong-types": (502, "ORIGIN_INVALID_XDENO_CONFIG"),
            "bad-net": (502, "ORIGIN_INVALID_XDENO_CONFIG"),
            "eszip": (502, "ORIGIN_INVALID_XDENO_CONFIG"),
            "no-config": (502, "ORIGIN_MISSING_XDENO_CONFIG"),
        }
        for deployment, (status, code) in cases.items():
            r = self.get(deployment)
            self.assertEqual((r.status, r.error()["code"]), (status, code), deployment)
            self.assertTrue(r.error()["message"])
        self.assertIn("layers", self.get("eszip").error()["message"])
        self.assertEqual(self.origin.auth_errors, [], "every /boot call carried a valid token")
        # A failure is remembered a moment (boot_failure_backoff): once that passes, a fixed
        # origin serves the next request.
        self.origin.deployments["fails"] = Deployment()
        wait_until(lambda: self.get("fails").status == 200, timeout=10, what="the fixed origin")

    def test_a_failing_origin_is_not_hammered(self):
        # Each failed /boot is answered again, unchanged and without a call, for a delay that
        # doubles with each failure in a row (400 ms, 800 ms, ... here), and forgotten on success.
        self.origin.deployments["fails"] = Deployment(status=503)
        self.serve(runtime="boot_failure_backoff 400ms 10s;")
        first = self.get("fails")
        self.assertEqual((first.status, first.error()["code"]), (502, "ORIGIN_BOOT_RPC_ERROR"))
        for _ in range(20):
            again = self.get("fails")
            self.assertEqual((again.status, again.error()), (first.status, first.error()))
        self.assertEqual(self.origin.boots["fails"], 1, "the answers came from the memory of the failure")
        pool = self.pool()
        self.assertEqual(pool["boot_failures"], 1)
        self.assertGreaterEqual(pool["boot_backoff_answers"], 20)
        # Another deployment of the same origin is not held back.
        self.origin.deployments["other"] = Deployment()
        self.assertEqual(self.get("other").status, 200)
        # After the delay the origin is asked again; it still fails, and the delay doubles.
        def next_call(calls):
            started = time.monotonic()
            wait_until(lambda: (self.get("fails"), self.origin.boots["fails"] >= calls)[1], timeout=10,
                       what=f"/boot call {calls}")
            return time.monotonic() - started
        second_delay = next_call(2)
        third_delay = next_call(3)
        self.assertGreater(third_delay, second_delay, "the second delay is longer than the first")
        # Fixed: served once the delay passes, and the failures are forgotten.
        self.origin.deployments["fails"] = Deployment()
        wait_until(lambda: self.get("fails").status == 200, timeout=10, what="the fixed origin")

    def test_boot_failure_backoff_off(self):
        self.origin.deployments["fails"] = Deployment(status=500)
        self.serve(runtime="boot_failure_backoff off;")
        for _ in range(3):
            self.assertEqual(self.get("fails").error()["code"], "ORIGIN_BOOT_RPC_ERROR")
        self.assertEqual(self.origin.boots["fails"], 3)

    def test_origin_unreachable_and_stalled(self):
        self.origin.deployments["slow"] = Deployment(stall=3)
        self.serve(runtime="origin_timeout 500ms;")
        r = self.get("slow")
        self.assertEqual((r.status, r.error()["code"]), (502, "INTERNAL_BOOT_RPC_ERROR"))
        self.origin.stop()
        r = self.get("anything")
        self.assertEqual((r.status, r.error()["code"]), (502, "INTERNAL_BOOT_RPC_ERROR"))


class TlsOrigin(SubgateTestCase):
    def test_https_origin_verified_against_the_configured_ca(self):
        tls_dir = tempfile.mkdtemp(prefix="subgate-tls-")
        self.addCleanup(shutil.rmtree, tls_dir, True)
        origin = Origin(tls_dir=tls_dir)
        self.addCleanup(origin.stop)
        origin.deployments["hello"] = Deployment()
        headers = {"x-deno-subhost": relay_token("hello", origin.rpc_root), "x-forwarded-host": "tls.example"}
        trusting = self.start_subgate(ingress_config(runtime=f"origin_ca_file {origin.ca_file};"))
        r = request(trusting.port, headers=headers)
        self.assertEqual((r.status, r.body), (200, b"hello from tls.example\n"))
        # Without the CA the system store does not trust the origin.
        strict = self.start_subgate(ingress_config())
        r = request(strict.port, headers=headers)
        self.assertEqual((r.status, r.error()["code"]), (502, "INTERNAL_BOOT_RPC_ERROR"))
        self.assertIn("certificate", r.error()["message"])


class UserCode(IngressCase):
    def test_envs_host_scheme_and_default_export(self):
        code = """export default { fetch(req) {
            const u = new URL(req.url);
            return Response.json({ url: req.url, env: Deno.env.get("GREETING"), host: req.headers.get("host"),
                                   token: req.headers.get("x-deno-subhost") });
        } };"""
        self.origin.deployments["env"] = Deployment(code=code, envs={"GREETING": "hi there"})
        self.serve()
        r = self.get("env", path="/a/b?c=1", host="tenant.example:8443")
        self.assertEqual(r.status, 200, r.body)
        data = json.loads(r.body)
        self.assertEqual(data["url"], "https://tenant.example:8443/a/b?c=1")
        self.assertEqual(data["env"], "hi there")
        self.assertIsNone(data["token"], "the relay token is not passed to user code")
        r = self.get("env", path="/x", headers={"x-forwarded-proto": "http"})
        self.assertEqual(json.loads(r.body)["url"], "http://example.com/x")

    def test_deno_deploy_environment(self):
        code = """Deno.serve(() => Response.json({
            id: Deno.env.get("DENO_DEPLOYMENT_ID"), region: Deno.env.get("DENO_REGION"),
            mine: Deno.env.get("MINE") }));"""
        # The config's envs cannot pass for the platform's own variables.
        self.origin.deployments["dep-env"] = Deployment(
            code=code, envs={"MINE": "yes", "DENO_REGION": "forged", "DENO_DEPLOYMENT_ID": "forged"})
        self.serve(runtime="region eu-west-1;")
        r = self.get("dep-env")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(json.loads(r.body), {"id": "dep-env", "region": "eu-west-1", "mine": "yes"})

    def test_the_entrypoint_is_import_meta_url(self):
        # A one-module body runs as the config's entrypoint, at that path inside the sandbox;
        # user code reads its own file there and nothing the runtime is made of.
        code = """const here = new URL(import.meta.url);
            Deno.serve(async () => {
              const own = (await Deno.readTextFile(here)).length > 0;
              let runtime = "readable";
              try { await Deno.readTextFile("/proc/self/maps"); } catch (e) { runtime = e.name; }
              return Response.json({ url: import.meta.url, main: import.meta.main, own, runtime });
            });"""
        self.origin.deployments["meta"] = Deployment(
            code=code, config={"entrypoint": "file:///app/my%20site/server.js"})
        self.origin.deployments["usr"] = Deployment(config={"entrypoint": "file:///proc/self/x.ts"})
        self.origin.deployments["remote"] = Deployment(config={"entrypoint": "https://example.com/x.ts"})
        self.serve()
        r = self.get("meta")
        self.assertEqual(r.status, 200, r.body)
        seen = json.loads(r.body)
        self.assertEqual(seen["url"], "file:///app/my%20site/server.js")
        self.assertTrue(seen["own"])
        self.assertEqual(seen["runtime"], "NotCapable")
        r = self.get("usr")
        self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"))
        self.assertIn("/proc", r.error()["message"])
        r = self.get("remote")
        self.assertEqual((r.status, r.error()["code"]), (502, "ORIGIN_INVALID_XDENO_CONFIG"))
        self.assertIn("entrypoint", r.error()["message"])

    def test_net_permission_false_cannot_fetch(self):
        backend = self.start_backend()
        code = f"""Deno.serve(async () => {{
            try {{ const r = await fetch("http://127.0.0.1:{backend.port}/hello"); return new Response("fetched " + r.status); }}
            catch (e) {{ return new Response("denied: " + e.name); }}
        }});"""
        self.origin.deployments["closed"] = Deployment(code=code, net=False)
        self.origin.deployments["open"] = Deployment(code=code, net=True)
        self.origin.deployments["listed"] = Deployment(code=code, net=["example.com"])
        self.serve(runtime="egress_allow 127.0.0.1;")  # the backend: loopback is closed by default
        self.assertIn(b"denied: NotCapable", self.get("closed").body)
        self.assertEqual(self.get("open").body, b"fetched 200")
        self.assertIn(b"denied: NotCapable", self.get("listed").body)

    def test_reads_only_its_own_code(self):
        code = """Deno.serve(async () => {
            const own = (await Deno.readTextFile(new URL(import.meta.url).pathname)).length > 0;
            let other = "read";
            try { await Deno.readTextFile("/etc/resolv.conf"); } catch (e) { other = e.name; }
            let write = "written";
            try { await Deno.writeTextFile(new URL("./x.txt", import.meta.url).pathname, "x"); } catch (e) { write = e.name; }
            return Response.json({ own, other, write });
        });"""
        self.origin.deployments["reader"] = Deployment(code=code)
        self.serve()
        r = self.get("reader")
        self.assertEqual(json.loads(r.body), {"own": True, "other": "NotCapable", "write": "NotCapable"})

    def test_streaming_both_ways(self):
        code = """Deno.serve(async (req) => {
            if (req.method === "POST") {
                let n = 0; for await (const c of req.body) n += c.length;
                return new Response("got " + n);
            }
            const body = new ReadableStream({ async start(ctl) {
                for (let i = 0; i < 5; i++) { ctl.enqueue(new TextEncoder().encode("tick " + i + "\\n")); await new Promise(r => setTimeout(r, 200)); }
                ctl.close();
            } });
            return new Response(body);
        });"""
        self.origin.deployments["stream"] = Deployment(code=code)
        self.serve(server="client_max_body_size 64m;")
        r = self.get("stream", method="POST", body=b"x" * (5 << 20))
        self.assertEqual(r.body, b"got %d" % (5 << 20))
        c = Conn(self.sg.port)
        token = relay_token("stream", self.origin.rpc_root)
        start = time.monotonic()
        c.send(f"GET / HTTP/1.1\r\nHost: x\r\nx-deno-subhost: {token}\r\nx-forwarded-host: e.com\r\n\r\n".encode())
        c.sock.settimeout(10)
        first = b""
        while b"tick 0" not in first:
            first += c.sock.recv(4096)
        self.assertLess(time.monotonic() - start, 0.9, "the first chunk arrives before the stream ends")
        c.close()

    def test_throw_at_load_gives_deployment_failed(self):
        self.origin.deployments["throws"] = Deployment(code='throw new Error("broken at load");')
        self.origin.deployments["serves-nothing"] = Deployment(code='console.log("no server here");')
        self.serve()
        r = self.get("throws")
        self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"))
        self.assertIn("broken at load", r.error()["message"])
        self.assertIn("broken at load", self.sg.output())
        r = self.get("serves-nothing")
        self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"))

    def test_load_errors_name_no_host_path_and_are_printable_and_bounded(self):
        # A syntax error makes Deno quote the module's URL (the isolate's folder on the host) and
        # the offending source line, bytes and all; a long throw makes a long message.
        self.origin.deployments["garbage"] = Deployment(
            code='const s = "\x01\x02\x1b[31m\u00e9\u2603"; @@@ not javascript;\n')
        self.origin.deployments["long"] = Deployment(
            code='throw new Error("broken \\x07\\u00ff " + "x".repeat(2000));')
        self.serve()
        for name in ("garbage", "long"):
            r = self.get(name)
            self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"), name)
            message = r.error()["message"]
            self.assertTrue(message, name)
            for text in (r.header("x-deno-error"), r.body.decode()):
                self.assertNotIn("/tmp", text, name)
                self.assertNotIn("iso-", text, name)
                self.assertTrue(all(0x20 <= ord(c) < 0x7f for c in text.rstrip("\n")), (name, text))
            self.assertLessEqual(len(message), 200, name)
        self.assertIn("file:///src/main.ts", self.get("garbage").error()["message"], "the module's own name")
        self.assertTrue(self.get("long").error()["message"].endswith("..."))
        # The operator's log keeps the whole story, its control bytes escaped.
        self.assertRegex(self.sg.output(), r"failed to load the deployment: .*file:///src/main\.ts")
        self.assertIn("x" * 400, self.sg.output())
        failed = [line for line in self.sg.output().splitlines() if "failed to load the deployment" in line]
        self.assertEqual({re.search(r"isolate (\w+)#", line).group(1) for line in failed},
                         {"garbage", "long"}, failed)
        for line in failed:
            self.assertFalse([c for c in line if ord(c) < 0x20 or ord(c) == 0x7f], line)
        self.assertTrue(any(r"broken \x07" in line for line in failed), failed)

    def test_boot_timeout(self):
        self.origin.deployments["hangs"] = Deployment(code="await new Promise(() => {});")
        self.serve(runtime="boot_timeout 1s;")
        start = time.monotonic()
        r = self.get("hangs")
        self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"))
        self.assertLess(time.monotonic() - start, 5)
        self.assertIn("boot_timeout", r.error()["message"])

    def test_request_timeout(self):
        self.origin.deployments["slow"] = Deployment(
            code="Deno.serve(async () => { await new Promise(r => setTimeout(r, 3000)); return new Response('late'); });")
        self.serve()
        r = self.get("slow", headers={"x-deno-timeout-ms": "500"})
        self.assertEqual((r.status, r.error()["code"]), (504, "REQUEST_TIMED_OUT"))


class IsolateFailures(IngressCase):
    CRASHY = """let n = 0;
    const processId = crypto.randomUUID();  // Deno.pid is the same in every pid namespace
    Deno.serve(async (req) => {
        const path = new URL(req.url).pathname;
        if (path === "/crash") { setTimeout(() => Deno.exit(3), 100); await new Promise(r => setTimeout(r, 5000)); }
        if (path === "/bomb") { const keep = []; for (;;) keep.push(new Array(1e6).fill(Math.random())); }
        return new Response("alive " + (n++) + " " + processId);
    });"""

    def test_crash_mid_request_then_replaced(self):
        self.origin.deployments["crashy"] = Deployment(code=self.CRASHY)
        self.serve()
        before = self.get("crashy").body
        r = self.get("crashy", path="/crash")
        self.assertEqual((r.status, r.error()["code"]), (502, "DEPLOYMENT_FAILED"))
        after = self.get("crashy")
        self.assertEqual(after.status, 200)
        self.assertNotEqual(before.split()[-1], after.body.split()[-1], "a new isolate process")
        self.assertEqual(self.origin.boots["crashy"], 1, "the code stayed cached")

    def test_memory_limit(self):
        self.origin.deployments["crashy"] = Deployment(code=self.CRASHY)
        self.serve(runtime="memory_limit 64m;")
        r = self.get("crashy", path="/bomb")
        self.assertEqual((r.status, r.error()["code"]), (502, "MEMORY_LIMIT"))
        self.assertEqual(self.get("crashy").status, 200)

    def test_idle_eviction(self):
        self.origin.deployments["hello"] = Deployment()
        self.serve(runtime="idle_timeout 1s;")
        self.assertEqual(self.get("hello").status, 200)
        wait_until(lambda: self.pool()["evicted_idle"] == 1, timeout=10, what="idle eviction")
        wait_until(lambda: not self.deno_children(), timeout=10, what="the isolate process to exit")
        self.assertEqual(self.get("hello").status, 200)
        self.assertEqual(self.origin.boots["hello"], 1, "the boot result is cached")

    def test_lru_eviction(self):
        for name in ("a", "b", "c"):
            self.origin.deployments[name] = Deployment()
        self.serve(runtime="max_isolates 2;")
        self.assertEqual(self.get("a").status, 200)
        self.assertEqual(self.get("b").status, 200)
        self.assertEqual(self.get("a").status, 200)  # b is now the least recently used
        self.assertEqual(self.get("c").status, 200)
        pool = self.pool()
        self.assertEqual(pool["evicted_lru"], 1)
        self.assertEqual({d["deployment_id"]: len(d["isolates"]) for d in pool["deployments"]},
                         {"a": 1, "b": 0, "c": 1}, "b, the least recently used, was evicted")
        wait_until(lambda: len(self.deno_children()) == 2, what="two isolates left")

    def test_capacity_exceeded(self):
        self.origin.deployments["slow"] = Deployment(
            code="Deno.serve(async () => { await new Promise(r => setTimeout(r, 2000)); return new Response('done'); });")
        self.serve(runtime="max_isolates_per_deployment 1; queue_timeout 300ms;", location="isolate_limit 1;")
        results = []
        first = threading.Thread(target=lambda: results.append(self.get("slow")))
        first.start()
        wait_until(lambda: self.pool()["ready"] == 1, what="the isolate")
        time.sleep(0.2)  # let the first request reach the isolate
        r = self.get("slow")
        self.assertEqual((r.status, r.error()["code"]), (503, "CAPACITY_EXCEEDED"))
        first.join(10)
        self.assertEqual(results[0].status, 200)

    def test_loop_detected(self):
        self.serve(runtime="egress_allow 127.0.0.1;")  # where the operator lets isolates reach it
        token = relay_token("loop", self.origin.rpc_root)
        code = f"""Deno.serve(async (req) => {{
            if (new URL(req.url).pathname === "/inner") return new Response("inner reached");
            const r = await fetch("http://127.0.0.1:{self.sg.port}/inner", {{ headers: {{
                "x-deno-subhost": "{token}", "x-forwarded-host": "loop.example" }} }});
            return new Response(r.status + " " + r.headers.get("x-deno-error"));
        }});"""
        self.origin.deployments["loop"] = Deployment(code=code)
        r = self.get("loop")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.body.startswith(b"508 "), r.body)
        self.assertIn(b"LOOP_DETECTED", r.body)
        # A client cannot smuggle the marker to user code.
        r = self.get("loop", path="/inner", headers={"x-subgate-loop": "forged"})
        self.assertEqual(r.body, b"inner reached")


# Answers which isolate it is; /hold keeps the request (and so the isolate busy) a while.
WHO_CODE = """
const me = crypto.randomUUID();
Deno.serve(async (req) => {
  if (new URL(req.url).pathname === "/hold") await new Promise(r => setTimeout(r, 4000));
  return new Response(me);
});
"""


class FairCaps(IngressCase):
    """Instance ids are the client's to choose: capped per deployment, and eviction under
    max_isolates takes from the deployments over their fair share first."""

    def instance(self, deployment, instance_id, path="/"):
        return self.get(deployment, path=path, headers={"x-deno-isolate-instance-id": instance_id})

    def isolates_of(self, deployment):
        for d in self.pool()["deployments"]:
            if d["deployment_id"] == deployment:
                return d["isolates"]
        return []

    def test_a_tenant_cycling_instance_ids_never_stops_another_tenants_warm_isolate(self):
        for name in ("tenant-a", "tenant-b"):
            self.origin.deployments[name] = Deployment(code=WHO_CODE)
        self.serve(runtime="max_isolates 3; max_instances_per_deployment 50;")
        warm = self.get("tenant-a")
        self.assertEqual(warm.status, 200, warm.body)
        for i in range(8):
            r = self.instance("tenant-b", f"cycle-{i}")
            self.assertEqual(r.status, 200, r.body)
        # A's isolate, the least recently used of all after B's first two, is the same one.
        self.assertEqual(self.get("tenant-a").body, warm.body)
        self.assertEqual(len(self.isolates_of("tenant-a")), 1)
        self.assertEqual(sorted(i["instance_id"] for i in self.isolates_of("tenant-b")),
                         ["cycle-6", "cycle-7"], "B replaced its own instances")
        self.assertEqual(self.pool()["evicted_lru"], 6)

    def test_instance_ids_past_the_cap_replace_the_deployments_idle_instance_or_get_503(self):
        self.origin.deployments["cycler"] = Deployment(code=WHO_CODE)
        self.serve(runtime="max_instances_per_deployment 2;")
        one = self.instance("cycler", "one").body
        self.assertEqual(self.instance("cycler", "two").status, 200)
        # A third id stops the least recently used idle instance, "one".
        self.assertEqual(self.instance("cycler", "three").status, 200)
        self.assertEqual(sorted(i["instance_id"] for i in self.isolates_of("cycler")), ["three", "two"])
        again = self.instance("cycler", "one")  # starts afresh, and stops "two" for it
        self.assertEqual(again.status, 200, again.body)
        self.assertNotEqual(again.body, one, "a new isolate")
        self.assertEqual(self.pool()["evicted_lru"], 2)
        # Both instances busy: a new id is refused at once.
        held = []
        threads = [threading.Thread(target=lambda i=i: held.append(self.instance("cycler", i, "/hold")))
                   for i in ("one", "three")]
        for t in threads:
            t.start()
        wait_until(lambda: [i["active"] for i in self.isolates_of("cycler")] == [1, 1],
                   what="both instances busy")
        start = time.monotonic()
        r = self.instance("cycler", "four")
        self.assertEqual((r.status, r.error()["code"]), (503, "CAPACITY_EXCEEDED"))
        self.assertIn("max_instances_per_deployment 2", r.error()["message"])
        self.assertLess(time.monotonic() - start, 2, "no queue wait")
        for t in threads:
            t.join(15)
        self.assertEqual([r.status for r in held], [200, 200])
        self.assertEqual(sorted(i["instance_id"] for i in self.isolates_of("cycler")), ["one", "three"])


class Loops(IngressCase):
    """Requests isolates send to subgate carry a hop count in CDN-Loop (RFC 8586) and the
    deployment's loop tag; requests to other hosts carry neither."""

    def relay_code(self, target, user_context=False):
        """Forwards each request to deployment `target` through subgate and answers with what
        came back, after the CDN-Loop it was given. With `user_context`, the fetch is made in a
        run of user code's own AsyncLocalStorage, after an await in it."""
        token = relay_token(target, self.origin.rpc_root)
        forward = f"""async () => {{
            await new Promise((resolve) => setTimeout(resolve, 1));
            return await fetch("http://127.0.0.1:{self.sg.port}/", {{ headers: {{
                "x-deno-subhost": "{token}", "x-forwarded-host": "{target}.example" }} }});
        }}"""
        run = f"new AsyncLocalStorage().run({{ mine: 1 }}, {forward})" if user_context else f"({forward})()"
        return f"""import {{ AsyncLocalStorage }} from "node:async_hooks";
        Deno.serve(async (req) => {{
            const seen = req.headers.get("cdn-loop");
            const r = await {run};
            const inner = r.status === 200 ? await r.text() : r.status + " " + r.headers.get("x-deno-error");
            return new Response(seen + "\\n" + inner);
        }});"""

    def test_a_loop_through_another_deployment_ends_in_loop_detected(self):
        self.serve(runtime="egress_allow 127.0.0.1;", location="isolate_loop_limit 4;")
        # ping forwards from a context of its own (the count follows into it), pong from none.
        self.origin.deployments["ping"] = Deployment(code=self.relay_code("pong", user_context=True))
        self.origin.deployments["pong"] = Deployment(code=self.relay_code("ping"))
        r = self.get("ping", headers={"cdn-loop": "cdn.example; v=1"})
        self.assertEqual(r.status, 200, r.body)
        lines = r.body.decode().split("\n")
        # ping, pong, ping, pong: each saw one hop more; the fifth entry was refused.
        self.assertEqual(lines[:4], [
            "cdn.example; v=1, subgate; hops=1", "subgate; hops=2", "subgate; hops=3", "subgate; hops=4"])
        self.assertTrue(lines[4].startswith("508 "), lines)
        error = json.loads(lines[4][4:])
        self.assertEqual(error["code"], "LOOP_DETECTED")
        self.assertIn("isolate_loop_limit 4", error["message"])
        # A count a client sends is honoured too (it can only refuse its own request).
        r = self.get("ping", headers={"cdn-loop": "subgate; hops=4"})
        self.assertEqual((r.status, r.error()["code"]), (508, "LOOP_DETECTED"))

    def test_user_code_cannot_hide_the_count(self):
        """An unclosed quote in the CDN-Loop user code sends (`x"`) opens no quoted string, so the
        entry the harness appends after it still counts. It used to hide it: each hop counted 0,
        and this chain ran to its own end (depth 8) instead of stopping at the limit."""
        self.serve(runtime="egress_allow 127.0.0.1;", location="isolate_loop_limit 4;")

        def chain_code(target):
            token = relay_token(target, self.origin.rpc_root)
            return f"""Deno.serve(async (req) => {{
                const depth = Number(req.headers.get("x-depth") ?? "0");
                if (depth >= 8) return new Response("the end of the chain");
                const r = await fetch("http://127.0.0.1:{self.sg.port}/", {{ headers: {{
                    "x-deno-subhost": "{token}", "x-forwarded-host": "{target}.example",
                    "cdn-loop": 'x"', "x-depth": String(depth + 1) }} }});
                const inner = r.status === 200 ? await r.text() : r.status + " " + r.headers.get("x-deno-error");
                return new Response(req.headers.get("cdn-loop") + "\\n" + inner);
            }});"""
        self.origin.deployments["ping"] = Deployment(code=chain_code("pong"))
        self.origin.deployments["pong"] = Deployment(code=chain_code("ping"))
        r = self.get("ping")
        self.assertEqual(r.status, 200, r.body)
        lines = r.body.decode().split("\n")
        self.assertEqual(lines[:4], [
            "subgate; hops=1", 'x", subgate; hops=2', 'x", subgate; hops=3', 'x", subgate; hops=4'])
        self.assertTrue(lines[4].startswith("508 "), lines)
        self.assertEqual(json.loads(lines[4][4:])["code"], "LOOP_DETECTED")

    def test_other_hosts_get_no_marker(self):
        third_party = self.start_backend(host="127.0.0.2")
        self.serve(runtime="egress_allow 127.0.0.0/8;")  # subgate and the third party
        code = f"""Deno.serve(async (req) => {{
            const r = await fetch("http://127.0.0.2:{third_party.port}/headers", {{ headers: {{ "x-mine": "1" }} }});
            return new Response(await r.text());
        }});"""
        self.origin.deployments["caller"] = Deployment(code=code)
        r = self.get("caller", headers={"cdn-loop": "cdn.example"})
        self.assertEqual(r.status, 200, r.body)
        received = {name.lower(): value for name, value in json.loads(r.body)}
        self.assertEqual(received.get("x-mine"), "1")
        self.assertNotIn("x-subgate-loop", received)
        self.assertNotIn("cdn-loop", received)


class Stdin(IngressCase):
    def test_what_user_code_reads_on_stdin_is_its_own(self):
        """User code can read its isolate's stdin: Deno.stdin.read() ignores the harness's locked
        reader, and node:fs and process.stdin read fd 0 as well. What it finds there must be its
        own isolate's traffic only (the supervisor's pings here), never the assignment carrying
        the reports' secret prefix, which the harness reads before user code is loaded."""
        # Pings go out while the loop uses CPU: the handler works in slices of 20 ms, letting the
        # loop turn between them, until its read returns (or 5 s passed).
        code = """Deno.serve(async () => {
            const buffer = new Uint8Array(65536);
            let got = null;
            Deno.stdin.read(buffer).then((n) => { got = n ?? 0; });
            for (const end = Date.now() + 5000; got === null && Date.now() < end;) {
                for (const slice = Date.now() + 20; Date.now() < slice;);
                await new Promise((resolve) => setTimeout(resolve, 0));
            }
            return new Response(new TextDecoder().decode(buffer.subarray(0, got ?? 0)));
        });"""
        self.origin.deployments["reader"] = Deployment(code=code)
        self.serve()
        r = self.get("reader")
        self.assertEqual(r.status, 200, r.body)
        lines = r.body.decode().splitlines()
        self.assertTrue(lines, "a ping came within cpu_block_limit")
        self.assertEqual({json.loads(line)["op"] for line in lines}, {"ping"})
        self.assertNotIn(b"nonce", r.body)
        # The ping it took never reaches the harness. The watchdog pings again at its next tick,
        # which the harness answers: the isolate serves on. With one ping out at a time, the
        # next second of CPU time killed it (TIME_LIMIT).
        for _ in range(3):
            r = self.get("reader")
            self.assertEqual(r.status, 200, (r.body, r.header("x-deno-error")))


def process_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "gone"


class Lifecycle(IngressCase):
    def test_sigterm_stops_isolates_and_removes_their_folder(self):
        self.origin.deployments["hello"] = Deployment()
        self.serve(runtime="spare 1;")
        self.assertEqual(self.get("hello").status, 200)
        wait_until(lambda: len(self.deno_children()) == 2, what="isolate and spare")
        children = self.deno_children()
        folder = [d for d in os.listdir("/tmp") if d.startswith("subgate-") and
                  os.path.exists(f"/tmp/{d}/harness.js") and
                  any(os.path.exists(f"/proc/{pid}") and os.readlink(f"/proc/{pid}/cwd").startswith(f"/tmp/{d}/")
                      for pid in children)]
        self.assertEqual(len(folder), 1)
        self.sg.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.sg.proc.wait(15), 0)
        self.assertFalse(any(os.path.exists(f"/proc/{pid}") for pid in children))
        self.assertFalse(os.path.exists(f"/tmp/{folder[0]}"), "the isolate folder is removed")
        self.assertIn("stopped (", self.sg.output())

    def test_isolates_die_with_subgate_even_on_kill_9(self):
        self.origin.deployments["hello"] = Deployment()
        self.serve(runtime="spare 1;")
        self.assertEqual(self.get("hello").status, 200)
        wait_until(lambda: len(self.deno_children()) == 2, what="isolate and spare")
        children = self.deno_children()
        folder = os.path.dirname(os.readlink(f"/proc/{children[0]}/cwd"))  # .../subgate-XXXXXX/iso-N
        self.assertTrue(os.path.exists(os.path.join(folder, "owner.pid")))
        self.sg.proc.send_signal(signal.SIGKILL)
        self.sg.proc.wait(5)

        def gone():
            return all(not os.path.exists(f"/proc/{pid}") or process_state(pid) == "Z" for pid in children)
        wait_until(gone, timeout=5, what="isolates to die with subgate")
        # Nothing in this test removed it; a subgate of a test running in parallel may have (any
        # start removes the folders of dead owners), so only its removal is checked.
        self.serve()  # the next subgate removes the dead one's folder (it listens before that)
        wait_until(lambda: not os.path.exists(folder), timeout=10, what="the orphan folder to go")


if __name__ == "__main__":
    unittest.main()
