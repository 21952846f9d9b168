#!/usr/bin/env python3
"""The benchmark harness behind `scripts/bench`; writes BENCHMARKS.md.

Builds in release mode, starts its own three memcached servers on free loopback ports, starts the
benchmark app five times (one server with the near tier, the same server without it, the
embedded store, the three-server fleet without near tier, one server with coalescing off) and, as a reference, nginx answering the floor's value from the first server with
`memcached_pass`; drives each route with wrk (64 connections, interleaved runs, several rounds,
medians), records peak RSS, runs the criterion micro-benchmarks and the embedded-store memory
check, stops everything it started.

Then the section "A real site's traffic" (`scripts/bench_site.py`; `scripts/bench site` runs it
alone, `scripts/bench main` everything else).

Environment: BENCH_SECONDS (per run, default 8), BENCH_ROUNDS (default 4), and those
`scripts/bench_site.py` names.
"""

import json
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
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
CONNECTIONS = 64
WRK_THREADS = 2
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
# Threads serving HTTP, the same for every app (ROCKET_WORKERS) and for nginx (worker_processes):
# one per core this process may run on, as both would pick by default.
WORKERS = len(os.sched_getaffinity(0))
# The key bench_app seeds on liftoff (FLOOR_KEY in examples/bench_app.rs), read by `/floor` and
# served by nginx.
FLOOR_KEY = "bench:floor"

# Runs compared with nginx: each round runs nginx and these back to back, in alternating order.
# (run, app, path, target of run / nginx or None, meaning).
AGAINST_NGINX = [
    ("near-hit-2", "memcached", "/hit", 1.0,
     "a hit from the near tier (Memcached configured) against nginx answering the same value "
     "from the same server"),
    ("far-hit-2", "far", "/hit", 0.8,
     "a Memcached hit with the near tier off (one get) against the same nginx"),
]
# Sequential invalidations timed by the app, for the latency `invalidate*` adds.
INVALIDATIONS = 200
NGINX = "nginx memcached_pass"

# nginx with its own prefix, config, logs and temporary directories (Debian's build defaults to
# paths under /var/lib/nginx and /var/log/nginx, which the benchmark must not touch); the
# upstream keeps its connections to memcached open, as the app's client does, and neither side
# closes a client connection after some number of requests, as Rocket does not.
NGINX_CONF = """
worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    keepalive_requests 1000000000;
    upstream memcached {{
        server 127.0.0.1:{memcached_port};
        keepalive 64;
        keepalive_requests 1000000000;
    }}
    server {{
        listen 127.0.0.1:{port};
        location = /hit {{
            set $memcached_key "{key}";
            memcached_pass memcached;
            default_type "text/plain; charset=utf-8";
        }}
    }}
}}
"""

MISS_LUA = r"""
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  nonce = args[1] or "0"
  n = 0
end
function request()
  n = n + 1
  return wrk.format(nil, "/miss?n=" .. nonce .. "-" .. tid .. "-" .. n)
end
"""


def log(message):
    print(f"bench: {message}", flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, process, what, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"bench: {what} exited early with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench: {what} did not listen on port {port} within {timeout} s")


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        return response.status, dict(response.headers), response.read()


def peak_rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(output):
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        latency[pct] = float(value) * UNITS[unit]
    errors = 0
    match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    if match:
        errors += int(match.group(1))
    match = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if match:
        errors += sum(int(g) for g in match.groups())
    return {"rps": rps, "p50_ms": latency.get("50"), "p99_ms": latency.get("99"), "errors": errors}


def wrk(port, path, script=None, nonce=None):
    command = ["wrk", f"-t{WRK_THREADS}", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency"]
    if script:
        command += ["-s", script]
    command.append(f"http://127.0.0.1:{port}{path}")
    if nonce is not None:
        command += ["--", str(nonce)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return parse_wrk(output)


def nginx_binary():
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.access(found, os.X_OK):
        sys.exit("bench: nginx is missing (scripts/bench installs it)")
    return found


def start_nginx(prefix, memcached_port):
    """nginx in the foreground (`daemon off`) on a free loopback port; its port and process."""
    port = free_port()
    conf = Path(prefix) / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=WORKERS, prefix=prefix, memcached_port=memcached_port,
                                      port=port, key=FLOOR_KEY))
    binary = nginx_binary()
    subprocess.run([binary, "-t", "-q", "-p", prefix, "-e", f"{prefix}/error.log", "-c", str(conf)],
                   check=True)
    # A session of its own, so that its workers can be found and stopped with it.
    process = subprocess.Popen([binary, "-p", prefix, "-e", f"{prefix}/error.log", "-c", str(conf)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, process, "nginx")
    version = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr.strip()
    log(f"{version}: port {port}, {WORKERS} worker processes, memcached_pass 127.0.0.1:{memcached_port}")
    return port, process


def stop_nginx(process):
    """Asks nginx's master to stop (SIGTERM) and waits for it: killed outright, it would leave its
    workers serving. Then ends whatever is left of the session it was started in."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def criterion_figures():
    log("criterion micro-benchmarks")
    # Only this run's figures: earlier runs may have left benchmarks that no longer exist.
    shutil.rmtree(TARGET / "criterion", ignore_errors=True)
    subprocess.run(
        ["cargo", "bench", "-q", "-p", "rocket-route-cache", "--bench", "hot_path", "--",
         "--warm-up-time", "1", "--measurement-time", "3", "--noplot"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )
    figures = {}
    for estimates in (TARGET / "criterion").glob("*/new/estimates.json"):
        name = json.loads((estimates.parent / "benchmark.json").read_text())["title"]
        figures[name] = json.loads(estimates.read_text())["median"]["point_estimate"]
    return figures


def main():
    log("building in release mode")
    subprocess.run(
        ["cargo", "build", "--release", "-q", "--example", "bench_app", "--example", "embedded_memory"],
        cwd=ROOT, check=True,
    )
    app = TARGET / "release" / "examples" / "bench_app"
    started = []
    nginx_prefix = tempfile.mkdtemp(prefix="bench-nginx-")
    nginx = None
    try:
        mc_ports = []
        for _ in range(3):
            mc_port = free_port()
            memcached = subprocess.Popen(
                ["memcached", "-l", "127.0.0.1", "-p", str(mc_port), "-U", "0", "-m", "1024", "-t", "2",
                 "-u", "root"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            started.append(memcached)
            wait_for_port(mc_port, memcached, "memcached")
            mc_ports.append(mc_port)
        fleet = ",".join(f"127.0.0.1:{port}" for port in mc_ports)

        apps = {}
        for name, servers, coalesce, near in (("memcached", f"127.0.0.1:{mc_ports[0]}", True, True),
                                              ("far", f"127.0.0.1:{mc_ports[0]}", True, False),
                                              ("embedded", None, True, True),
                                              ("fleet", fleet, True, False),
                                              ("unprotected", f"127.0.0.1:{mc_ports[1]}", False, True)):
            port = free_port()
            env = dict(os.environ, ROCKET_PORT=str(port), ROCKET_ADDRESS="127.0.0.1",
                       ROCKET_LOG_LEVEL="off", ROCKET_CLI_COLORS="false", ROCKET_WORKERS=str(WORKERS))
            env.pop("MEMCACHED_SERVERS", None)
            if servers:
                env["MEMCACHED_SERVERS"] = servers
            env["BENCH_COALESCE"] = "1" if coalesce else "0"
            env["BENCH_NEAR"] = "1" if near else "0"
            process = subprocess.Popen([str(app)], env=env, stdout=subprocess.PIPE, text=True)
            started.append(process)
            wait_for_port(port, process, f"bench_app ({name})")
            banner = process.stdout.readline().strip()
            log(banner)
            apps[name] = (port, process)
        ports = {name: port for name, (port, _) in apps.items()}
        # After the apps: bench_app seeds the value nginx serves.
        ports["nginx"], nginx = start_nginx(nginx_prefix, mc_ports[0])
        status, _, body = get(ports["nginx"], "/hit")
        assert status == 200 and len(body) == 2048, ("nginx", status, len(body))

        for name, (port, _) in apps.items():
            get(port, "/hit")
            status, headers, body = get(port, "/hit")
            assert status == 200 and headers.get("x-cache") == "HIT" and len(body) == 2048, (name, headers)
            status, _, body = get(port, "/floor")
            assert status == 200 and len(body) == 2048
            status, _, body = get(port, "/floor-counted")
            assert status == 200 and len(body) == 2048
            status, headers, _ = get(port, "/miss?n=warm")
            assert headers.get("x-cache") == "MISS", headers

        # Pairs whose ratio is a result. Each round runs every pair back to back, in alternating
        # order (AB, then BA), so that drift in the machine's speed does not favour one side;
        # ratios are taken per round, then their median is reported.
        pairs = [
            (("static", "memcached", "/static", None), ("near-hit", "memcached", "/hit", None)),
            (("floor", "far", "/floor", None), ("far-hit", "far", "/hit", None)),
            (("static-embedded", "embedded", "/static", None), ("hit-embedded", "embedded", "/hit", None)),
            (("work", "memcached", "/work", None), ("miss", "memcached", "/miss", "lua")),
            (("floor-1", "far", "/floor", None), ("floor-counted", "far", "/floor-counted", None)),
            (("far-hit-1", "far", "/hit", None), ("hit-3-servers", "fleet", "/hit", None)),
            ((NGINX, "nginx", "/hit", None), *[run[:3] + (None,) for run in AGAINST_NGINX]),
        ]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(MISS_LUA)
        results = {run[0]: [] for pair in pairs for run in pair}
        for round_number in range(ROUNDS):
            for pair in pairs:
                for name, app_name, path, script in (pair if round_number % 2 == 0 else pair[::-1]):
                    port = ports[app_name]
                    result = wrk(port, path, lua.name if script else None,
                                 nonce=f"{os.getpid()}r{round_number}" if script else None)
                    results[name].append(result)
                    log(f"round {round_number + 1}/{ROUNDS} {name:20} {result['rps']:10.0f} req/s  "
                        f"p50 {result['p50_ms']:.3f} ms  p99 {result['p99_ms']:.3f} ms  errors {result['errors']}")
        os.unlink(lua.name)
        # One hot key expiring every second, with and without stampede protection.
        hot = {}
        for name, app_name in (("protected", "memcached"), ("unprotected", "unprotected")):
            port = apps[app_name][0]
            before = int(get(port, "/hot-runs")[2])
            started_at = time.time()
            result = wrk(port, "/hot")
            elapsed = time.time() - started_at
            runs = int(get(port, "/hot-runs")[2]) - before
            hot[name] = {"runs": runs, "per_expiry": runs / elapsed, **result}
            log(f"hot key {name:12} {runs} handler runs in {elapsed:.1f} s: {runs / elapsed:.1f} per expiry, "
                f"{result['rps']:.0f} req/s")
        # What `invalidate*` costs its caller (the poll horizon's wait included), one at a time,
        # and how often each process polls the epochs.
        port = apps["memcached"][0]
        polls_before, polls_since = int(get(port, "/polls")[2]), time.time()
        took_us = sorted(int(get(port, "/invalidate")[2]) for _ in range(INVALIDATIONS))
        polls = (int(get(port, "/polls")[2]) - polls_before) / (time.time() - polls_since)
        invalidation = {"count": INVALIDATIONS, "p50_ms": took_us[len(took_us) // 2] / 1000,
                        "p99_ms": took_us[int(len(took_us) * 0.99) - 1] / 1000, "polls_per_s": polls}
        log(f"invalidate: p50 {invalidation['p50_ms']:.1f} ms, p99 {invalidation['p99_ms']:.1f} ms; "
            f"{polls:.1f} epoch polls per second")
        rss = {name: peak_rss_kib(process.pid) for name, (_, process) in apps.items()}
        _, headers, _ = get(apps["memcached"][0], "/hit")
        assert headers.get("x-cache") == "HIT", "the memcached entry survived the runs"
    finally:
        if nginx is not None:
            stop_nginx(nginx)
        for process in reversed(started):
            process.kill()
            process.wait()
        shutil.rmtree(nginx_prefix, ignore_errors=True)

    log("embedded-store memory check (100,000 entries)")
    memory = json.loads(subprocess.run(
        [str(TARGET / "release" / "examples" / "embedded_memory")],
        check=True, capture_output=True, text=True,
    ).stdout.strip().splitlines()[-1])
    micro = criterion_figures()
    write_report(results, rss, memory, micro, hot, invalidation)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def write_report(results, rss, memory, micro, hot, invalidation):
    summary = {
        name: {
            "rps": median([r["rps"] for r in rs]),
            "p50_ms": median([r["p50_ms"] for r in rs]),
            "p99_ms": median([r["p99_ms"] for r in rs]),
            "errors": sum(r["errors"] for r in rs),
            "all_rps": [round(r["rps"]) for r in rs],
        }
        for name, rs in results.items()
    }

    def ratio(a, b):
        per_round = [x["rps"] / y["rps"] for x, y in zip(results[a], results[b])]
        return statistics.median(per_round), per_round

    ratios = [
        ("near hit / static", *ratio("near-hit", "static"), 0.85,
         "a hit from the near tier (Memcached configured) against Rocket serving the body directly"),
        ("far hit / floor", *ratio("far-hit", "floor"), 0.90,
         "a Memcached hit, near tier off (one get), against one raw get through the same client"),
        ("hit-embedded / static", *ratio("hit-embedded", "static-embedded"), 0.90,
         "an embedded hit against Rocket serving the body directly"),
        ("miss / work", *ratio("miss", "work"), 0.95,
         "a miss (get, counters and lease, run, store) against the same work uncached"),
        ("near hit / work", *ratio("near-hit", "work"), None,
         "the speed-up a user sees for a 2 ms handler"),
        ("hit-3-servers / far hit", *ratio("hit-3-servers", "far-hit-1"), None,
         "a far hit routed across three servers against one server, run back to back"),
        ("floor-counted / floor", *ratio("floor-counted", "floor-1"), None,
         "what a hit paid before epoch polls: the raw get batched with the epoch read "
         "(one round trip, two operations), against the get alone"),
        *[(f"{run.removesuffix('-2').replace('-', ' ')} / nginx", *ratio(run, NGINX), target, meaning)
          for run, _, _, target, meaning in AGAINST_NGINX],
    ]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown")
    memcached_version = subprocess.run(["memcached", "-V"], capture_output=True, text=True).stdout.strip()
    nginx_version = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True).stderr.strip()
    nginx_version = nginx_version.removeprefix("nginx version: ")
    lines = [
        "# Benchmarks",
        "",
        "Written by `scripts/bench` (see README, \"Performance and benchmarks\"); do not edit by hand.",
        "",
        f"- Machine: {os.cpu_count()} cores ({cpu}); {memcached_version}; {nginx_version}; wrk {WRK_THREADS} "
        f"threads, {CONNECTIONS} connections, {SECONDS} s per run, {ROUNDS} rounds; {WORKERS} Rocket workers "
        f"and {WORKERS} nginx worker processes.",
        "- Each round runs the two sides of every ratio back to back, in alternating order (AB, BA, ...);",
        "  a ratio is the median of its per-round ratios, a run's figures the median over rounds.",
        "- Every route answers the same 2 KiB body. wrk, the app and memcached share the machine's cores,",
        "  so absolute figures are lower than on separate hosts; the ratios compare runs made the same way",
        "  in the same session.",
        f"- `{NGINX}` is a reference, not this crate: nginx with `memcached_pass` and upstream keepalive",
        "  answering the floor's 2 KiB value from the same memcached as the `floor` and `hit-memcached` runs.",
        "",
        "## Ratios",
        "",
        "| ratio | median | per round | target | meaning |",
        "|---|---|---|---|---|",
    ]
    for name, value, per_round, target, meaning in ratios:
        verdict = "" if target is None else (f">= {target:.2f} " + ("(met)" if value >= target else "(**missed**)"))
        rounds = ", ".join(f"{r:.2f}" for r in per_round)
        lines.append(f"| {name} | {value:.2f} | {rounds} | {verdict} | {meaning} |")
    lines += [
        "",
        "## Runs",
        "",
        "| run | req/s (median) | p50 ms | p99 ms | errors | req/s per round |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.3f} | {s['p99_ms']:.3f} | {s['errors']} | "
                     f"{', '.join(str(r) for r in s['all_rps'])} |")
    lines += [
        "",
        "Peak RSS of the app (VmHWM): " + ", ".join(f"{name} {kib / 1024:.1f} MiB" for name, kib in rss.items()) + ".",
        "",
        "## Invalidation",
        "",
        f"{invalidation['count']} `invalidate_tag` calls one after another on the app with the near tier "
        f"(one server): p50 {invalidation['p50_ms']:.1f} ms, p99 {invalidation['p99_ms']:.1f} ms, as its "
        "caller waits (the increments, then the poll horizon: `epoch_poll` 50 ms plus the poll's deadline "
        f"50 ms). The app polled the epochs {invalidation['polls_per_s']:.1f} times per second meanwhile "
        "(one batch to each server per poll).",
        "",
        "## One hot key expiring every second",
        "",
        f"`/hot` has a 1 s TTL and 2 ms of work per run; wrk drives it for {SECONDS} s with "
        f"{CONNECTIONS} connections.",
        "",
        "| | handler runs per expiry | req/s | p99 ms |",
        "|---|---|---|---|",
        *[f"| {name} | {h['per_expiry']:.1f} | {h['rps']:.0f} | {h['p99_ms']:.3f} |" for name, h in hot.items()],
        "",
        "## Micro-benchmarks (criterion, median)",
        "",
        "| operation | ns | target | note |",
        "|---|---|---|---|",
    ]
    targets = {
        "key: build from a realistic request": "< 1000",
        "frame: encode + decode 2 KiB response": "< 2000",
    }
    notes = {
        "rocket local: static 2 KiB": "whole request through Rocket's local client, no sockets",
        "rocket local: embedded hit 2 KiB": "the same, served by `#[cached_route]` from the embedded store",
    }
    for name in sorted(micro):
        lines.append(f"| {name} | {micro[name]:.0f} | {targets.get(name, '')} | {notes.get(name, '')} |")
    lines += [
        "",
        "`frame: decode` includes copying the 2 KiB frame into a fresh buffer, as a Memcached read",
        "hands over an owned one.",
        "",
        "## Embedded store memory",
        "",
        f"{memory['inserted']:,} distinct 2 KiB responses through a cached route into a store bounded at "
        f"{memory['capacity_bytes'] / 2**20:.0f} MiB: it holds {memory['held_entries']:,} entries weighing "
        f"{memory['held_bytes'] / 2**20:.1f} MiB. RSS {memory['rss_before_kib'] / 1024:.1f} MiB before, "
        f"{memory['rss_after_kib'] / 1024:.1f} MiB after (peak {memory['rss_peak_kib'] / 1024:.1f} MiB).",
        "",
    ]
    (ROOT / "BENCHMARKS.md").write_text("\n".join(lines))
    log("wrote BENCHMARKS.md")
    print("\n".join(lines))


if __name__ == "__main__":
    import bench_site

    if sys.argv[1:] == ["site"]:
        bench_site.main()
    elif sys.argv[1:] == ["main"]:
        # The site section of BENCHMARKS.md is kept as it is.
        kept = bench_site.section()
        main()
        if kept:
            bench_site.splice(kept)
    else:
        main()
        bench_site.main()
