#!/usr/bin/env python3
"""What the isolates' CPU-limits tick costs the supervisor thread (issue 20).

    bench/limits_tick_bench.py     (after scripts/setup.sh build bench runtime; builds release)

subgate serves ISOLATES (default 30) distinct deployments of the hello handler, one isolate
each, booted by one request each and then left idle. The supervisor thread (`sg-isolates`) runs
the limits tick every 250 ms for each ready isolate (cpu_block_limit's ping and the CPU samples
from /proc: core/isolates/isolate_limits.cc). The bench reads that thread's CPU time
(/proc/PID/task/TID/schedstat, nanoseconds) over SECONDS (default 10) of idleness, first with
the default `cpu_block_limit` (1s), then with CPU_LIMIT_DIRECTIVE (`cpu_limit 5s per 10s`) too,
then with `cpu_block_limit off` (no tick: the thread's floor), each in a fresh subgate. Prints,
per setup, the thread's CPU milliseconds per second and the tick's cost in microseconds per
isolate per tick (over the floor).

Environment: ISOLATES (30), SECONDS (10), SANDBOX (on), SUBGATE=PATH (a built binary: no setup,
no build), BASELINE=PATH (also measure another binary, say a copy from before a change, and
print both), KEEP_TMP=1 (keep the configs).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (processes, ports, readiness)
import ingress_bench as ib  # noqa: E402  (deployments, tokens, the ingress config)

ISOLATES = int(os.environ.get("ISOLATES", "30"))
SECONDS = float(os.environ.get("SECONDS", "10"))
SANDBOX = os.environ.get("SANDBOX", "on")
TICK_SECONDS = 0.25
SETUPS = (
    ("cpu_block_limit 1s (default)", ""),
    ("cpu_block_limit 1s + cpu_limit", "cpu_limit 5s per 10s;"),
    ("cpu_block_limit off", "cpu_block_limit off;"),
)


def supervisor_tid(pid, timeout=10.0):
    """The thread named sg-isolates (core/process/event_thread.cc names it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().strip() == "sg-isolates":
                        return tid
            except OSError:
                continue
        time.sleep(0.05)
    raise SystemExit("bench: no sg-isolates thread")


def thread_cpu_ns(pid, tid):
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        return int(f.read().split()[0])


def measure(binary, tmp, label, directives):
    """The supervisor thread's CPU nanoseconds per second with ISOLATES idle isolates."""
    folder = os.path.join(tmp, "deployments")
    names = [f"tick{i}" for i in range(ISOLATES)]
    if not os.path.isdir(folder):
        ib.write_deployments(folder, names)
    port, origin_port = bl.free_port(), bl.free_port()
    conf = os.path.join(tmp, f"{label.split()[0]}-{abs(hash(label))}.conf")
    with open(conf, "w") as f:
        f.write(ib.ingress_config(port, origin_port, folder, 0, sandbox=SANDBOX).replace(
            "idle_timeout 10m;", f"idle_timeout 10m; max_isolates {ISOLATES + 10}; {directives}"))
    p = bl.start([binary, "-c", conf, "-p", tmp])
    try:
        bl.wait_ready_port(port)
        rpc_root = f"http://127.0.0.1:{origin_port}/"
        for name in names:
            headers = {"x-deno-subhost": ib.token(name, rpc_root), "x-forwarded-host": "bench.example"}
            status, body = bl.http_get(port, headers, timeout=30)
            if status != 200:
                raise SystemExit(f"bench: {name} answered {status} {body!r}")
        tid = supervisor_tid(p.pid)
        time.sleep(1.0)  # boots settle (the first tick after ready finds each isolate's processes)
        begin_ns, begin = thread_cpu_ns(p.pid, tid), time.monotonic()
        time.sleep(SECONDS)
        used_ns, elapsed = thread_cpu_ns(p.pid, tid) - begin_ns, time.monotonic() - begin
        return used_ns / elapsed
    finally:
        p.terminate()
        p.wait(15)


def run(binary, tmp, name):
    results = {label: measure(binary, tmp, label, directives) for label, directives in SETUPS}
    floor = results["cpu_block_limit off"]
    print(f"\n{name}: {ISOLATES} idle isolates, sandbox {SANDBOX}, {SECONDS:.0f} s each")
    print(f"{'setup':34} {'ms CPU/s':>9} {'us/isolate/tick':>16}")
    for label, per_second in results.items():
        ticks = ISOLATES / TICK_SECONDS
        per_tick = "" if label == "cpu_block_limit off" else f"{(per_second - floor) / 1000 / ticks:16.1f}"
        print(f"{label:34} {per_second / 1e6:9.2f} {per_tick}")


def main():
    binary = bl.prepare("build", "bench", "runtime")
    baseline = os.environ.get("BASELINE", "")
    tmp = bl.temp_dir("subgate-limits-tick-bench-")
    try:
        if baseline:
            run(baseline, tmp, f"baseline {baseline}")
        run(binary, tmp, f"subgate {binary}")
    finally:
        bl.stop_all()
        if os.environ.get("KEEP_TMP") != "1":
            bl.remove_temp_dir(tmp)


if __name__ == "__main__":
    main()
