#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: a figure the machine's load does not move.

    bench/instructions_bench.py       (after scripts/setup.sh build test bench runtime)

CPU time per request (bench/curve_bench.py) is what users pay, but on a shared machine two runs
of the same binary differ by several percent, more than a small change costs. Valgrind's
callgrind counts the instructions subgate executes, which is the same from run to run within a
fraction of a percent: the way to show that a change to the hot path (a counter, a log field)
costs what it costs.

For each setup, subgate (and BASELINE, another binary, say one built from before a change) runs
under `valgrind --tool=callgrind` with one worker; h2load sends WARMUP requests, the counters are
zeroed (callgrind_control -z), h2load sends REQUESTS more over CONNECTIONS keep-alive HTTP/1.1
connections, and the counters are dumped. Printed: instructions (Ir) per request over the whole
process (every thread: the worker, and what runs beside it in that time), and the ratio to the
baseline.

The setup: proxy_pass to an nginx backend (keep-alive upstream), without an access log. The
ingress path (isolates) cannot run under valgrind: the confinement a forked child applies before
it runs Deno (core/process/confinement.h: Landlock, seccomp filters) fails under valgrind, so
no isolate starts; bench/ingress_bench.py measures that path's CPU time instead.

Environment: REQUESTS (20000), WARMUP (2000), CONNECTIONS (10), BASELINE=PATH, DIRECTIVES
(added to the server block of the subgate under test, not the baseline's: `request_id off;`
shows what request ids cost).
"""

import glob
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (processes, ports, CPU time, nginx)

REQUESTS = int(os.environ.get("REQUESTS", "20000"))
WARMUP = int(os.environ.get("WARMUP", "2000"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "10"))
SETUPS = ["proxy"]
DIRECTIVES = os.environ.get("DIRECTIVES", "")


def h2load(port, headers, count):
    cmd = ["h2load", "--h1", "-n", str(count), "-c", str(CONNECTIONS), "-t", "1"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                         timeout=600).stdout
    done = [line for line in out.splitlines() if line.startswith("status codes:")]
    if not done or f"{count} 2xx" not in done[0]:
        raise SystemExit(f"bench: h2load did not get {count} 2xx answers:\n{out}")


def count_instructions(tmp, name, binary, config, headers, port):
    """Ir per request of `binary` serving `config` (its port `port`)."""
    conf = os.path.join(tmp, f"{name}.conf")
    with open(conf, "w") as f:
        f.write(config)
    out = os.path.join(tmp, f"cg-{name}")
    proc = bl.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}.%p",
                     binary, "-c", conf, "-p", tmp])
    bl.wait_ready(port, headers, timeout=120)
    h2load(port, headers, WARMUP)
    subprocess.run(["callgrind_control", "-z", str(proc.pid)], check=True, capture_output=True)
    h2load(port, headers, REQUESTS)
    subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
    dumps = sorted(glob.glob(f"{out}.{proc.pid}.*"), key=os.path.getmtime)
    if not dumps:
        raise SystemExit(f"bench: callgrind wrote no dump for {name}")
    total = None
    with open(dumps[-1]) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    proc.terminate()
    proc.wait(60)
    if total is None:
        raise SystemExit(f"bench: no totals in {dumps[-1]}")
    return total / REQUESTS


def main():
    for tool in ("valgrind", "callgrind_control", "h2load"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (scripts/setup.sh test bench; valgrind from Debian)")
    subprocess.run([os.path.join(bl.ROOT, "scripts", "build.sh"), "release", "subgate"], check=True)
    binaries = {"subgate": bl.subgate_bin()}
    if os.environ.get("BASELINE"):
        binaries["baseline"] = os.path.abspath(os.environ["BASELINE"])
    tmp = tempfile.mkdtemp(prefix="subgate-instructions-")
    results = {}
    try:
        backend_port = bl.free_port()
        bl.start_nginx(os.path.join(tmp, "backend"), f"""
            server {{ listen 127.0.0.1:{backend_port}; keepalive_requests 1000000;
              location / {{ return 200 "hello world\\n"; }} }}""", cpu=None)
        bl.wait_ready(backend_port)
        for setup in SETUPS:
            for label, binary in binaries.items():
                port = bl.free_port()
                headers = {}
                config = f"""workers 1; error_log stderr warn;
                    upstream backend {{ server 127.0.0.1:{backend_port}; keepalive 64; }}
                    server {{ listen 127.0.0.1:{port}; access_log off; {DIRECTIVES if label == "subgate" else ""}
                      location / {{ proxy_pass http://backend; }} }}"""
                ir = count_instructions(tmp, f"{setup}-{label}", binary, config, headers, port)
                results[(setup, label)] = ir
                bl.log(f"{setup} {label}: {ir:.0f} instructions per request")
    finally:
        bl.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\ninstructions per request (callgrind, h2load --h1 -c{CONNECTIONS}, {REQUESTS} requests after {WARMUP})")
    print(f"{'setup':10} " + " ".join(f"{label:>12}" for label in binaries) +
          ("  subgate/baseline" if "baseline" in binaries else ""))
    for setup in SETUPS:
        row = [results[(setup, label)] for label in binaries]
        line = f"{setup:10} " + " ".join(f"{ir:12.0f}" for ir in row)
        if len(row) == 2:
            line += f"  {row[0] / row[1]:16.3f}x"
        print(line)


if __name__ == "__main__":
    main()
