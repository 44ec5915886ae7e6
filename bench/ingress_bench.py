#!/usr/bin/env python3
"""The subhosting ingress measured: warm path and cold path (issue: subhosting ingress).

    bench/ingress_bench.py            (after scripts/setup.sh build bench runtime; builds release)

Warm path, three setups behind the same Deno handler, each driven by `wrk -t1 -cCONNECTIONS`
in interleaved rounds:
  ingress   subgate with subhost_auth + forwarded_host + isolates: relay-signed requests
            (one token reused, as relays do) to a warm isolate it started itself
  proxy     subgate proxy_pass to a plain `deno run` server of the same handler over TCP
  nginx     nginx proxy_pass (keep-alive upstream) to that same server
The proxies run pinned to PROXY_CPU, wrk and the Deno processes to CLIENT_CPU (the isolate is
moved there once started). Reported: requests/s, p99 and the proxy's own CPU microseconds per
request (utime+stime of its process from /proc, children excluded), then ingress/proxy (target
<= 1.15) and ingress/nginx (target < 1).

Cold path: the first request to a never-seen deployment (served by the local origin) timed end
to end, with `spare 0` and `spare 2`, each with `sandbox off` and `sandbox on`, against a raw
`deno run` of the same code (warm Deno cache) from process start to first answer; then a
50-module deployment (served as one ESZIP) against a raw `deno run` of the same 50 files.
Medians over COLD_SAMPLES deployments.

Environment: ROUNDS (3), DURATION (10), CONNECTIONS (50), PROXY_CPU (0), CLIENT_CPU (1),
COLD_SAMPLES (10). BASELINE=PATH also runs the ingress setup with another subgate binary (say a
copy from before a change) and prints ingress/baseline, and each cold-path setup after the same
one with this binary, printing subgate/baseline. SKIP_WARM=1 or SKIP_COLD=1 leaves a part out.
"""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "10"))
CONNECTIONS = int(os.environ.get("CONNECTIONS", "50"))
PROXY_CPU = os.environ.get("PROXY_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
COLD_SAMPLES = int(os.environ.get("COLD_SAMPLES", "10"))
SECRET = "bench-secret-0123456789abcdef"
HANDLER = 'Deno.serve({ROOT_OPTS}() => new Response("hello world\\n"));\n'
TICK = os.sysconf("SC_CLK_TCK")

procs = []


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd, cpu=None, **kw):
    if cpu is not None:
        cmd = ["taskset", "-c", cpu] + cmd
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
    procs.append(p)
    return p


def stop_all():
    for p in reversed(procs):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def http_get(port, headers=None, timeout=5.0, path="/"):
    """One GET on a fresh connection: (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        lines = [f"GET {path} HTTP/1.1", "Host: bench", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def wait_ready(port, headers=None, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_get(port, headers, timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"bench: nothing answered 200 on port {port} within {timeout}s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def pids_of(proc, include_children):
    pids = [proc.pid]
    if include_children:  # nginx: the master and its workers
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    return pids


def token(deployment, rpc_root):
    import base64
    import hashlib
    import hmac

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "bench"}).encode())
    claims = b64(json.dumps({"iat": now, "exp": now + 3600, "deployment_id": deployment, "rpc_root": rpc_root}).encode())
    sig = hmac.new(SECRET.encode(), f"{head}.{claims}".encode(), hashlib.sha256).digest()
    return f"{head}.{claims}.{b64(sig)}"


def wrk(port, headers, seconds):
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=seconds + 30).stdout
    rps = float(out.split("Requests/sec:")[1].split()[0])
    requests = int(out.split(" requests in ")[0].split()[-1])
    p99 = out.split(" 99%")[1].split()[0]
    p99_ms = float(p99[:-2]) if p99.endswith("ms") else float(p99[:-2]) / 1000 if p99.endswith("us") else float(p99[:-1]) * 1000
    errors = "Non-2xx" in out or "Socket errors" in out
    return rps, requests, p99_ms, errors


def start_nginx(prefix, http_body, cpu, connections=4096, nofile=None):
    """Starts nginx (one worker, in the foreground) with `http_body` inside its http block, its
    files under `prefix`. Returns the process (the master; its worker is a child)."""
    os.makedirs(prefix, exist_ok=True)
    conf = os.path.join(prefix, "nginx.conf")
    rlimit = f"worker_rlimit_nofile {nofile};" if nofile else ""
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; {rlimit}
            pid {prefix}/nginx.pid; error_log {prefix}/error.log warn;
            events {{ worker_connections {connections}; }}
            http {{ access_log off; client_body_temp_path {prefix}/body; proxy_temp_path {prefix}/proxy;
              {http_body} }}""")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return start([nginx, "-p", prefix, "-e", os.path.join(prefix, "error.log"), "-c", conf], cpu=cpu)


def subgate_bin():
    return os.path.join(ROOT, "build-release", "subgate")


def deno_bin():
    return subprocess.run([os.path.join(ROOT, "scripts", "deno_path.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()


def write_deployments(folder, names, modules=1, root_opts=""):
    """One folder per name: the handler alone (modules=1), or a main.ts importing modules-1
    others (TypeScript, the last one JSON), which origin_local serves as one ESZIP."""
    for name in names:
        os.makedirs(os.path.join(folder, name), exist_ok=True)
        imports = ""
        for i in range(modules - 1):
            if i == modules - 2:
                imports += f'import d{i} from "./lib/d{i}.json" with {{ type: "json" }};\n'
                body = f'{{"n": {i}}}\n'
                module = f"d{i}.json"
            else:
                imports += f'import {{ m{i} }} from "./lib/m{i}.ts";\n'
                body = f"export const m{i}: number = {i};\n"
                module = f"m{i}.ts"
            os.makedirs(os.path.join(folder, name, "lib"), exist_ok=True)
            with open(os.path.join(folder, name, "lib", module), "w") as f:
                f.write(body)
        with open(os.path.join(folder, name, "main.ts"), "w") as f:
            f.write(imports + HANDLER.replace("{ROOT_OPTS}", root_opts))


def ingress_config(port, origin_port, deployments, spare, extra="", sandbox=None):
    return f"""
        workers 1;
        error_log stderr warn;
        subhoster bench {{ secret "{SECRET}"; rpc_root_allow http://127.0.0.1:{origin_port}/; }}
        runtime deno {{ spare {spare}; idle_timeout 10m; {f"sandbox {sandbox};" if sandbox else ""} }}
        server {{
            listen 127.0.0.1:{port};
            location / {{ forwarded_host on; subhost_auth on; isolate_limit 1000; isolates; }}
            location = /_pool {{ status; }}
        }}
        server {{
            listen 127.0.0.1:{origin_port};
            location / {{ origin_local {deployments}; }}
        }}
        {extra}
    """


def warm_path(tmp):
    deno = deno_bin()
    deployments = os.path.join(tmp, "deployments")
    write_deployments(deployments, ["warm"])
    # The plain Deno server the proxies forward to.
    deno_port = free_port()
    server_js = os.path.join(tmp, "server.js")
    with open(server_js, "w") as f:
        f.write(HANDLER.replace("{ROOT_OPTS}", f'{{ port: {deno_port}, hostname: "127.0.0.1", onListen() {{}} }}, '))
    start([deno, "run", "--allow-net", server_js], cpu=CLIENT_CPU)
    wait_ready(deno_port)

    setups = {}

    def start_ingress(name, binary):
        port, origin_port = free_port(), free_port()
        conf = os.path.join(tmp, f"{name}.conf")
        with open(conf, "w") as f:
            f.write(ingress_config(port, origin_port, deployments, 0))
        p = start([binary, "-c", conf, "-p", tmp], cpu=PROXY_CPU)
        headers = {"x-deno-subhost": token("warm", f"http://127.0.0.1:{origin_port}/"),
                   "x-forwarded-host": "bench.example"}
        wait_ready(port, headers)
        for child in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split():
            subprocess.run(["taskset", "-a", "-p", "-c", CLIENT_CPU, child], capture_output=True)  # the isolate
        setups[name] = (p, port, headers, False)

    start_ingress("ingress", subgate_bin())
    if os.environ.get("BASELINE"):
        start_ingress("baseline", os.path.abspath(os.environ["BASELINE"]))
    # subgate plain proxy
    port = free_port()
    conf = os.path.join(tmp, "proxy.conf")
    with open(conf, "w") as f:
        f.write(f"""workers 1; error_log stderr warn;
            upstream deno {{ server 127.0.0.1:{deno_port}; keepalive 64; }}
            server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://deno; }} }}""")
    p = start([subgate_bin(), "-c", conf, "-p", tmp], cpu=PROXY_CPU)
    wait_ready(port)
    setups["proxy"] = (p, port, {}, False)
    # nginx
    port = free_port()
    p = start_nginx(os.path.join(tmp, "nginx"), f"""
              upstream deno {{ server 127.0.0.1:{deno_port}; keepalive 64; }}
              server {{ listen 127.0.0.1:{port};
                location / {{ proxy_pass http://deno; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""",
                    cpu=PROXY_CPU)
    wait_ready(port)
    setups["nginx"] = (p, port, {}, True)

    results = {name: [] for name in setups}
    names = list(setups)
    for round_index in range(ROUNDS):
        order = names[round_index % len(names):] + names[:round_index % len(names)]
        for name in order:
            proc, port, headers, children = setups[name]
            wrk(port, headers, 2)  # warm-up
            pids = pids_of(proc, children)
            before = sum(cpu_seconds(pid) for pid in pids)
            rps, requests, p99, errors = wrk(port, headers, DURATION)
            used = sum(cpu_seconds(pid) for pid in pids) - before
            if errors:
                log(f"{name}: wrk reported errors or non-2xx answers")
            results[name].append((rps, p99, used * 1e6 / max(requests, 1)))
            log(f"round {round_index + 1} {name}: {rps:.0f} req/s, p99 {p99:.2f} ms, {used * 1e6 / max(requests, 1):.2f} us/req")
    summary = {}
    print(f"\nwarm path (wrk -t1 -c{CONNECTIONS}, {DURATION}s x {ROUNDS} rounds, medians)")
    print(f"{'setup':10} {'req/s':>10} {'p99 ms':>8} {'CPU us/req':>11}")
    for name, rows in results.items():
        rps = statistics.median(r[0] for r in rows)
        p99 = statistics.median(r[1] for r in rows)
        us = statistics.median(r[2] for r in rows)
        summary[name] = us
        print(f"{name:10} {rps:10.0f} {p99:8.2f} {us:11.2f}")
    print(f"ingress/proxy CPU per request: {summary['ingress'] / summary['proxy']:.2f}x (target <= 1.15)")
    print(f"ingress/nginx CPU per request: {summary['ingress'] / summary['nginx']:.2f}x (target < 1)")
    if "baseline" in summary:
        print(f"ingress/baseline CPU per request: {summary['ingress'] / summary['baseline']:.2f}x")
    for name, (proc, *_rest) in setups.items():
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def raw_cold(tmp, deno, modules):
    """A raw `deno run` of the same code, process start to first answer, with a warm Deno cache
    (a first run fills it): the median of COLD_SAMPLES, in seconds."""
    folder = os.path.join(tmp, f"raw-{modules}")
    port = free_port()
    write_deployments(folder, ["app"], modules,
                      root_opts=f'{{ port: {port}, hostname: "127.0.0.1", onListen() {{}} }}, ')
    main = os.path.join(folder, "app", "main.ts")
    env = dict(os.environ, DENO_DIR=os.path.join(tmp, f"raw-cache-{modules}"))
    times = []
    for sample in range(COLD_SAMPLES + 1):
        begin = time.monotonic()
        p = subprocess.Popen([deno, "run", "--allow-net", main], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
        wait_ready(port)
        if sample > 0:  # the first run fills the cache
            times.append(time.monotonic() - begin)
        p.kill()
        p.wait()
    return statistics.median(times)


def subgate_cold(tmp, sandbox, spare, modules=1, binary=None, label="subgate"):
    """The first request to each of COLD_SAMPLES never-seen deployments: the median, in seconds."""
    folder = os.path.join(tmp, f"cold-{label}-{sandbox}-{spare}-{modules}")
    names = [f"cold{i}" for i in range(COLD_SAMPLES)]
    write_deployments(folder, names, modules)
    port, origin_port = free_port(), free_port()
    conf = os.path.join(tmp, f"cold-{label}-{sandbox}-{spare}-{modules}.conf")
    with open(conf, "w") as f:
        f.write(ingress_config(port, origin_port, folder, spare, sandbox=sandbox))
    p = start([binary or subgate_bin(), "-c", conf, "-p", tmp])
    rpc_root = f"http://127.0.0.1:{origin_port}/"
    wait_ready_port(port)
    times = []
    for name in names:
        wait_spares(port, spare)  # the spares taken by the last sample are replaced
        headers = {"x-deno-subhost": token(name, rpc_root), "x-forwarded-host": "bench.example"}
        begin = time.monotonic()
        status, _ = http_get(port, headers, timeout=20)
        times.append(time.monotonic() - begin)
        if status != 200:
            log(f"cold {name}: status {status}")
    p.send_signal(signal.SIGTERM)
    p.wait(15)
    return statistics.median(times)


def cold_path(tmp):
    deno = deno_bin()
    raw_ms = raw_cold(tmp, deno, 1) * 1000
    print(f"\ncold path (first request to a never-seen deployment, median of {COLD_SAMPLES})")
    print(f"raw deno run (warm Deno cache), start to first answer: {raw_ms:.1f} ms")
    baseline = os.environ.get("BASELINE")
    for sandbox, spare in (("off", 0), ("on", 0), ("off", 2), ("on", 2)):
        ms = subgate_cold(tmp, sandbox, spare) * 1000
        print(f"subgate sandbox {sandbox:3} spare {spare}: {ms:.1f} ms = {ms / raw_ms:.2f}x raw"
              + ("  (target <= 0.3x)" if spare else ""))
        if baseline:
            base_ms = subgate_cold(tmp, sandbox, spare, binary=os.path.abspath(baseline), label="baseline") * 1000
            print(f"baseline sandbox {sandbox:3} spare {spare}: {base_ms:.1f} ms = {base_ms / raw_ms:.2f}x raw;"
                  f" subgate/baseline {ms / base_ms:.2f}x")
    # A 50-module deployment: origin_local serves the folder as one ESZIP.
    raw50_ms = raw_cold(tmp, deno, 50) * 1000
    ms = subgate_cold(tmp, "on", 2, 50) * 1000
    print(f"50 modules: raw deno run {raw50_ms:.1f} ms; subgate (ESZIP, sandbox on, spare 2) "
          f"{ms:.1f} ms = {ms / raw50_ms:.2f}x raw")
    if baseline:
        base_ms = subgate_cold(tmp, "on", 2, 50, binary=os.path.abspath(baseline), label="baseline") * 1000
        print(f"50 modules, baseline: {base_ms:.1f} ms; subgate/baseline {ms / base_ms:.2f}x")


def wait_spares(port, count, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, body = http_get(port, path="/_pool")
        if status == 200 and json.loads(body).get("spares", 0) >= count:
            # Counted from their start; a runtime listens some 100 ms later (status cannot tell).
            time.sleep(0.3)
            return
        time.sleep(0.02)
    log(f"bench: {count} spares not ready within {timeout} s")


def wait_ready_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"bench: port {port} did not open")


def main():
    subprocess.run([os.path.join(ROOT, "scripts", "setup.sh"), "build", "bench", "runtime"], check=True)
    subprocess.run([os.path.join(ROOT, "scripts", "build.sh"), "release", "subgate"], check=True)
    tmp = tempfile.mkdtemp(prefix="subgate-ingress-bench-")
    try:
        if os.environ.get("SKIP_WARM") != "1":
            warm_path(tmp)
        if os.environ.get("SKIP_COLD") != "1":
            cold_path(tmp)
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
