"""The status page (`status;` answering a browser) in a real browser, and `subgate status --watch`.

Headless Chromium (Debian's `chromium`, headless_chromium.py) loads the page after the test drove
traffic to two deployments and to one whose code fails to load; the test reads what the page shows
once its script fetched the JSON (deployments, their isolates, the requests by server, the failed
boot, a tenant's identifier shown as text, not markup) and saves a screenshot as an artifact
($SUBGATE_ARTIFACTS_DIR, else test-artifacts/ beside the subgate binary; its path is printed)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import headless_chromium  # noqa: E402
from harness import BIN, SubgateTestCase, request, wait_until, free_port  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402

BROKEN = 'throw new Error("broken on purpose");\n'
# identify() answers the x-user header: a tenant-chosen string the page must show as text.
HOOKS = 'function identify(req) return req.headers["x-user"] end\n'
MARKUP_ID = '<img src=x onerror="document.title=\'pwned\'">'


def artifacts_dir():
    base = os.environ.get("SUBGATE_ARTIFACTS_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(BIN)), "test-artifacts")
    path = os.path.join(base, "status_page")
    os.makedirs(path, exist_ok=True)
    return path


class StatusCase(SubgateTestCase):
    """An ingress serving isolates on @PORT@ and its status location on a port of its own (so
    that reading it does not move the ingress's counts)."""

    def serve(self, deployments, location=""):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments.update(deployments)
        self.status_port = free_port()
        config = ingress_config(location=location) + f"""
            server {{
                listen 127.0.0.1:{self.status_port};
                server_name status.local;
                location = /status {{ status; }}
            }}
        """
        self.sg = self.start_subgate(config)
        self.ingress = f"127.0.0.1:{self.sg.port}"
        self.url = f"http://127.0.0.1:{self.status_port}/status"

    def get(self, deployment, headers=None):
        h = {"x-deno-subhost": relay_token(deployment, self.origin.rpc_root),
             "x-forwarded-host": f"{deployment}.example"}
        h.update(headers or {})
        return request(self.sg.port, path="/", headers=h)

    def status(self):
        r = request(self.status_port, path="/status", headers={"Accept": "application/json"})
        self.assertEqual(r.status, 200, r.body)
        return json.loads(r.body)

    def ingress_counts(self, snapshot):
        for server in snapshot["servers"]:
            if server["server"] == self.ingress:
                return server
        return {}


class StatusPage(StatusCase):
    def setUp(self):
        if not headless_chromium.executable():
            if os.environ.get("CI") == "true":
                self.fail("chromium is missing (scripts/setup.sh test installs Debian's chromium)")
            self.skipTest("chromium is not installed (scripts/setup.sh test)")
        self.dir = tempfile.mkdtemp(prefix="subgate-status-page-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        script = os.path.join(self.dir, "hooks.lua")
        with open(script, "w") as f:
            f.write(HOOKS)
        self.serve({"hello": Deployment(), "world": Deployment(), "broken": Deployment(code=BROKEN)},
                    location=f"lua_script {script};")

    def drive_traffic(self):
        for _ in range(2):
            self.assertEqual(self.get("hello").status, 200)
        self.assertEqual(self.get("hello", {"x-user": MARKUP_ID}).status, 200)
        for _ in range(2):
            self.assertEqual(self.get("world").status, 200)
        broken = self.get("broken")
        self.assertGreaterEqual(broken.status, 500, broken.body)
        self.assertEqual(broken.error()["code"], "DEPLOYMENT_FAILED")

        # Counted once each response ended, just after the client read it.
        def settled():
            snapshot = self.status()
            counts = self.ingress_counts(snapshot)
            failed = [b for b in snapshot["recent_boots"] if b["outcome"] == "failed"]
            return counts.get("2xx") == 5 and counts.get("5xx") == 1 and failed
        wait_until(settled, what="5 2xx, 1 5xx and the failed boot in status")

    def test_the_page_shows_what_the_test_caused(self):
        self.drive_traffic()
        # The charts draw rates: differences of neighbouring history samples, taken every 2 s. A
        # test that ran faster than that had one sample, and no lines to see.
        wait_until(lambda: len(self.status()["history"]["samples"]) >= 2, what="two history samples")
        snapshot = self.status()

        # The same URL: a browser gets the page, with its policy; curl's */* the JSON.
        page = urllib.request.urlopen(urllib.request.Request(
            self.url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}), timeout=10)
        self.assertEqual(page.headers["content-type"], "text/html; charset=utf-8")
        self.assertEqual(page.headers["vary"], "Accept")
        self.assertIn("default-src 'none'", page.headers["content-security-policy"])
        plain = request(self.status_port, path="/status", headers={"Accept": "*/*"})
        self.assertEqual(plain.header("content-type"), "application/json")

        dom = headless_chromium.parse(headless_chromium.dump_dom(self.url))
        body = dom.find("body")
        self.assertEqual(body.attrs.get("data-loaded"), "true",
                         "the page's script did not render the JSON (blocked by its policy?)")
        self.assertEqual(dom.find("span", id="conn").text(), "live")

        rows = {r.attrs["data-deployment"]: r for r in dom.find_all("tr", cls="deployment")}
        self.assertIn("hello", rows)
        self.assertIn("world", rows)
        by_id = {d["deployment_id"]: d for d in snapshot["deployments"]}
        for name in ("hello", "world"):
            row = rows[name]
            self.assertEqual(row.find("td", cls="c-isolates").text(), "1")
            self.assertEqual(row.find("td", cls="c-queued").text(), "0")
            limit = by_id[name]["isolate_limit"]
            self.assertGreater(limit, 0)
            self.assertEqual(row.find("span", cls="c-active-value").text(), f"0 / {limit}")
        self.assertEqual(rows["hello"].find("td", cls="c-sticky").text(), "1")

        # The tenant's identifier is text on the page, never an element.
        identifiers = [c.text() for c in dom.find_all("span", cls="c-identifier")]
        self.assertTrue(any(MARKUP_ID in text for text in identifiers), identifiers)
        self.assertIsNone(dom.find("img"))
        self.assertNotEqual(dom.find("title").text(), "pwned")

        servers = {r.attrs["data-server"]: r for r in dom.find_all("tr", cls="server")}
        self.assertIn(self.ingress, servers)
        self.assertEqual(servers[self.ingress].find("td", cls="c-2xx").text(), "5")
        self.assertEqual(servers[self.ingress].find("td", cls="c-5xx").text(), "1")
        self.assertEqual(servers[self.ingress].find("td", cls="c-4xx").text(), "0")

        boots = dom.find_all("tr", cls="boot")
        failed = [b for b in boots if "failed" in b.classes()]
        self.assertEqual([b.attrs["data-deployment"] for b in failed], ["broken"])
        self.assertEqual(failed[0].find("td", cls="c-error").text(), "DEPLOYMENT_FAILED")
        self.assertIn("broken on purpose", failed[0].find("td", cls="c-message").text())
        ready = sorted(b.attrs["data-deployment"] for b in boots if "ok" in b.classes())
        self.assertEqual(ready, ["hello", "world"])
        self.assertEqual(dom.find(id="total-boot-failures").text(), "1")
        self.assertEqual(dom.find(id="total-ready").text(), "2")
        # The charts were drawn from the history (a line per series).
        self.assertEqual(len(dom.find("svg", id="chart-requests").find_all("polyline")), 4)

        path = os.path.join(artifacts_dir(), "status_page.png")
        headless_chromium.screenshot(self.url, path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        print(f"\nstatus page screenshot: {path}", file=sys.stderr)


class StatusWatch(StatusCase):
    def test_watch_prints_one_table_per_interval(self):
        self.serve({"hello": Deployment()})
        for _ in range(3):
            self.assertEqual(self.get("hello").status, 200)
        wait_until(lambda: self.ingress_counts(self.status()).get("2xx") == 3, what="3 2xx counted")
        out = subprocess.run([BIN, "status", "--watch", "--interval", "0.2", "--count", "2", self.url],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn("\x1b", out.stdout, "no escape codes when stdout is not a terminal")
        tables = out.stdout.split("\n\n" + "subgate status  ")
        self.assertEqual(len(tables), 2, out.stdout)
        for table in tables:
            self.assertIn(self.url, table)
            lines = table.splitlines()
            header = next(i for i, line in enumerate(lines) if line.startswith("DEPLOYMENT"))
            self.assertEqual(lines[header].split(), ["DEPLOYMENT", "ISOLATES", "ACTIVE/LIMIT",
                                                     "QUEUED", "STICKY"])
            hello = lines[header + 1].split()
            self.assertEqual(hello[0], "hello")
            self.assertEqual(hello[1], "1")
            self.assertEqual(hello[2].split("/")[0], "0")
            self.assertEqual(lines[header + 2].split()[0], "TOTAL")
            self.assertRegex(table, r"requests (\d+\.\d\d|-)/s")
        self.assertIn(" since start ", tables[0])

    def test_watch_arguments(self):
        def status(*args):
            return subprocess.run([BIN, "status", *args], capture_output=True, text=True, timeout=15)
        for args in (["--interval", "1"], ["--watch", "--interval", "0"], ["--watch", "--interval", "x"],
                     ["--watch", "--count", "0"], ["--watch", "--interval"], ["--bogus"]):
            out = status(*args)
            self.assertEqual(out.returncode, 2, args)
            self.assertIn("usage", out.stderr)
        # An unreachable server: the error in place of the table, and the watch goes on.
        port = free_port()
        out = status("--watch", "--interval", "0.1", "--count", "2", f"http://127.0.0.1:{port}/status")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(out.stdout.count("subgate status: "), 2, out.stdout)


if __name__ == "__main__":
    unittest.main()
