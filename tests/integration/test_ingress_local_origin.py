"""The built-in origin (origin_local) serving conf/deployments, and `subgate token`: the setup
the README's first command runs, on free ports."""

import gzip
import json
import os
import shutil
import subprocess
import tempfile
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, request, wait_until, ROOT, BIN, free_port  # noqa: E402
from ingress import relay_token, sign  # noqa: E402


def origin_events(port, deployment):
    """GET /events of origin_local: the events it kept for `deployment`."""
    r = request(port, path=f"/events?deployment_id={deployment}")
    assert r.status == 200, r.body
    return json.loads(r.body)["events"]

SECRET = "local-origin-test-secret-0123"


class LocalOrigin(SubgateTestCase):
    def setUp(self):
        self.origin_port = free_port()
        config = f"""
            workers 2;
            subhoster local {{ secret "{SECRET}"; rpc_root_allow http://127.0.0.1:{self.origin_port}/; events on; }}
            runtime deno {{ spare 1; events_flush_interval 50ms; }}
            server {{
                listen 127.0.0.1:@PORT@;
                location / {{ forwarded_host on; subhost_auth on; isolates; }}
            }}
            server {{
                listen 127.0.0.1:{self.origin_port};
                location / {{ origin_local {ROOT}/conf/deployments; }}
            }}
        """
        self.sg = self.start_subgate(config)

    def token(self, deployment):
        out = subprocess.run([BIN, "-c", self.sg.conf_path, "token", "--subhoster", "local", "--deployment", deployment],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr)
        return out.stdout.strip()

    def get(self, deployment, headers=None, token=None):
        h = {"x-deno-subhost": token or self.token(deployment), "x-forwarded-host": "demo.example"}
        h.update(headers or {})
        return request(self.sg.port, headers=h)

    def test_hello_with_envs(self):
        r = self.get("hello")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b"Hello from https://demo.example/", r.body)
        self.assertIn(b"envs from conf/deployments/hello/config.json", r.body)

    def test_instance_id_example_prints_five_lines(self):
        token = self.token("instance-id")
        lines = self.get("instance-id", {"x-deno-isolate-instance-id": "foo"}, token).body.decode().strip().split("\n")
        self.assertEqual([line.split(":")[0] for line in lines],
                         ["x-deno-isolate-instance-id", "Start time", "Uptime", "Random global", "Counter"])
        self.assertEqual(lines[0], "x-deno-isolate-instance-id: foo")
        again = self.get("instance-id", {"x-deno-isolate-instance-id": "foo"}, token).body.decode()
        self.assertIn(lines[3], again)
        self.assertIn("Counter: 1", again)

    def test_a_folder_of_modules_is_served_as_one_eszip(self):
        r = self.get("multi-module")
        self.assertEqual(r.status, 200, r.body)
        lines = r.body.decode().strip().split("\n")
        self.assertEqual(lines[0], "Hello from demo.example: the multi-module example, three modules in one ESZIP "
                                   "(this one is file:///src/lib/greet.ts)")
        self.assertEqual(lines[1], "main module: file:///src/main.ts")
        # What the origin answered: an ESZIP of the folder's modules, config.json aside.
        claims_token = sign({"deployment_id": "multi-module", "iat": int(time.time()),
                             "exp": int(time.time()) + 60}, SECRET, kid="local")
        boot = request(self.origin_port, path="/boot?deployment_id=multi-module",
                       headers={"authorization": "Bearer " + claims_token})
        self.assertEqual(boot.status, 200)
        self.assertEqual(boot.header("content-type"), "application/vnd.denoland.eszip")
        self.assertTrue(boot.body.startswith(b"ESZIP"))
        for name in (b"file:///src/main.ts", b"file:///src/lib/greet.ts", b"file:///src/site.json"):
            self.assertIn(name, boot.body)
        self.assertNotIn(b"file:///src/config.json", boot.body)
        # A one-file folder is still one module.
        boot = request(self.origin_port, path="/boot?deployment_id=hello",
                       headers={"authorization": "Bearer " + sign({"deployment_id": "hello", "iat": int(time.time()),
                                                                   "exp": int(time.time()) + 60}, SECRET, kid="local")})
        self.assertTrue(boot.body.startswith(b"// The smallest deployment"))

    def test_unknown_deployment(self):
        r = self.get("no-such-deployment")
        self.assertEqual((r.status, r.error()["code"]), (404, "DEPLOYMENT_NOT_FOUND"))

    def test_origin_checks_its_bearer_token(self):
        base = f"http://127.0.0.1:{self.origin_port}"
        r = request(self.origin_port, path="/boot?deployment_id=hello")
        self.assertEqual(r.status, 401)
        forged = relay_token("hello", base + "/", secret="not-the-secret-0123456789", kid="local")
        r = request(self.origin_port, path="/boot?deployment_id=hello", headers={"authorization": "Bearer " + forged})
        self.assertEqual(r.status, 401)
        good = relay_token("hello", base + "/", secret=SECRET, kid="local")
        r = request(self.origin_port, path="/boot?deployment_id=hello", headers={"authorization": "Bearer " + good})
        self.assertEqual(r.status, 200)
        self.assertIn("x-deno-config", {k.lower() for k, _ in r.headers})
        r = request(self.origin_port, path="/boot?deployment_id=instance-id", headers={"authorization": "Bearer " + good})
        self.assertEqual(r.status, 403, "a token for another deployment")
        r = request(self.origin_port, path="/boot?deployment_id=../etc", headers={"authorization": "Bearer " + good})
        self.assertEqual(r.status, 400)

    def test_events_round_trip(self):
        r = self.get("hello")
        self.assertEqual(r.status, 200, r.body)
        wait_until(lambda: any(e["event_type"] == "boot" for e in origin_events(self.origin_port, "hello")),
                   what="the boot event at the origin")
        [boot] = [e for e in origin_events(self.origin_port, "hello") if e["event_type"] == "boot"]
        self.assertEqual((boot["deployment_id"], boot["region"]), ("hello", "local"))
        self.assertGreater(boot["event"]["boot_time"], 0)
        self.assertEqual(origin_events(self.origin_port, "instance-id"), [])
        # What subgate posts, by hand: a token without deployment_id, gzip'd NDJSON.
        now = int(time.time())
        line = json.dumps({"deployment_id": "by-hand", "timestamp": "2026-12-06T23:50:45.123Z",
                           "event_type": "log", "event": {"msg": "hi", "level": "info"},
                           "execution_id": "x", "region": "local"}) + "\n"
        body = gzip.compress(line.encode())
        headers = {"content-encoding": "gzip", "content-type": "application/x-ndjson"}
        good = sign({"iat": now, "exp": now + 60}, secret=SECRET, kid="local")
        r = request(self.origin_port, method="POST", path="/events", body=body,
                    headers={**headers, "authorization": "Bearer " + good})
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual([e["event"]["msg"] for e in origin_events(self.origin_port, "by-hand")], ["hi"])
        boot_token = sign({"iat": now, "exp": now + 60, "deployment_id": "by-hand"}, secret=SECRET, kid="local")
        forged = sign({"iat": now, "exp": now + 60}, secret="not-the-secret-0123456789", kid="local")
        for token in (boot_token, forged):
            r = request(self.origin_port, method="POST", path="/events", body=body,
                        headers={**headers, "authorization": "Bearer " + token})
            self.assertEqual(r.status, 401, r.body)

    def test_token_command_errors(self):
        out = subprocess.run([BIN, "-c", self.sg.conf_path, "token", "--subhoster", "nobody", "--deployment", "x"],
                             capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 1)
        self.assertIn("no subhoster", out.stderr)
        out = subprocess.run([BIN, "token", "--deployment"], capture_output=True, text=True, timeout=10)
        self.assertEqual(out.returncode, 2)


class ShippedConfig(SubgateTestCase):
    """conf/subgate.conf itself, on free ports: the demo listener routes by path with
    lua/demo.lua (no token), the status endpoint shows the pool and /metrics the metrics."""

    def setUp(self):
        with open(os.path.join(ROOT, "conf", "subgate.conf")) as f:
            text = f.read()
        self.ports = {old: free_port() for old in ("8000", "8080", "8081")}
        for old, new in self.ports.items():
            text = text.replace(f"127.0.0.1:{old}", f"127.0.0.1:{new}")
        text = text.replace("lua/demo.lua", os.path.join(ROOT, "lua", "demo.lua"))
        text = text.replace("conf/deployments", os.path.join(ROOT, "conf", "deployments"))
        self.sg = self.start_subgate(text, port=self.ports["8080"])

    def test_demo_routes_by_path_without_a_token(self):
        demo = self.ports["8000"]
        r = request(demo, path="/hello/")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b'Hello from http://test/ (deployment "hello"', r.body)  # plain HTTP here
        r = request(demo, path="/hello")
        self.assertEqual((r.status, r.header("location")), (308, "/hello/"))
        r = request(demo, path="/")
        self.assertIn(b"subgate demo", r.body)
        r = request(demo, path="/no-such-deployment/")
        self.assertEqual((r.status, r.error()["code"]), (404, "DEPLOYMENT_NOT_FOUND"))
        r = request(self.ports["8081"], path="/status")
        self.assertEqual(r.status, 200)
        snapshot = json.loads(r.body)
        hello = [d for d in snapshot["deployments"] if d["deployment_id"] == "hello"]
        self.assertEqual(len(hello), 1)
        self.assertEqual([i["active"] for i in hello[0]["isolates"]], [0])
        self.assertEqual(hello[0]["sticky"], 1, "demo.lua identifies by client address")
        # The default config turns events on: the origin shows them.
        wait_until(lambda: any(e["event_type"] == "boot" for e in origin_events(self.ports["8081"], "hello")),
                   what="the boot event at the built-in origin")
        # And serves its metrics beside the status.
        r = request(self.ports["8081"], path="/metrics")
        self.assertEqual(r.status, 200, r.body)
        self.assertIn(b'subgate_deployment_requests_total{deployment="hello"', r.body)

    def test_demo_chat_room(self):
        from test_websockets import WsClient
        demo = self.ports["8000"]
        r = request(demo, path="/chat/")
        self.assertEqual(r.status, 200)
        self.assertIn(b"subgate chat", r.body)
        members = {}
        for name in ("alice", "bob"):
            members[name] = WsClient(f"ws://127.0.0.1:{demo}/chat/ws?name={name}")
            self.addCleanup(members[name].stop)
            members[name].expect("open")
            welcome = json.loads(members[name].expect("message")["data"])
            self.assertEqual(welcome["uid"], name, "demo.lua names members from ?name=")
        members["alice"].send("hi bob")
        for c in members.values():
            message = json.loads(c.expect("message")["data"])
            self.assertEqual((message["from"], message["text"]), ("alice", "hi bob"))
        members["bob"].send("/who")
        who = json.loads(members["bob"].expect("message")["data"])
        self.assertEqual((who["type"], who["here"]), ("who", ["alice", "bob"]))



class LocalOriginFiles(SubgateTestCase):
    """origin_local reads only regular files: a FIFO where main.ts should be would block a read
    until a writer came, and the worker serving /boot with it."""

    def test_a_fifo_as_main_ts_is_no_deployment_and_blocks_nothing(self):
        folder = tempfile.mkdtemp(prefix="subgate-origin-")
        self.addCleanup(shutil.rmtree, folder, True)
        os.mkdir(os.path.join(folder, "fifo"))
        os.mkfifo(os.path.join(folder, "fifo", "main.ts"))
        os.mkdir(os.path.join(folder, "hello"))
        with open(os.path.join(folder, "hello", "main.ts"), "w") as f:
            f.write("Deno.serve(() => new Response('hi'));\n")
        sg = self.start_subgate(f"""
            workers 1;
            subhoster local {{ secret "{SECRET}"; }}
            server {{
                listen 127.0.0.1:@PORT@;
                location / {{ origin_local {folder}; }}
            }}
        """)
        base = f"http://127.0.0.1:{sg.port}/"
        for deployment, status in (("fifo", 404), ("hello", 200)):
            token = relay_token(deployment, base, secret=SECRET, kid="local")
            r = request(sg.port, path=f"/boot?deployment_id={deployment}",
                        headers={"authorization": "Bearer " + token})
            self.assertEqual(r.status, status, r.body)

if __name__ == "__main__":
    unittest.main()
