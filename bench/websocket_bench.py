#!/usr/bin/env python3
"""Idle WebSockets held through a proxy: memory per connection (issue: HTTP/2, TLS and
WebSockets; target: at most 4 KiB of subgate's own memory per connection).

    bench/websocket_bench.py          (after scripts/setup.sh build bench runtime; builds release)

A Deno WebSocket server (bench/ws_idle_server.js) accepts and idles; a Deno client
(bench/ws_idle_client.js) opens CONNECTIONS sockets through the proxy and holds them. For subgate
(workers 1, proxy_pass) and nginx (one worker, the usual Upgrade/Connection proxy headers) in
turn: the proxy's resident memory (VmRSS of its processes) with no sockets, then with all open;
the difference per connection is reported, and the ratio subgate/nginx.

CONNECTIONS defaults to 9000: a proxy holds two descriptors per socket and this machine's hard
descriptor limit is 20000 (the issue names 10000; the per-connection figure is what is compared).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402  (processes, ports, CPU time, nginx)

CONNECTIONS = int(os.environ.get("CONNECTIONS", "9000"))
HERE = os.path.dirname(os.path.abspath(__file__))


def rss_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def hold(deno, port, settle_pids):
    """Opens CONNECTIONS sockets through `port`; returns the client process once all are open."""
    client = subprocess.Popen([deno, "run", "--allow-net", os.path.join(HERE, "ws_idle_client.js"),
                               f"ws://127.0.0.1:{port}/", str(CONNECTIONS)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = client.stdout.readline().strip()
    if line != f"open {CONNECTIONS}":
        client.kill()
        raise SystemExit(f"bench: the client could not open every socket: {line!r}")
    time.sleep(1)  # let the last handshakes' buffers settle
    return client


def measure(name, deno, port, pids):
    bl.wait_ready(port)
    time.sleep(0.5)
    before = rss_kib(pids())
    client = hold(deno, port, pids)
    after = rss_kib(pids())
    client.stdin.close()
    client.wait(30)
    per = (after - before) * 1024 / CONNECTIONS
    print(f"{name:<8} rss idle {before:>8} KiB  with {CONNECTIONS} sockets {after:>8} KiB  "
          f"-> {per:,.0f} bytes per connection")
    return per


def main():
    bl.prepare("build", "bench", "runtime")
    deno = bl.deno_bin()
    tmp = tempfile.mkdtemp(prefix="subgate-ws-bench-")
    try:
        backend = bl.free_port()
        bl.start([deno, "run", "--allow-net", os.path.join(HERE, "ws_idle_server.js"), str(backend)],
                 cpu=bl.CLIENT_CPU)
        bl.wait_ready(backend)
        results = {}

        port = bl.free_port()
        conf = os.path.join(tmp, "subgate.conf")
        with open(conf, "w") as f:
            f.write(f"""
                workers 1;
                error_log stderr warn;
                server {{
                    listen 127.0.0.1:{port};
                    location / {{ proxy_pass http://127.0.0.1:{backend}; proxy_read_timeout 1h; }}
                }}
            """)
        sg = bl.start([bl.subgate_bin(), "-c", conf, "-p", tmp], cpu=bl.PROXY_CPU)
        results["subgate"] = measure("subgate", deno, port, lambda: [sg.pid])
        sg.terminate()
        sg.wait(30)

        port = bl.free_port()
        nginx = bl.start_nginx(os.path.join(tmp, "nginx"), f"""
            server {{
                listen 127.0.0.1:{port};
                location / {{
                    proxy_pass http://127.0.0.1:{backend};
                    proxy_http_version 1.1;
                    proxy_set_header Upgrade $http_upgrade;
                    proxy_set_header Connection "upgrade";
                    proxy_read_timeout 1h;
                }}
            }}""", cpu=bl.PROXY_CPU, connections=19500, nofile=20000)
        results["nginx"] = measure("nginx", deno, port, lambda: bl.pids_of(nginx, True))
        print(f"subgate/nginx memory per idle WebSocket: {results['subgate'] / results['nginx']:.2f}x; "
              f"subgate {results['subgate'] / 1024:.2f} KiB per connection (target <= 4 KiB)")
    finally:
        bl.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
