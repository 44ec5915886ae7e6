"""A real Prometheus server (Debian's `prometheus`) scrapes subgate's `metrics;` on loopback, and
the test reads back, through Prometheus's HTTP API, a query whose value the test caused: the
CAPACITY_EXCEEDED answers of one deployment, as a count and as a rate. The server loads the
example alert rules subgate ships (conf/prometheus/subgate-alerts.yml), and the test sees them
pass `promtool check rules` and the capacity alert go pending for that deployment."""

import json
import os
import shutil
import subprocess
import tempfile
import threading
import unittest
import urllib.parse
import urllib.error
import urllib.request

import sys
sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, SubgateTestCase, request, wait_until, free_port, port_open  # noqa: E402
from ingress import Origin, Deployment, relay_token, ingress_config  # noqa: E402

# Holds its isolate for 10 s per request (the test ends it sooner by stopping subgate).
SLOW_CODE = """
Deno.serve(async () => {
  await new Promise((r) => setTimeout(r, 10000));
  return new Response("done");
});
"""

REJECTED = 3  # CAPACITY_EXCEEDED answers the test causes
QUERY_COUNT = 'subgate_deployment_errors_total{deployment="slow",code="CAPACITY_EXCEEDED"}'
QUERY_RATE = f"rate({QUERY_COUNT}[1m])"
ALERT_RULES = os.path.join(ROOT, "conf", "prometheus", "subgate-alerts.yml")


class PrometheusServer:
    """A Prometheus process scraping `target` every second, its API on a free loopback port."""

    def __init__(self, binary, target, rules):
        self.dir = tempfile.mkdtemp(prefix="subgate-prometheus-")
        self.port = free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"""
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: ["{rules}"]
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
        check = subprocess.run([shutil.which("promtool") or "promtool", "check", "rules", ALERT_RULES],
                               capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        self.prometheus = PrometheusServer(binary, f"127.0.0.1:{self.metrics_port}", ALERT_RULES)
        self.addCleanup(self.prometheus.stop)

    def get(self):
        token = relay_token("slow", self.origin.rpc_root)
        return request(self.sg.port, path="/",
                       headers={"x-deno-subhost": token, "x-forwarded-host": "example.com"})

    def reject(self, count):
        """`count` requests, each answered CAPACITY_EXCEEDED (the holder keeps the isolate)."""
        for _ in range(count):
            r = self.get()
            self.assertEqual((r.status, r.error()["code"]), (503, "CAPACITY_EXCEEDED"), r.body)

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
        # Its API answers 503 until its storage is open: /-/ready says when.
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.prometheus.port}/-/ready",
                                        timeout=5) as r:
                if r.status != 200:
                    return False
        except (urllib.error.URLError, ConnectionError):
            return False
        targets = self.prometheus.api("targets")["activeTargets"]
        return any(t["health"] == "up" for t in targets)

    def test_prometheus_reads_the_answers_the_test_caused(self):
        wait_until(self.ready, timeout=60, interval=0.2, what="prometheus to scrape subgate")
        # Before any traffic: the series may not exist yet, or be 0.
        self.assertIn(self.prometheus.query(QUERY_COUNT), (None, 0.0))

        # One request holds the deployment's only isolate (isolate_limit 1); the next ones wait
        # 100 ms in the queue and get CAPACITY_EXCEEDED.
        holder = threading.Thread(target=self.get)
        holder.start()
        self.addCleanup(holder.join, 30)
        wait_until(lambda: self.scrape("subgate_isolate_ready_total") == 1, timeout=30,
                   what="the isolate (leased to the first request as it became ready)")
        # A deployment's series appear with its first answer, so the first rejection makes the
        # series (at 1) and the next ones, after Prometheus has seen it, make a rate.
        self.reject(1)
        wait_until(lambda: self.prometheus.query(QUERY_COUNT) == 1, timeout=30,
                   interval=0.25, what="prometheus to see the first answer")
        self.reject(REJECTED - 1)
        wait_until(lambda: self.prometheus.query(QUERY_COUNT) == REJECTED, timeout=30,
                   interval=0.25, what=f"prometheus to see {REJECTED} answers")
        wait_until(lambda: (self.prometheus.query(QUERY_RATE) or 0) > 0, timeout=30,
                   interval=0.25, what="a positive rate of the answers")

        # The shipped rules loaded, and the capacity alert is pending (its `for` is 5m) for the
        # deployment the test overloaded, and for no other.
        groups = self.prometheus.api("rules")["groups"]
        rules = {r["name"]: r for g in groups for r in g["rules"]}
        self.assertEqual(set(rules), {"SubgateDeploymentOverCapacity", "SubgateServerErrors"})
        self.assertTrue(all(r["health"] == "ok" for r in rules.values()), rules)

        def capacity_alerts():
            return [a for a in self.prometheus.api("alerts")["alerts"]
                    if a["labels"]["alertname"] == "SubgateDeploymentOverCapacity"]
        wait_until(lambda: capacity_alerts(), timeout=30, interval=0.25, what="the capacity alert")
        alert, = capacity_alerts()
        self.assertEqual(alert["labels"]["deployment"], "slow")
        self.assertIn(alert["state"], ("pending", "firing"))


if __name__ == "__main__":
    unittest.main()
