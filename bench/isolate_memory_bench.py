#!/usr/bin/env python3
"""The memory of isolates, and how many idle ones fit in 1 GiB (issue 20: isolates per GiB).

    bench/isolate_memory_bench.py    (after scripts/setup.sh build bench runtime; builds release)

subgate (release build, `workers 1`, `spare 0`, the sandbox on unless SANDBOX=off) serves
ISOLATES copies of the shipped hello deployment (conf/deployments/hello) through the built-in
local origin, with relay tokens. Each copy is a deployment of its own, so each gets an isolate
of its own; each is sent one request. Then, for every isolate (all the processes of its tree:
bubblewrap's two and Deno, from the pid `status;` names):
  RSS    resident pages, shared ones (the Deno binary's text) counted in full in each
  PSS    resident pages, each shared page divided among the processes mapping it
  USS    private resident pages (Private_Clean + Private_Dirty)
  cgroup the isolate's memory cgroup (memory.usage_in_bytes on v1, memory.current on v2):
         what the kernel charges it, its page cache and kernel memory included
from /proc/PID/smaps_rollup, summed over the tree; medians over the isolates, in MiB.

  idle 2s     SETTLE (2) seconds after its one request
  idle Ns     IDLE_SECONDS (60) later, still idle (the supervisor pings it four times a second,
              which is where an idle isolate's memory used to grow: docs/performance.md)
  loaded      the peak of isolate 0 while `wrk -t1 -cLOAD_CONNECTIONS -dLOAD_SECONDS` (10, 5)
              sends it requests through subgate (also: its requests/s, and the CPU time of its
              processes per request)
  after       isolate 0 again, IDLE_SECONDS / 2 after the load

Isolates per GiB = 1 GiB / the machine-level growth per idle isolate (after IDLE_SECONDS),
measured two ways: the summed PSS of every isolate process divided by ISOLATES (shared pages
counted once over all of them), and MemAvailable's drop from before the first boot divided by
ISOLATES (kernel memory included, but noisy on a machine other jobs use). The headline is the
PSS figure.

Environment: ISOLATES (20), SETTLE (2), IDLE_SECONDS (60), LOAD_SECONDS (5),
LOAD_CONNECTIONS (10), SANDBOX (on), RUNTIME_EXTRA (directives added to the `runtime deno`
block, e.g. "isolate_v8_flags --max-semi-space-size=1;"), SUBGATE=PATH (a built binary: no
setup, no build). BASELINE=PATH measures another subgate binary the same way, after the first
(say a copy built from main before a change), and prints both.
"""

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import ingress_bench as ib  # noqa: E402

ISOLATES = int(os.environ.get("ISOLATES", "20"))
SETTLE = float(os.environ.get("SETTLE", "2"))
IDLE_SECONDS = float(os.environ.get("IDLE_SECONDS", "60"))
LOAD_SECONDS = int(os.environ.get("LOAD_SECONDS", "5"))
LOAD_CONNECTIONS = int(os.environ.get("LOAD_CONNECTIONS", "10"))
SANDBOX = os.environ.get("SANDBOX", "on")
RUNTIME_EXTRA = os.environ.get("RUNTIME_EXTRA", "")
MIB = 1024 * 1024
GIB = 1024 * MIB


def tree(pid, children):
    """`pid` and every process below it."""
    return [pid] + bl.descendants(pid, children)


def rollup(pid):
    """{'rss', 'pss', 'uss'} of one process in bytes (zeros when it is gone)."""
    values = {"rss": 0, "pss": 0, "uss": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    values[key.lower()] += int(rest.split()[0]) * 1024
                elif key in ("Private_Clean", "Private_Dirty"):
                    values["uss"] += int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values


def cgroup_bytes(pid):
    """The memory charged to the memory cgroup of `pid`, or None (no cgroup of its own)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            files = [f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes"]
        elif controllers == "":
            files = [f"/sys/fs/cgroup{path}/memory.current", f"/sys/fs/cgroup/unified{path}/memory.current"]
        else:
            continue
        if "/iso-" not in path:
            continue  # subgate's own group: the isolate has none of its own
        for name in files:
            try:
                with open(name) as f:
                    return int(f.read())
            except OSError:
                pass
    return None


def isolate_memory(pid, children):
    """RSS, PSS, USS summed over the isolate's process tree, and its cgroup's charge."""
    total = {"rss": 0, "pss": 0, "uss": 0}
    pids = tree(pid, children)
    for member in pids:
        for key, value in rollup(member).items():
            total[key] += value
    total["cgroup"] = cgroup_bytes(pids[-1])
    return total


def cpu_seconds(pid):
    """utime + stime of one process (every thread), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / bl.TICK


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def isolate_pids(port):
    """deployment id -> the pid of its isolate (the top of its tree), from `status;`."""
    status, body = bl.http_get(port, path="/_pool")
    pids = {}
    for deployment in json.loads(body)["deployments"]:
        for isolate in deployment["isolates"]:
            if isolate["state"] == "ready":
                pids[deployment["deployment_id"]] = isolate["pid"]
    return pids


def snapshot(port, names):
    children = bl.children_of()
    pids = isolate_pids(port)
    return [isolate_memory(pids[name], children) for name in names if name in pids]


def medians(rows):
    out = {}
    for key in ("rss", "pss", "uss", "cgroup"):
        values = [row[key] for row in rows if row[key] is not None]
        out[key] = statistics.median(values) if values else None
    return out


def mib(value):
    return "-" if value is None else f"{value / MIB:.1f}"


def measure(label, binary, tmp):
    folder = os.path.join(tmp, f"deployments-{label}")
    names = [f"hello{i}" for i in range(ISOLATES)]
    for name in names:
        shutil.copytree(os.path.join(bl.ROOT, "conf", "deployments", "hello"), os.path.join(folder, name))
    port, origin_port = bl.free_port(), bl.free_port()
    conf = os.path.join(tmp, f"{label}.conf")
    config = ib.ingress_config(port, origin_port, folder, 0, sandbox=SANDBOX).replace(
        "idle_timeout 10m;", f"idle_timeout 60m; max_isolates {ISOLATES + 10}; {RUNTIME_EXTRA}")
    with open(conf, "w") as f:
        f.write(config)
    proc = bl.start([binary, "-c", conf, "-p", tmp])
    bl.wait_ready_port(port)
    rpc_root = f"http://127.0.0.1:{origin_port}/"
    headers = {name: {"x-deno-subhost": ib.token(name, rpc_root), "x-forwarded-host": "bench.example"}
               for name in names}
    result = {}
    try:
        available_before = mem_available()
        for name in names:
            status, body = bl.http_get(port, headers[name], timeout=30)
            if status != 200:
                raise SystemExit(f"bench: {label} {name}: status {status} {body!r}")
        time.sleep(SETTLE)
        rows = snapshot(port, names)
        result["idle"] = medians(rows)
        bl.log(f"{label}: {len(rows)} isolates up; idle {IDLE_SECONDS:.0f} s more")
        time.sleep(IDLE_SECONDS)
        rows = snapshot(port, names)
        available_after = mem_available()
        result["settled"] = medians(rows)
        result["pss_each"] = sum(row["pss"] for row in rows) / max(len(rows), 1)
        result["available_each"] = (available_before - available_after) / max(len(rows), 1)
        result["count"] = len(rows)

        # One isolate under load: its peak while wrk runs.
        pid = isolate_pids(port)[names[0]]
        peak = {"rss": 0, "pss": 0, "uss": 0, "cgroup": None}
        done = threading.Event()

        def sample():
            while not done.is_set():
                row = isolate_memory(pid, bl.children_of())
                for key in peak:
                    if row[key] is not None and (peak[key] is None or row[key] > peak[key]):
                        peak[key] = row[key]
                done.wait(0.25)

        cpu_before = sum(cpu_seconds(member) for member in tree(pid, bl.children_of()))
        sampler = threading.Thread(target=sample)
        sampler.start()
        cmd = ["wrk", "-t1", f"-c{LOAD_CONNECTIONS}", f"-d{LOAD_SECONDS}s"]
        for key, value in headers[names[0]].items():
            cmd += ["-H", f"{key}: {value}"]
        out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                             timeout=LOAD_SECONDS + 30).stdout
        done.set()
        sampler.join()
        cpu = sum(cpu_seconds(member) for member in tree(pid, bl.children_of())) - cpu_before
        result["loaded"] = peak
        result["rps"] = float(out.split("Requests/sec:")[1].split()[0]) if "Requests/sec:" in out else 0.0
        requests = int(out.split(" requests in ")[0].split()[-1]) if " requests in " in out else 0
        result["cpu_us"] = cpu * 1e6 / max(requests, 1)
        # The same isolate once the load is over and it idled IDLE_SECONDS / 2.
        time.sleep(IDLE_SECONDS / 2)
        result["after"] = isolate_memory(pid, bl.children_of())
    finally:
        proc.terminate()
        proc.wait(30)
    return result


def main():
    binary = bl.prepare("build", "bench", "runtime")
    setups = [("subgate", os.path.abspath(binary))]
    if os.environ.get("BASELINE"):
        setups.append(("baseline", os.path.abspath(os.environ["BASELINE"])))
    tmp = tempfile.mkdtemp(prefix="subgate-isolate-memory-bench-")
    results = {}
    try:
        for label, path in setups:
            results[label] = measure(label, path, tmp)
    finally:
        bl.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nisolate memory, hello deployment, sandbox {SANDBOX}, {ISOLATES} isolates "
          f"(medians per isolate, MiB; loaded: peak under wrk -c{LOAD_CONNECTIONS} {LOAD_SECONDS}s)")
    print(f"{'setup':9} {'state':10} {'RSS':>7} {'PSS':>7} {'USS':>7} {'cgroup':>7}")
    for label, result in results.items():
        for state, title in (("idle", f"idle {SETTLE:.0f}s"), ("settled", f"idle {SETTLE + IDLE_SECONDS:.0f}s"),
                             ("loaded", "loaded"), ("after", f"after {IDLE_SECONDS / 2:.0f}s")):
            row = result[state]
            print(f"{label:9} {title:10} {mib(row['rss']):>7} {mib(row['pss']):>7} {mib(row['uss']):>7} "
                  f"{mib(row['cgroup']):>7}")
    print(f"\nper idle isolate after {SETTLE + IDLE_SECONDS:.0f}s, machine-level growth; isolates per GiB")
    print(f"{'setup':9} {'PSS sum/N':>10} {'per GiB':>8} {'MemAvail/N':>11} {'per GiB':>8} "
          f"{'loaded req/s':>13} {'isolate CPU us/req':>19}")
    for label, result in results.items():
        pss, avail = result["pss_each"], result["available_each"]
        print(f"{label:9} {mib(pss):>10} {GIB / pss:8.0f} {mib(avail):>11} "
              f"{(GIB / avail if avail > 0 else 0):8.0f} {result['rps']:13.0f} {result['cpu_us']:19.1f}")
    if "baseline" in results:
        ratio = results["baseline"]["pss_each"] / results["subgate"]["pss_each"]
        print(f"isolates per GiB (PSS), subgate/baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()
