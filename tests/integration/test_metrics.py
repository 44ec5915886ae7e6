"""`metrics;`: the Prometheus text a scrape gets after real traffic (requests by server and status
class, the isolate pool's counters), checked by value and by `promtool check metrics`."""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, request, wait_until, free_port  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')


def parse(text):
    """{(name, labels text): value} of every sample."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, line
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    return samples


def requests_of(samples, server, code):
    return samples.get(("subgate_http_requests_total", f'{{server="{server}",code="{code}"}}'), 0)


class Metrics(SubgateTestCase):
    def setUp(self):
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["hello"] = Deployment()
        self.metrics_port = free_port()
        # The ingress (no server_name: counted by its listen address) and, apart, the scrape's
        # own server, so that scraping does not move the counts under test.
        config = ingress_config(server="location = /missing { return 404; }") + f"""
            server {{
                listen 127.0.0.1:{self.metrics_port};
                server_name metrics.local;
                location = /metrics {{ metrics; }}
            }}
        """
        self.sg = self.start_subgate(config)
        self.ingress = f"127.0.0.1:{self.sg.port}"

    def scrape(self):
        r = request(self.metrics_port, path="/metrics")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.header("content-type"), CONTENT_TYPE)
        text = r.body.decode()
        self.promtool(text)
        return text, parse(text)

    def promtool(self, text):
        tool = shutil.which("promtool")
        if not tool:
            if os.environ.get("CI") == "true":
                self.fail("promtool is missing (scripts/setup.sh test installs Debian's prometheus)")
            return  # checked by value only; the promtool check runs where it is installed
        check = subprocess.run([tool, "check", "metrics"], input=text, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr + "\n" + text)

    def test_counts_what_the_test_caused(self):
        _, before = self.scrape()
        self.assertEqual(requests_of(before, self.ingress, "2xx"), 0)
        self.assertEqual(before[("subgate_isolate_boots_total", "")], 0)
        self.assertEqual(before[("subgate_isolates", "")], 0)

        token = relay_token("hello", self.origin.rpc_root)
        headers = {"x-deno-subhost": token, "x-forwarded-host": "example.com"}
        for _ in range(3):
            r = request(self.sg.port, path="/", headers=headers)
            self.assertEqual(r.status, 200, r.body)
        for _ in range(2):
            self.assertEqual(request(self.sg.port, path="/missing").status, 404)

        # A request is counted once its response ended, just after the client read it.
        def counted():
            _, now = self.scrape()
            return (requests_of(now, self.ingress, "2xx"), requests_of(now, self.ingress, "4xx"))
        wait_until(lambda: counted() == (3, 2), what="3 2xx and 2 4xx counted")

        text, after = self.scrape()
        self.assertEqual(requests_of(after, self.ingress, "5xx"), 0)
        self.assertGreaterEqual(requests_of(after, "metrics.local", "2xx"), 2)  # the scrapes
        self.assertEqual(after[("subgate_isolate_boots_total", "")], 1)
        self.assertEqual(after[("subgate_isolate_boot_failures_total", "")], 0)
        self.assertEqual(after[("subgate_isolate_deployments", "")], 1)
        self.assertEqual(after[("subgate_isolates", "")], 1)
        self.assertEqual(after[("subgate_isolate_ready_total", "")], 1)
        self.assertGreaterEqual(after[("subgate_isolate_processes_started_total", "")], 1)
        # The same token three times: the first verifies it, the others hit the worker's cache
        # (each worker verifies it once).
        self.assertGreaterEqual(after[("subgate_token_cache_hits_total", "")], 1)
        for reason in ("idle", "lru"):
            self.assertEqual(after[("subgate_isolate_evictions_total", f'{{reason="{reason}"}}')], 0)
        for family in ("subgate_cluster_broadcasts_total", "subgate_events_sent_total",
                       "subgate_events_queued"):
            self.assertIn(f"# TYPE {family} ", text)


if __name__ == "__main__":
    unittest.main()
