"""A real Prometheus server (Debian's `prometheus`) scrapes subgate's `metrics;` on loopback, and
the test reads back, through Prometheus's HTTP API, a query whose value the test caused: the
CAPACITY_EXCEEDED answers of one deployment, as a count and as a rate."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse
import urllib.request

import sys
sys.path.insert(0, os.path.dirname(__file__))
from harness import SubgateTestCase, request, wait_until, free_port, port_open  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402

# Holds its isolate for 4 s per request.
SLOW_CODE = """
Deno.serve(async () => {
  await new Promise((r) => setTimeout(r, 4000));
  return new Response("done");
});
"""

REJECTED = 3  # CAPACITY_EXCEEDED answers the test causes
QUERY_COUNT = 'sum(subgate_http_requests_total{server="ingress.local",code="5xx"})'
QUERY_RATE = 'sum(rate(subgate_http_requests_total{server="ingress.local",code="5xx"}[1m]))'


class PrometheusServer:
    """A Prometheus process scraping `target` every second, its API on a free loopback port."""

    def __init__(self, binary, target):
        self.dir = tempfile.mkdtemp(prefix="subgate-prometheus-")
        self.port = free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
scrape_configs:
  - job_name: subgate
    static_configs:
      - targets: ["{target}"]
""")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir)

    def output(self):
        with open(os.path.join(self.dir, "prometheus.log"), errors="replace") as f:
            return f.read()

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr):
        """The value of an instant query with one (or no) sample; None when it has none."""
        result = self.api("query", query=expr)["result"]
        if not result:
            return None
        return float(result[0]["value"][1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class RealPrometheus(SubgateTestCase):
    def setUp(self):
        binary = shutil.which("prometheus")
        if not binary:
            if os.environ.get("CI") == "true":
                self.fail("prometheus is missing (scripts/setup.sh test installs Debian's prometheus)")
            self.skipTest("no prometheus binary")
        self.origin = Origin()
        self.addCleanup(self.origin.stop)
        self.origin.deployments["slow"] = Deployment(code=SLOW_CODE)
        self.metrics_port = free_port()
        config = ingress_config(
            runtime="max_isolates_per_deployment 1; queue_timeout 100ms;",
            location="isolate_limit 1;",
            server="server_name ingress.local;") + f"""
            server {{
                listen 127.0.0.1:{self.metrics_port};
                server_name metrics.local;
                location = /metrics {{ metrics; }}
            }}
        """
        self.sg = self.start_subgate(config)
        self.prometheus = PrometheusServer(binary, f"127.0.0.1:{self.metrics_port}")
        self.addCleanup(self.prometheus.stop)

    def get(self):
        token = relay_token("slow", self.origin.rpc_root)
        return request(self.sg.port, path="/",
                       headers={"x-deno-subhost": token, "x-forwarded-host": "example.com"})

    def scrape(self, name):
        """One unlabelled sample of subgate's own scrape."""
        for line in request(self.metrics_port, path="/metrics").body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def ready(self):
        if self.prometheus.proc.poll() is not None:
            raise AssertionError("prometheus exited: " + self.prometheus.output())
        if not port_open(self.prometheus.port):
            return False
        targets = self.prometheus.api("targets")["activeTargets"]
        self.last_targets = targets
        return any(t["health"] == "up" for t in targets)

    def test_prometheus_reads_the_answers_the_test_caused(self):
        wait_until(self.ready, timeout=60, interval=0.2, what="prometheus to scrape subgate")
        # Before any traffic: the series may not exist yet, or be 0.
        self.assertIn(self.prometheus.query(QUERY_COUNT), (None, 0.0))

        # One request holds the deployment's only isolate (isolate_limit 1); the next ones wait
        # 100 ms in the queue and get CAPACITY_EXCEEDED.
        results = []
        holder = threading.Thread(target=lambda: results.append(self.get()))
        holder.start()
        self.addCleanup(holder.join, 30)
        wait_until(lambda: self.scrape("subgate_isolate_ready_total") == 1, timeout=30,
                   what="the isolate (leased to the first request as it became ready)")
        rejected = 0
        deadline = time.monotonic() + 30
        while rejected < REJECTED and time.monotonic() < deadline:
            r = self.get()
            if r.status == 503:
                self.assertEqual(r.error()["code"], "CAPACITY_EXCEEDED")
                rejected += 1
            else:
                self.assertEqual(r.status, 200, r.body)  # the holder's lease came later: again
        self.assertEqual(rejected, REJECTED)
        holder.join(30)

        wait_until(lambda: self.prometheus.query(QUERY_COUNT) == REJECTED, timeout=30,
                   interval=0.25, what=f"prometheus to see {REJECTED} answers")
        # Two samples of the counter are enough for rate(): positive while they are in the window.
        wait_until(lambda: (self.prometheus.query(QUERY_RATE) or 0) > 0, timeout=30,
                   interval=0.25, what="a positive rate of the answers")


if __name__ == "__main__":
    unittest.main()
