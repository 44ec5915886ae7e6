#!/usr/bin/env python3
"""The subhosting ingress measured: warm path and cold path (issue: subhosting ingress).

    bench/ingress_bench.py            (after scripts/setup.sh build bench runtime; builds release)

Warm path, across the load curve (issue 20): three setups behind the same Deno handler
  ingress   subgate with subhost_auth + forwarded_host + isolates: relay-signed requests
            (one token reused, as relays do) to a warm isolate it started itself
  proxy     subgate proxy_pass to a plain `deno run` server of the same handler over TCP
  nginx     nginx proxy_pass (keep-alive upstream) to that same server
each measured at every point of POINTS (bench/benchlib.py; by default HTTP/1.1 with 1, 10, 50
and 200 connections, HTTP/1.1 over TLS at 50, h2c with 1x1, 10x5, 10x10 and 20x20 clients x
streams; h2tls-CxS may be added), in interleaved rounds as bench/curve_bench.py does. The
proxies run pinned to PROXY_CPU, the clients and the Deno processes to CLIENT_CPU (the isolate is
moved there once started). One row per point: per setup the medians of requests/s, p50 and p99
(ms) and the proxy's own CPU microseconds per request (utime+stime of its process from /proc,
children excluded: not the isolate's), then ingress/proxy (target <= 1) and ingress/nginx.

Cold path: the first request to a never-seen deployment (served by the local origin) timed end
to end, with `spare 0` and `spare 2`, each with `sandbox off` and `sandbox on`, against a raw
`deno run` of the same code (warm Deno cache) from process start to first answer; then a
50-module deployment (served as one ESZIP) against a raw `deno run` of the same 50 files.
Medians over COLD_SAMPLES deployments.

Environment: ROUNDS (3), DURATION (5), WARMUP (1): the warm path's rounds, seconds per run and
warm-up seconds per point and setup; POINTS (comma-separated point names); PROXY_CPU (0),
CLIENT_CPU (1); COLD_SAMPLES (10); SKIP_WARM=1, SKIP_COLD=1 (run one part only); BASELINE=PATH
(also the ingress setup with another subgate binary, say a copy from before a change, and
ingress/baseline per point; each cold-path setup also runs after the same one with this binary,
printing subgate/baseline); SUBGATE_DIRECTIVES (added to the ingress's and the plain proxy's
configs, main context, not to BASELINE's: as in bench/curve_bench.py); KEEP_TMP=1 (keep the
configs); SYSCALLS=1 and PROFILE=1 (one more run per point and setup under perf: system calls
per request, and where the CPU went, as in bench/curve_bench.py). Every row also has each
setup's context switches per request ("cs"): a proxy that sleeps more pays for it per request.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
from benchlib import deno_bin, free_port, http_get, log, start, subgate_bin, wait_ready, wait_ready_port  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "3"))
DURATION = int(os.environ.get("DURATION", "5"))
WARMUP = int(os.environ.get("WARMUP", "1"))
BASELINE = os.environ.get("BASELINE", "")
SUBGATE_DIRECTIVES = os.environ.get("SUBGATE_DIRECTIVES", "")
COLD_SAMPLES = int(os.environ.get("COLD_SAMPLES", "10"))
SYSCALLS = os.environ.get("SYSCALLS") == "1"
PROFILE = os.environ.get("PROFILE") == "1"
# The warm path's default points: the curve's HTTP/1.1 and h2c points and HTTP/1.1 over TLS.
WARM_POINTS = ("h1-1", "h1-10", "h1-50", "h1-200", "h1tls-50", "h2c-1x1", "h2c-10x5", "h2c-10x10", "h2c-20x20")
SECRET = "bench-secret-0123456789abcdef"
HANDLER = 'Deno.serve({ROOT_OPTS}() => new Response("hello world\\n"));\n'


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


def ingress_config(port, origin_port, deployments, spare, extra="", sandbox=None, server=""):
    """subgate as the ingress on `port` (`server`: more directives in its server block, say
    listens), with `origin_local` serving `deployments` on `origin_port`."""
    return f"""
        workers 1;
        error_log stderr warn;
        subhoster bench {{ secret "{SECRET}"; rpc_root_allow http://127.0.0.1:{origin_port}/; }}
        runtime deno {{ spare {spare}; idle_timeout 10m; {f"sandbox {sandbox};" if sandbox else ""} }}
        server {{
            listen 127.0.0.1:{port};
            {server}
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
    points = bl.points_from_env(WARM_POINTS)
    if BASELINE and not os.access(BASELINE, os.X_OK):
        raise SystemExit(f"bench: BASELINE={BASELINE} is not an executable")
    bl.certificate(tmp)
    deployments = os.path.join(tmp, "deployments")
    write_deployments(deployments, ["warm"])
    # The plain Deno server the proxies forward to.
    deno_port = free_port()
    server_js = os.path.join(tmp, "server.js")
    with open(server_js, "w") as f:
        f.write(HANDLER.replace("{ROOT_OPTS}", f'{{ port: {deno_port}, hostname: "127.0.0.1", onListen() {{}} }}, '))
    start([deno_bin(), "run", "--allow-net", server_js], cpu=bl.CLIENT_CPU)
    wait_ready(deno_port)

    targets = {}

    def ports():
        return {"h1": free_port(), "h2c": free_port(), "tls": free_port()}

    def listens(p):
        """Every server's HTTP/2 and TLS listeners, and keep-alive as long as the run."""
        return (f"listen 127.0.0.1:{p['h2c']} http2; listen 127.0.0.1:{p['tls']} ssl http2; "
                f"ssl_certificate {tmp}/cert.pem; ssl_certificate_key {tmp}/key.pem; keepalive_requests 1000000;")

    def start_ingress(name, binary, directives):
        p, origin_port = ports(), free_port()
        conf = os.path.join(tmp, f"{name}.conf")
        with open(conf, "w") as f:
            f.write(ingress_config(p["h1"], origin_port, deployments, 0, extra=directives, server=listens(p)))
        proc = start([binary, "-c", conf, "-p", tmp], cpu=bl.PROXY_CPU)
        headers = {"x-deno-subhost": token("warm", f"http://127.0.0.1:{origin_port}/"),
                   "x-forwarded-host": "bench.example"}
        wait_ready(p["h1"], headers)  # the first request starts the isolate
        bl.pin_descendants(proc.pid, bl.CLIENT_CPU)  # the isolate
        targets[name] = bl.Target(proc, p, headers)

    start_ingress("ingress", subgate_bin(), SUBGATE_DIRECTIVES)
    if BASELINE:
        start_ingress("baseline", os.path.abspath(BASELINE), "")
    # Idle upstream connections kept above the most requests in flight (20 x 20 = 400), as the
    # ingress keeps 256 per isolate.
    upstream = f"upstream deno {{ server 127.0.0.1:{deno_port}; keepalive 512; }}"
    # subgate, plain proxy
    p = ports()
    conf = os.path.join(tmp, "proxy.conf")
    with open(conf, "w") as f:
        f.write(f"""workers 1; error_log stderr warn; {SUBGATE_DIRECTIVES} {upstream}
            server {{ listen 127.0.0.1:{p["h1"]}; {listens(p)} location / {{ proxy_pass http://deno; }} }}""")
    targets["proxy"] = bl.Target(start([subgate_bin(), "-c", conf, "-p", tmp], cpu=bl.PROXY_CPU), p)
    # nginx
    p = ports()
    proc = bl.start_nginx(os.path.join(tmp, "nginx"), f"""{upstream}
        server {{ listen 127.0.0.1:{p["h1"]}; {listens(p)} http2_max_requests 1000000;
            location / {{ proxy_pass http://deno; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}""",
                          cpu=bl.PROXY_CPU)
    targets["nginx"] = bl.Target(proc, p, with_children=True)
    for target in targets.values():
        wait_ready(target.ports["h1"], target.headers)
        wait_ready_port(target.ports["h2c"])
        wait_ready_port(target.ports["tls"])

    results = bl.sweep(points, targets, ROUNDS, DURATION, WARMUP, tmp, syscalls=SYSCALLS, profiled=PROFILE)
    isolates = subprocess.run(["pgrep", "-P", str(targets["ingress"].proc.pid)], capture_output=True,
                              text=True).stdout.split()
    if len(isolates) != 1:  # a second one would run on PROXY_CPU, unmeasured but in the way
        log(f"the ingress ran {len(isolates)} isolates, not one")

    def median(point, name, i):
        return bl.median(results, point, name, i)

    print(f"\nthe warm ingress path across the load curve (medians of {ROUNDS} x {DURATION}s; "
          f"CPU: the proxy's own µs per request)")
    names = list(targets)
    header = f"{'point':<11}"
    for name in names:
        header += f" {name + ' req/s':>14} {'p50':>6} {'p99':>6} {'CPU':>6} {'cs':>5}"
        if SYSCALLS:
            header += f" {'sys':>5}"
    header += f" {'ing/proxy':>9} {'ing/nginx':>9}"
    if BASELINE:
        header += f" {'ing/base':>8}"
    print(header)
    for point in points:
        line = f"{point:<11}"
        for name in names:
            line += (f" {median(point, name, 0):>14.0f} {median(point, name, 1):>6.2f} "
                     f"{median(point, name, 2):>6.2f} {median(point, name, 3):>6.1f} {median(point, name, 4):>5.2f}")
            if SYSCALLS:
                calls = results.get((point, name, "syscalls"))
                line += f" {calls:>5.2f}" if calls is not None else f" {'-':>5}"
        for other in ("proxy", "nginx") + (("baseline",) if BASELINE else ()):
            width = 8 if other == "baseline" else 9
            line += f" {median(point, 'ingress', 3) / median(point, other, 3):>{width - 1}.2f}x"
        print(line)
    print("p50, p99 in ms; targets: ingress/proxy <= 1.00x (issue 20) and ingress/nginx < 1 at every point")
    if PROFILE:
        bl.print_profile(results, points, names)
    for target in targets.values():
        target.proc.send_signal(signal.SIGTERM)
        target.proc.wait(15)


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
    for sandbox, spare in (("off", 0), ("on", 0), ("off", 2), ("on", 2)):
        ms = subgate_cold(tmp, sandbox, spare) * 1000
        print(f"subgate sandbox {sandbox:3} spare {spare}: {ms:.1f} ms = {ms / raw_ms:.2f}x raw"
              + ("  (target <= 0.3x)" if spare else ""))
        if BASELINE:
            base_ms = subgate_cold(tmp, sandbox, spare, binary=os.path.abspath(BASELINE), label="baseline") * 1000
            print(f"baseline sandbox {sandbox:3} spare {spare}: {base_ms:.1f} ms = {base_ms / raw_ms:.2f}x raw;"
                  f" subgate/baseline {ms / base_ms:.2f}x")
    # A 50-module deployment: origin_local serves the folder as one ESZIP.
    raw50_ms = raw_cold(tmp, deno, 50) * 1000
    ms = subgate_cold(tmp, "on", 2, 50) * 1000
    print(f"50 modules: raw deno run {raw50_ms:.1f} ms; subgate (ESZIP, sandbox on, spare 2) "
          f"{ms:.1f} ms = {ms / raw50_ms:.2f}x raw")
    if BASELINE:
        base_ms = subgate_cold(tmp, "on", 2, 50, binary=os.path.abspath(BASELINE), label="baseline") * 1000
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


def main():
    bl.prepare("build", "bench", "runtime")
    tmp = bl.temp_dir("subgate-ingress-bench-")
    try:
        if os.environ.get("SKIP_WARM") != "1":
            warm_path(tmp)
        if os.environ.get("SKIP_COLD") != "1":
            cold_path(tmp)
    finally:
        bl.stop_all()
        bl.remove_temp_dir(tmp)


if __name__ == "__main__":
    main()
