"""What the benches in bench/ share: processes pinned to CPUs, free ports, readiness polls, CPU
time from /proc, nginx in a private prefix, a TLS certificate; and the load curve (issue 20):
its points, the wrk and h2load runners, and the rounds that measure a set of servers at each
point (bench/curve_bench.py, bench/ingress_bench.py).

Environment read here: PROXY_CPU (0: the servers under test), CLIENT_CPU (1: load generators and
backends), KEEP_TMP=1 (temp_dir's folder is kept and its path logged), SUBGATE=PATH (the subgate
binary under test; nothing is built).
"""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROXY_CPU = os.environ.get("PROXY_CPU", "0")
CLIENT_CPU = os.environ.get("CLIENT_CPU", "1")
TICK = os.sysconf("SC_CLK_TCK")

procs = []  # every process start() started, stopped by stop_all()


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


def temp_dir(prefix):
    return tempfile.mkdtemp(prefix=prefix)


def remove_temp_dir(path):
    if os.environ.get("KEEP_TMP") == "1":
        log(f"kept {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


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


def wait_ready_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.01)
    raise SystemExit(f"bench: port {port} did not open")


def cpu_seconds(pid):
    """utime+stime of one process (its children excluded)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def context_switches(pid):
    """Voluntary and involuntary context switches of every thread of one process so far."""
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if "ctxt_switches:" in line:  # voluntary_... and nonvoluntary_...
                        total += int(line.split()[1])
        except FileNotFoundError:  # a thread that ended meanwhile
            pass
    return total


def _under_perf(perf_args, pids, run):
    """run() while `perf PERF_ARGS -p PIDS` watches; its result. perf is stopped (SIGINT) after."""
    perf = subprocess.Popen(["perf", *perf_args, "-p", ",".join(map(str, pids))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.2)  # perf attaches before the load starts (a count, not a readiness wait)
    try:
        return run()
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait(60)


def count_syscalls(pids, run):
    """System calls the processes `pids` make while `run()` runs (perf's raw_syscalls tracepoint;
    needs root or kernel.perf_event_paranoid <= -1). Returns (run()'s result, count), count None
    when perf cannot count them."""
    if not shutil.which("perf"):
        return run(), None
    out = tempfile.NamedTemporaryFile(prefix="bench-perf-", suffix=".csv", delete=False)
    out.close()
    result = _under_perf(["stat", "-x,", "-e", "raw_syscalls:sys_enter", "-o", out.name], pids, run)
    count = None
    with open(out.name) as f:
        for line in f:
            fields = line.split(",")
            if len(fields) > 2 and fields[2] == "raw_syscalls:sys_enter" and fields[0].isdigit():
                count = int(fields[0])
    os.unlink(out.name)
    return result, count


# What a kernel sample was doing, by the functions on its stack (the first rule that matches).
PROFILE_KINDS = (
    ("switch", ("__schedule", "schedule", "finish_task_switch")),  # sleeping, woken, switched in
    ("wake", ("try_to_wake_up", "__wake_up_common", "__wake_up_sync_key", "ep_poll_callback",
              "sock_def_readable", "default_wake_function")),  # waking the peer (an IPI on a VM)
    ("tcp/ip", ("tcp_", "__tcp_", "ip_", "__ip_", "inet_", "__inet_", "skb_", "__skb_", "sock_",
                "__sk_", "sk_", "net_rx_action", "__netif_", "__dev_queue_xmit", "process_backlog",
                "loopback_xmit")),
)
PROFILE_COLUMNS = ("user", "switch", "wake", "tcp/ip", "other kernel")


def profile(pids, run):
    """Where the processes `pids` spend their CPU time while `run()` runs: perf record (cpu-clock,
    call graphs; needs root or kernel.perf_event_paranoid <= -1) and each sample sorted into one
    of PROFILE_COLUMNS: user space; in the kernel, context switches (its sleep and wake-up),
    waking other processes, the TCP/IP stack, and everything else (system call entry and exit,
    epoll, io_uring, copies). Returns (run()'s result, {column: CPU seconds}), the dict None when
    perf cannot record."""
    if not shutil.which("perf"):
        return run(), None
    data = tempfile.NamedTemporaryFile(prefix="bench-perf-", suffix=".data", delete=False)
    data.close()
    result = _under_perf(["record", "-q", "-e", "cpu-clock", "-F", "4000", "-g", "-o", data.name], pids, run)
    script = subprocess.run(["perf", "script", "-i", data.name, "-F", "period,ip,sym,dso"],
                            capture_output=True, text=True, timeout=600).stdout
    if os.environ.get("KEEP_TMP") == "1":
        log(f"kept perf data of pids {','.join(map(str, pids))}: {data.name} (perf report -i)")
    else:
        os.unlink(data.name)
    totals = dict.fromkeys(PROFILE_COLUMNS, 0.0)
    recorded = False
    for sample in script.split("\n\n"):
        lines = [line.strip() for line in sample.strip().splitlines()]
        if len(lines) < 2 or not lines[0].isdigit():
            continue
        recorded = True
        period = int(lines[0]) / 1e9  # cpu-clock periods are in ns
        frames = [line.split(None, 1)[1] if " " in line else "" for line in lines[1:]]
        if "[kernel.kallsyms]" not in frames[0]:
            totals["user"] += period
            continue
        kind = "other kernel"
        for name, prefixes in PROFILE_KINDS:
            if any(frame.startswith(prefixes) for frame in frames if "[kernel.kallsyms]" in frame):
                kind = name
                break
        totals[kind] += period
    return result, totals if recorded else None


def pids_of(proc, include_children):
    pids = [proc.pid]
    if include_children:  # nginx: the master and its workers
        out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
        pids += [int(p) for p in out.split()]
    return pids


def children_of():
    """ppid -> [pid] for every process on the machine, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            children.setdefault(parent, []).append(int(entry))
    return children


def descendants(pid, children=None):
    """Every process below `pid` (its children, theirs, ...); `children` as from children_of()."""
    children = children_of() if children is None else children
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pin_descendants(pid, cpu):
    """Moves every thread of every process below `pid` to `cpu`: an isolate's Deno is a grandchild
    (through bubblewrap) and inherited its parent's CPU when it was spawned."""
    for child in descendants(pid):
        subprocess.run(["taskset", "-a", "-p", "-c", cpu, str(child)], capture_output=True)


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
    """The subgate under test: SUBGATE=PATH (a binary built elsewhere), else build-release's."""
    if os.environ.get("SUBGATE"):
        return os.path.abspath(os.environ["SUBGATE"])
    return os.path.join(ROOT, "build-release", "subgate")


def prepare(*groups, targets=("subgate",)):
    """Installs the setup groups (scripts/setup.sh) and builds the release targets; returns
    subgate_bin(). With SUBGATE set it does neither (the other targets must be built already)."""
    if os.environ.get("SUBGATE"):
        return subgate_bin()
    subprocess.run([os.path.join(ROOT, "scripts", "setup.sh"), *groups], check=True)
    subprocess.run([os.path.join(ROOT, "scripts", "build.sh"), "release", *targets], check=True)
    return subgate_bin()


def deno_bin():
    return subprocess.run([os.path.join(ROOT, "scripts", "deno_path.sh")], capture_output=True, text=True,
                          check=True).stdout.strip()


def certificate(d):
    """A self-signed certificate for 127.0.0.1 in d: cert.pem, key.pem, and both.pem (HAProxy's)."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", f"{d}/key.pem",
                    "-out", f"{d}/cert.pem"], check=True, capture_output=True, timeout=60)
    with open(f"{d}/both.pem", "w") as out:
        out.write(open(f"{d}/cert.pem").read() + open(f"{d}/key.pem").read())


# --- the load curve ------------------------------------------------------------------------
# A point is (client, listener, connections, streams). Its name says it: h1-N (wrk over
# HTTP/1.1 keep-alive, N connections), h1tls-N (the same over TLS), h2c-CxS (h2load over h2c
# by prior knowledge, C clients x S streams), h2tls-CxS (the same over TLS, ALPN h2). A server
# under test listens on three ports: "h1" (HTTP/1.1), "h2c" (http2) and "tls" (ssl http2).
CURVE = ("h1-1", "h1-10", "h1-50", "h1-200", "h1tls-50", "h2c-1x1", "h2c-10x5", "h2c-10x10", "h2c-20x20",
         "h2tls-1x1", "h2tls-10x5", "h2tls-10x10", "h2tls-20x20")
_POINT = re.compile(r"(h1|h1tls)-([1-9][0-9]*)|(h2c|h2tls)-([1-9][0-9]*)x([1-9][0-9]*)")


def point(name):
    """(client, listener, connections, streams) of a point's name; SystemExit if it is none."""
    m = _POINT.fullmatch(name)
    if not m:
        raise SystemExit(f"bench: {name!r} is no point: h1-N, h1tls-N, h2c-CxS or h2tls-CxS "
                         f"(the curve: {','.join(CURVE)})")
    if m.group(1):
        return "wrk", "h1" if m.group(1) == "h1" else "tls", int(m.group(2)), 1
    return "h2load", "h2c" if m.group(3) == "h2c" else "tls", int(m.group(4)), int(m.group(5))


def points_from_env(default=CURVE):
    """POINTS (comma-separated names), else `default`; each name checked."""
    names = [p for p in os.environ.get("POINTS", ",".join(default)).split(",") if p]
    for name in names:
        point(name)
    return names


def milliseconds(text):
    """wrk's latency ("812.00us", "1.20ms", "2.00s") in ms."""
    for unit, scale in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            return float(text[:-len(unit)]) * scale
    raise ValueError(text)


def _header_args(headers):
    args = []
    for k, v in (headers or {}).items():
        args += ["-H", f"{k}: {v}"]
    return args


def run_wrk(url, connections, seconds, headers=None):
    """One wrk -t1 run: (requests, requests/s, p50 ms, p99 ms); SystemExit on errors or non-2xx."""
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
                          "--latency"] + _header_args(headers) + [url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    if "Non-2xx" in out or "Socket errors" in out or " requests in " not in out:
        raise SystemExit(f"bench: wrk {url}: errors or non-2xx answers\n{out}")
    requests = int(out.split(" requests in ")[0].split()[-1])
    rps = float(out.split("Requests/sec:")[1].split()[0])
    p50 = milliseconds(out.split(" 50%")[1].split()[0])
    p99 = milliseconds(out.split(" 99%")[1].split()[0])
    return requests, rps, p50, p99


def run_h2load(url, clients, streams, seconds, log_path, headers=None):
    """One h2load run (one thread): (requests, requests/s, p50 ms, p99 ms), the latencies from its
    per-request log; SystemExit on errors or non-2xx."""
    if os.path.exists(log_path):
        os.remove(log_path)  # h2load appends to it
    out = subprocess.run(["taskset", "-c", CLIENT_CPU, "h2load", "-D", str(seconds), "-c", str(clients),
                          "-m", str(streams), "-t", "1", f"--log-file={log_path}"] + _header_args(headers) + [url],
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    if ("errored" in out and " 0 errored" not in out) or not os.path.exists(log_path):
        raise SystemExit(f"bench: h2load {url}: errors\n{out}")
    with open(log_path) as f:  # start (µs since epoch), status, µs until the end of the response
        rows = [line.split("\t") for line in f if line.strip()]
    if not rows or any(not row[1].startswith("2") for row in rows):
        raise SystemExit(f"bench: h2load {url}: no answers, or non-2xx ones\n{out}")
    elapsed = sorted(int(row[2]) for row in rows)
    rps = float(out.split("finished in ")[1].split(",")[1].split()[0])
    pick = lambda q: elapsed[min(len(elapsed) - 1, len(elapsed) * q // 100)] / 1000  # noqa: E731
    return len(elapsed), rps, pick(50), pick(99)


class Target:
    """A server under test: its process (CPU time is its own, plus its children's when
    `with_children`: nginx's workers), its ports {"h1", "h2c", "tls"} and the headers every
    request carries."""

    def __init__(self, proc, ports, headers=None, with_children=False):
        self.proc, self.ports, self.headers, self.with_children = proc, ports, headers or {}, with_children


def sweep(points, targets, rounds, duration, warmup, tmp, syscalls=False, profiled=False):
    """Measures every target at every point: a warm-up run of `warmup` s each, then `rounds`
    rounds of `duration` s, the targets in a rotating order (none always first). Returns
    {(point, name): [(requests/s, p50 ms, p99 ms, CPU µs per request, context switches per
    request), one per round]}; with `syscalls`, also {(point, name, "syscalls"): system calls per
    request}, from one more run of each target under perf (not one of the timed rounds); with
    `profiled`, {(point, name, "profile"): {PROFILE_COLUMNS: CPU µs per request}} the same way.
    A target is measured at the points whose listener ("h1", "h2c", "tls") is in its ports."""
    log_path = os.path.join(tmp, "h2load.log")
    results = {}
    for name_of_point in points:
        client, listener, connections, streams = point(name_of_point)
        scheme = "https" if listener == "tls" else "http"
        # A target without this point's listener (bench/floor_relay.c: no TLS) sits the point
        # out.
        names = [name for name in targets if listener in targets[name].ports]

        def once(name, seconds):
            target = targets[name]
            url = f"{scheme}://127.0.0.1:{target.ports[listener]}/"
            if client == "wrk":
                return run_wrk(url, connections, seconds, target.headers)
            return run_h2load(url, connections, streams, seconds, log_path, target.headers)

        if warmup > 0:
            for name in names:
                once(name, warmup)
        for round_index in range(rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                pids = pids_of(targets[name].proc, targets[name].with_children)
                before = sum(cpu_seconds(pid) for pid in pids)
                switches = sum(context_switches(pid) for pid in pids)
                requests, rps, p50, p99 = once(name, duration)
                used = sum(cpu_seconds(pid) for pid in pids) - before
                switches = sum(context_switches(pid) for pid in pids) - switches
                results.setdefault((name_of_point, name), []).append(
                    (rps, p50, p99, used * 1e6 / requests, switches / requests))
        if syscalls:
            for name in names:
                pids = pids_of(targets[name].proc, targets[name].with_children)
                (requests, *_), count = count_syscalls(pids, lambda: once(name, duration))
                if count is not None:
                    results[(name_of_point, name, "syscalls")] = count / requests
        if profiled:
            for name in names:
                pids = pids_of(targets[name].proc, targets[name].with_children)
                (requests, *_), spent = profile(pids, lambda: once(name, duration))
                if spent is not None:
                    results[(name_of_point, name, "profile")] = {
                        column: seconds * 1e6 / requests for column, seconds in spent.items()}
        summary = "  ".join(f"{name} {median(results, name_of_point, name, 3):.1f}" for name in names)
        log(f"{name_of_point}: CPU µs/req {summary}")
    return results


def print_profile(results, points, names):
    """The table of where each target's CPU went per point, from sweep(..., profiled=True)."""
    print("\nwhere the CPU goes (µs per request, perf record, one more run per point and target)")
    print(f"{'point':<12} {'target':<11} " + " ".join(f"{c:>12}" for c in PROFILE_COLUMNS) + f" {'total':>8}")
    for point_name in points:
        for name in names:
            spent = results.get((point_name, name, "profile"))
            if spent:
                print(f"{point_name:<12} {name:<11} " + " ".join(f"{spent[c]:>12.1f}" for c in PROFILE_COLUMNS)
                      + f" {sum(spent.values()):>8.1f}")


def median(results, point_name, name, column):
    """The median over rounds of one column: 0 requests/s, 1 p50 ms, 2 p99 ms, 3 CPU µs/req,
    4 context switches per request."""
    return statistics.median(row[column] for row in results[(point_name, name)])


def round_ratio(results, point_name, a, b, column=3):
    """The median of each round's own a/b ratio (runs next to each other see the same load on a
    shared machine)."""
    return statistics.median(x[column] / y[column] for x, y in zip(results[(point_name, a)], results[(point_name, b)]))
