"""Isolate clusters (issue: broadcast, emit, whisper and gossip between the isolates of a
deployment): the shipped chat and counter examples (conf/deployments) run in real isolates behind
subgate, driven by real WebSocket clients (Deno's). identify() names each member from ?name=, and
isolate_limit 2 spreads six members over three isolates."""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import BIN, SubgateTestCase, request  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402
from test_websockets import WsClient  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def example(name):
    with open(os.path.join(ROOT, "conf", "deployments", name, "main.ts")) as f:
        return f.read()


# The chat example, except that an isolate with a member named "sleepy" never answers gossip.
SLEEPY_CHAT = example("chat") + """
const answerWho = subgate.ongossip;
subgate.ongossip = (message) => members.has("sleepy") ? new Promise(() => {}) : answerWho(message);
"""

IDENTIFY = """
function identify(req)
    return req.query.name
end
"""


class ClusterCase(SubgateTestCase):
    limit = 2
    runtime = ""

    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["chat"] = Deployment(code=example("chat"))
        self.origin.deployments["sleepy"] = Deployment(code=SLEEPY_CHAT)
        self.origin.deployments["counter"] = Deployment(code=example("counter"))
        d = tempfile.mkdtemp(prefix="subgate-cluster-")
        self.addCleanup(shutil.rmtree, d, True)
        script = os.path.join(d, "identify.lua")
        with open(script, "w") as f:
            f.write(IDENTIFY)
        self.sg = self.start_subgate(ingress_config(
            runtime=self.runtime, location=f"isolate_limit {self.limit}; lua_script {script};",
            server="location = /status { status; }"))

    def join(self, name=None, deployment="chat", query="", headers=None):
        """A connected member and its welcome message (chat) or None (counter)."""
        h = {"x-deno-subhost": relay_token(deployment, self.origin.rpc_root), "x-forwarded-host": "chat.example"}
        h.update(headers or {})
        params = [p for p in (f"name={name}" if name else "", query) if p]
        c = WsClient(f"ws://127.0.0.1:{self.sg.port}/ws" + ("?" + "&".join(params) if params else ""), h)
        self.addCleanup(c.stop)
        c.expect("open")
        return c, (next_json(c) if deployment != "counter" else None)

    def status(self):
        return json.loads(request(self.sg.port, path="/status").body)


def next_json(client, timeout=15.0):
    return json.loads(client.expect("message", timeout)["data"])


def said(client, sender, text):
    message = next_json(client)
    assert message.get("type") == "message" and (message["from"], message["text"]) == (sender, text), message
    return message


class SixMembersOnThreeIsolates(ClusterCase):
    def test_broadcast_emit_whisper_and_gossip(self):
        names = [f"u{i}" for i in range(1, 7)]
        members = {}
        isolate_of = {}
        for name in names:  # one at a time: placement fills an isolate (limit 2) before the next
            members[name], welcome = self.join(name)
            self.assertEqual(welcome["uid"], name)
            isolate_of[name] = welcome["isolate"]
        self.assertEqual(isolate_of["u1"], isolate_of["u2"])
        self.assertEqual(isolate_of["u3"], isolate_of["u4"])
        self.assertEqual(isolate_of["u5"], isolate_of["u6"])
        self.assertEqual(len(set(isolate_of.values())), 3)
        u1, u3, u5 = members["u1"], members["u3"], members["u5"]

        # broadcast reaches all six, on every isolate
        u1.send("hello all")
        for c in members.values():
            said(c, "u1", "hello all")
        self.assertEqual(next_json(u1), {"type": "receipt", "command": "say", "delivered": 6, "isolates": 2,
                                         "failed": 0, "timedOut": 0})

        # emit reaches the two members of u1's isolate only
        u1.send("/local just us")
        for name in ("u1", "u2"):
            self.assertTrue(said(members[name], "u1", "just us")["local"])
        self.assertEqual(next_json(u1)["delivered"], 2)
        u3.send("marker one")  # everyone's next message: the others never got "just us"
        for c in members.values():
            said(c, "u3", "marker one")
        self.assertEqual(next_json(u3)["delivered"], 6)

        # whisper reaches exactly one member, on another isolate
        u1.send("/to u5 psst")
        self.assertTrue(said(u5, "u1", "psst")["private"])
        receipt = next_json(u1)
        self.assertEqual((receipt["command"], receipt["delivered"], receipt["isolates"]), ("to", 1, 1))
        u3.send("marker two")
        for c in members.values():
            said(c, "u3", "marker two")
        next_json(u3)

        # gossip: the two sibling isolates answer
        u1.send("/who")
        who = next_json(u1)
        self.assertEqual(who["here"], ["u1", "u2"])
        self.assertEqual(sorted(who["siblings"]), [["u3", "u4"], ["u5", "u6"]])
        self.assertFalse(who["partial"])

        # The same counts through `subgate status`.
        shown = subprocess.run([BIN, "status", f"http://127.0.0.1:{self.sg.port}/status"], capture_output=True,
                               text=True, timeout=10, check=True).stdout
        cluster = json.loads(shown)["cluster"]
        self.assertEqual((cluster["broadcasts"], cluster["whispers"], cluster["gossips"]), (3, 1, 1))
        # Connections reached on siblings: 4 + 4 (markers and hello) + 4 + 1 (whisper).
        self.assertEqual(cluster["deliveries"], 13)
        self.assertEqual((cluster["answers"], cluster["failed"], cluster["timed_out"], cluster["rejected"]),
                         (2, 0, 0, 0))
        chat = json.loads(shown)["deployments"][0]["cluster"]
        self.assertEqual((chat["members"], chat["identifiers"], chat["deliveries"]), (3, 6, 13))

    def test_a_member_leaving_is_no_longer_whispered_to(self):
        a, _ = self.join("a")
        b, _ = self.join("b")
        c, _ = self.join("c")  # another isolate
        c.close()
        c.expect("close")
        for attempt in range(50):  # the leave report races with our whisper; bounded retries
            a.send("/to c anyone there")
            receipt = next_json(a)
            if receipt["delivered"] == 0:
                break
            time.sleep(0.1)
        self.assertEqual((receipt["delivered"], receipt["isolates"]), (0, 0))


class SlowSibling(ClusterCase):
    runtime = "cluster_timeout 1s;"

    def test_gossip_returns_the_others_when_a_sibling_hangs(self):
        deployment = "sleepy"
        a, _ = self.join("a", deployment)
        b, _ = self.join("b", deployment)
        sleepy, _ = self.join("sleepy", deployment)
        c, _ = self.join("c", deployment)
        d, _ = self.join("d", deployment)
        started = time.monotonic()
        d.send("/who")
        who = next_json(d)
        elapsed = time.monotonic() - started
        self.assertEqual(who["here"], ["d"])
        self.assertEqual(who["siblings"], [["a", "b"]])
        self.assertTrue(who["partial"])
        self.assertLess(elapsed, 5.0, "gossip waits at most cluster_timeout for a sibling")
        cluster = self.status()["cluster"]
        self.assertEqual((cluster["answers"], cluster["timed_out"]), (1, 1))
        # The hung sibling still serves its members.
        sleepy.send("still here")
        said(sleepy, "sleepy", "still here")

    def test_a_message_over_the_report_limit_is_dropped_and_the_next_one_passes(self):
        a, _ = self.join("a")
        b, _ = self.join("b")
        c, _ = self.join("c")  # another isolate
        big = "x" * (1100 * 1024)  # its report line is over subgate's 1 MiB bound
        a.send(big)
        said(a, "a", big)  # delivered locally
        said(b, "a", big)
        receipt = next_json(a, timeout=20)  # the harness gives up after cluster_timeout + 2 s
        self.assertEqual((receipt["delivered"], receipt["isolates"], receipt["timedOut"]), (2, 0, 1))
        a.send("small")
        for member in (a, b, c):
            said(member, "a", "small")  # c never saw the big one
        self.assertEqual(next_json(a)["delivered"], 3)


class Isolation(ClusterCase):
    def test_a_client_cannot_take_another_identifier(self):
        victim, _ = self.join("victim")
        sender, _ = self.join("sender")
        # The header that names a connection's identifier inside the cluster is subgate's own.
        forged = {"x-subgate-uid": "victim"}
        named, welcome = self.join("mallory", headers=forged)
        self.assertEqual(welcome["uid"], "mallory")
        anonymous, welcome = self.join(headers=forged)
        self.assertNotEqual(welcome["uid"], "victim")
        sender.send("/to victim secret")
        said(victim, "sender", "secret")
        self.assertEqual(next_json(sender)["delivered"], 1)
        sender.send("marker")
        for c in (named, anonymous):
            said(c, "sender", "marker")  # their next message: they never got the secret
        self.assertEqual(self.status()["cluster"]["rejected"], 0)

    def test_identifiers_outside_printable_ascii_arrive_whole(self):
        # subgate percent-encodes identify()'s answer into x-subgate-uid; the harness decodes it.
        _, welcome = self.join("a%20b%0Ac")  # a space and a control character
        self.assertEqual(welcome["uid"], "a b\nc")
        odd, welcome = self.join("caf%C3%A9%25")  # not ASCII, and the escape character itself
        self.assertEqual(welcome["uid"], "caf\u00e9%")
        sender, _ = self.join("sender")
        sender.send("/to caf\u00e9% hi")
        said(odd, "sender", "hi")
        self.assertEqual(next_json(sender)["delivered"], 1)

    def test_status_command_errors(self):
        def status(*args):
            return subprocess.run([BIN, "status", *args], capture_output=True, text=True, timeout=15)
        out = status("a", "b")
        self.assertEqual(out.returncode, 2)
        self.assertIn("usage", out.stderr)
        self.assertEqual(status("not a url").returncode, 2)
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        out = status(f"http://127.0.0.1:{port}/status")
        self.assertEqual(out.returncode, 1)
        self.assertIn("127.0.0.1", out.stderr)
        out = status(f"http://127.0.0.1:{self.sg.port}/no-status-here")  # answered, not JSON
        self.assertEqual(out.returncode, 1)
        self.assertIn("answered", out.stderr)

    def test_dedicated_isolates_are_not_part_of_the_cluster(self):
        shared, _ = self.join("shared")
        other, _ = self.join("other")
        solo, _ = self.join("solo", query="deno_isolate_instance_id=room-1")
        solo.send("alone")
        said(solo, "solo", "alone")
        receipt = next_json(solo)
        self.assertEqual((receipt["delivered"], receipt["isolates"]), (1, 0))
        shared.send("/who")
        who = next_json(shared)
        self.assertEqual((who["here"], who["siblings"]), (["other", "shared"], []))
        shared.send("everyone")
        said(shared, "shared", "everyone")
        said(other, "shared", "everyone")
        receipt = next_json(shared)
        self.assertEqual((receipt["delivered"], receipt["isolates"]), (2, 0))


class CounterExample(ClusterCase):
    limit = 1

    def test_counts_and_leaderboard_across_isolates(self):
        alice, _ = self.join("alice", "counter")
        bob, _ = self.join("bob", "counter")
        for _ in range(2):
            alice.send('{"type": "+1"}')
        bob.send('{"type": "+1"}')
        for c in (alice, bob):
            seen = [c.expect("message")["data"] for _ in range(3)]
            self.assertEqual(sorted(seen), sorted(['"alice" now has 1', '"alice" now has 2', '"bob" now has 1']))
        bob.send('{"type": "refresh:leaderboard"}')
        for c in (alice, bob):
            board = next_json(c)
            self.assertEqual(board["leaders"], [["alice", 2], ["bob", 1]])
            self.assertFalse(board["partial"])


if __name__ == "__main__":
    unittest.main()
