#!/usr/bin/env python3
"""What a typical Lua identify() adds per request (issue: Lua hooks; target: under 1 µs).

    bench/lua_bench.py            (after scripts/setup.sh build bench; builds release)

One subgate (workers 1, pinned to PROXY_CPU) with two listeners answering `return 200` — the
cheapest request subgate serves, so the difference is the hook — one plain and one with
`lua_script` whose identify() reads a header and returns it (the Gateway's example). wrk
(-t1 -cCONNECTIONS, pinned to CLIENT_CPU) drives them in interleaved rounds; reported per setup:
requests/s and subgate's own CPU microseconds per request (utime+stime from /proc), then the
difference. Also runs build-release/lua_call_bench (Vm::call alone, no sockets).

Environment: ROUNDS (3), DURATION (8), CONNECTIONS (50), PROXY_CPU (0), CLIENT_CPU (1).
"""

import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (processes, ports, CPU time, nginx, wrk)

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "8"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "50"))
IDENTIFY = 'function identify(req)\n    return req.headers["x-user"]\nend\n'


def main():
    bl.prepare("build", "bench", targets=("subgate", "lua_call_bench"))
    tmp = tempfile.mkdtemp(prefix="subgate-lua-bench-")
    try:
        micro = subprocess.run([os.path.join(bl.ROOT, "build-release", "lua_call_bench")],
                               capture_output=True, text=True, check=True).stdout.strip()
        script = os.path.join(tmp, "identify.lua")
        with open(script, "w") as f:
            f.write(IDENTIFY)
        plain, lua = bl.free_port(), bl.free_port()
        conf = os.path.join(tmp, "bench.conf")
        with open(conf, "w") as f:
            f.write(f"""
                workers 1;
                error_log stderr warn;
                server {{ listen 127.0.0.1:{plain}; location / {{ return 200 "ok"; }} }}
                server {{ listen 127.0.0.1:{lua}; lua_script {script}; location / {{ return 200 "ok"; }} }}
            """)
        proc = bl.start([bl.subgate_bin(), "-c", conf, "-p", tmp], cpu=bl.PROXY_CPU)
        headers = {"x-user": "user-1234567890", "user-agent": "wrk", "accept": "*/*"}
        bl.wait_ready(plain, headers)
        bl.wait_ready(lua, headers)
        results = {"plain": [], "lua": []}
        for name, port in (("plain", plain), ("lua", lua)):
            bl.run_wrk(f"http://127.0.0.1:{port}/", CONNECTIONS, 2, headers)  # warm-up
        for _ in range(ROUNDS):
            for name, port in (("plain", plain), ("lua", lua)):
                before = bl.cpu_seconds(proc.pid)
                requests, rps, _, _ = bl.run_wrk(f"http://127.0.0.1:{port}/", CONNECTIONS, DURATION, headers)
                used = bl.cpu_seconds(proc.pid) - before
                results[name].append((rps, used * 1e6 / requests))
        print(f"{'setup':<8} {'req/s':>10} {'µs/req':>8}")
        med = {}
        for name, rows in results.items():
            rps = statistics.median(r for r, _ in rows)
            us = statistics.median(u for _, u in rows)
            med[name] = us
            print(f"{name:<8} {rps:>10.0f} {us:>8.2f}")
        print(f"identify() adds {med['lua'] - med['plain']:.2f} µs CPU per request (target < 1)")
        print(micro)
    finally:
        bl.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
