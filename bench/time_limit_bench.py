#!/usr/bin/env python3
"""The time from a spinning request to its TIME_LIMIT answer (issue 17: CPU limits).

    bench/time_limit_bench.py     (after scripts/setup.sh build bench runtime; builds release)

subgate (release build) serves one deployment whose /spin handler never yields
(`for (;;) {}`), with `cpu_block_limit` CPU_BLOCK_LIMIT (default 1s). Each round warms an isolate
with a request to / (a fresh isolate each round: the last one was killed), then times /spin from
sending it to the 502 TIME_LIMIT answer, and checks the next request to / is served. Prints the
median and max over ROUNDS (default 5) and the ratio to the limit: the watchdog pings at a
quarter of the limit and counts CPU time, so on an idle core the answer comes between 1 and 1.5
times the limit.

Environment: ROUNDS (5), CPU_BLOCK_LIMIT (1s), SUBGATE=PATH (a built binary: no setup, no build).
"""

import json
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (processes, ports, CPU time, nginx)
import ingress_bench as ib  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "5"))
CPU_BLOCK_LIMIT = os.environ.get("CPU_BLOCK_LIMIT", "1s")
SPIN = """Deno.serve((req) => {
  if (new URL(req.url).pathname === "/spin") for (;;) {}
  return new Response("pid " + Deno.pid);
});
"""


def limit_in_ms(text):
    """CPU_BLOCK_LIMIT in milliseconds: "1s", "1500ms"."""
    return float(text[:-2]) if text.endswith("ms") else float(text.rstrip("s")) * 1000


def get(port, path, headers, timeout=30.0):
    """One GET on a fresh connection: (status, x-deno-error or None, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        lines = [f"GET {path} HTTP/1.1", "Host: bench", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    error = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"x-deno-error":
            error = json.loads(value.strip())
    return int(head.split()[1]), error, body


def main():
    binary = bl.prepare("build", "bench", "runtime")
    tmp = tempfile.mkdtemp(prefix="subgate-time-limit-bench-")
    try:
        os.makedirs(os.path.join(tmp, "deployments", "spin"))
        with open(os.path.join(tmp, "deployments", "spin", "main.ts"), "w") as f:
            f.write(SPIN)
        port, origin_port = bl.free_port(), bl.free_port()
        conf = os.path.join(tmp, "subgate.conf")
        with open(conf, "w") as f:
            f.write(ib.ingress_config(port, origin_port, "deployments", 0).replace(
                "idle_timeout 10m;", f"idle_timeout 10m; cpu_block_limit {CPU_BLOCK_LIMIT};"))
        bl.start([binary, "-c", conf, "-p", tmp])
        bl.wait_ready_port(port)
        headers = {"x-deno-subhost": ib.token("spin", f"http://127.0.0.1:{origin_port}/"),
                   "x-forwarded-host": "bench.example", "x-deno-timeout-ms": "60000"}
        samples = []
        for round_ in range(ROUNDS):
            status, _, body = get(port, "/", headers)
            if status != 200:
                raise SystemExit(f"bench: round {round_}: / answered {status} {body!r}")
            start = time.monotonic()
            status, error, body = get(port, "/spin", headers)
            elapsed = time.monotonic() - start
            if (status, (error or {}).get("code")) != (502, "TIME_LIMIT"):
                raise SystemExit(f"bench: round {round_}: /spin answered {status} {error} {body!r}")
            samples.append(elapsed * 1000)
            bl.log(f"round {round_}: {elapsed * 1000:.0f} ms")
        limit_ms = limit_in_ms(CPU_BLOCK_LIMIT)
        median = statistics.median(samples)
        print(f"\nspinning request to 502 TIME_LIMIT, cpu_block_limit {CPU_BLOCK_LIMIT}, {ROUNDS} rounds (ms)")
        print(f"median {median:.0f}  max {max(samples):.0f}  min {min(samples):.0f}  "
              f"median/limit {median / limit_ms:.2f}")
    finally:
        bl.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
