#!/usr/bin/env python3
"""Broadcast fan-out latency in an isolate cluster (issue: isolate clusters; docs/cluster.md).

    bench/cluster_bench.py          (after scripts/setup.sh build bench runtime; builds release)

subgate (release build, workers 2) serves one deployment whose handler accepts WebSockets with
subgate.connect() and broadcasts every "b ..." message it receives. A Deno client
(bench/ws_fanout_client.js) opens CONNECTIONS sockets (default 1000) with isolate_limit
CONNECTIONS/ISOLATES, so they spread over ISOLATES isolates (default 10), then ROUNDS times
(default 200) has one member broadcast and measures the time from its send to the last of the
CONNECTIONS deliveries, all seen by the same client process. Prints p50, p90, p99 and max.

There is no nginx or HAProxy figure: neither has a cluster to compare with. The client's own
event loop is part of each sample (it receives all 1000 messages).
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (processes, ports, CPU time, nginx)
import ingress_bench as ib  # noqa: E402

CONNECTIONS = int(os.environ.get("CONNECTIONS", "1000"))
ISOLATES = int(os.environ.get("ISOLATES", "10"))
ROUNDS = int(os.environ.get("ROUNDS", "200"))
HERE = os.path.dirname(os.path.abspath(__file__))

FANOUT = """Deno.serve((req) => subgate.connect(req, {
  onmessage(socket, data) {
    if (typeof data === "string" && data.startsWith("b ")) subgate.broadcast(data);
  },
}));
"""

IDENTIFY = "function identify(req) return req.query.name end\n"


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main():
    bl.prepare("build", "bench", "runtime")
    tmp = tempfile.mkdtemp(prefix="subgate-cluster-bench-")
    try:
        os.makedirs(os.path.join(tmp, "deployments", "fanout"))
        with open(os.path.join(tmp, "deployments", "fanout", "main.ts"), "w") as f:
            f.write(FANOUT)
        with open(os.path.join(tmp, "identify.lua"), "w") as f:
            f.write(IDENTIFY)
        port, origin_port = bl.free_port(), bl.free_port()
        conf = os.path.join(tmp, "subgate.conf")
        with open(conf, "w") as f:
            f.write(f"""
                workers 2;
                error_log stderr warn;
                subhoster bench {{ secret "{ib.SECRET}"; rpc_root_allow http://127.0.0.1:{origin_port}/; }}
                runtime deno {{ spare 2; idle_timeout 10m; max_isolates_per_deployment {ISOLATES}; }}
                server {{
                    listen 127.0.0.1:{port};
                    location = /status {{ status; }}
                    location / {{
                        forwarded_host on; subhost_auth on; lua_script identify.lua;
                        isolate_limit {CONNECTIONS // ISOLATES}; isolates;
                    }}
                }}
                server {{ listen 127.0.0.1:{origin_port}; location / {{ origin_local deployments; }} }}
            """)
        bl.start([bl.subgate_bin(), "-c", conf, "-p", tmp])
        bl.wait_ready_port(port)
        headers = {"x-deno-subhost": ib.token("fanout", f"http://127.0.0.1:{origin_port}/"),
                   "x-forwarded-host": "bench.example"}
        client = subprocess.run([bl.deno_bin(), "run", "--allow-net", os.path.join(HERE, "ws_fanout_client.js"),
                                 f"ws://127.0.0.1:{port}/ws", str(CONNECTIONS), str(ROUNDS), json.dumps(headers)],
                                capture_output=True, text=True, timeout=600)
        result = json.loads(client.stdout.strip().splitlines()[-1])
        if "error" in result:
            raise SystemExit(f"bench: {result['error']}\n{client.stderr}")
        samples = result["samples_ms"][ROUNDS // 10:]  # the first rounds warm up the JIT
        print(f"\nbroadcast fan-out: {CONNECTIONS} connections over {ISOLATES} isolates, "
              f"{len(samples)} rounds (send to last delivery, ms)")
        print(f"p50 {statistics.median(samples):.2f}  p90 {percentile(samples, 0.9):.2f}  "
              f"p99 {percentile(samples, 0.99):.2f}  max {max(samples):.2f}  mean {statistics.mean(samples):.2f}")
        shown = subprocess.run([bl.subgate_bin(), "status", f"http://127.0.0.1:{port}/status"], capture_output=True,
                               text=True, timeout=10).stdout
        snapshot = json.loads(shown)
        cluster = snapshot["cluster"]
        isolates = [len(d["isolates"]) for d in snapshot["deployments"]]
        print(f"isolates {isolates}, cluster counters: broadcasts {cluster['broadcasts']}, deliveries "
              f"{cluster['deliveries']}, failed {cluster['failed']}, timed out {cluster['timed_out']}")
    finally:
        bl.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
