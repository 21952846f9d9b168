#!/usr/bin/env python3
"""A real site's traffic, for `scripts/bench` (or `scripts/bench site` alone): writes the section
"A real site's traffic" of BENCHMARKS.md.

Pages `/site/<group>/<id>` of 2 to 20 KiB, requested with a Zipf popularity (s = 1) over 1,000,
100,000 and 1,000,000 URLs (BENCH_SITE_URLS), by wrk (64 connections, a Lua script drawing each
URL), against the benchmark app on one memcached and on a fleet of three, near tier on. Each page
is rendered with 2 ms of work. Per number of URLs and backend: a fresh app and flushed servers,
a warm-up with the work off (BENCH_SITE_WARM seconds, default 10), then runs of
BENCH_SITE_SECONDS (default 6): BENCH_SITE_ROUNDS rounds (default 3, alternating order) of no
invalidations and 10 and 100 per second of tags no page carries, then once no invalidations
again and 10 and 100 per second of `group:{n}` tags (1% of the pages each). Invalidations are issued by the app itself (a task per call). Per cell: requests per
second, p50/p99, the share of requests answered by the near tier, by Memcached (far hits) and by
the handler (misses), Memcached operations per request (every server's `stats`, before and after),
the app's resident memory; and the same traffic with the cache off. BENCH_APP: a bench_app binary
to use instead of building one (to measure another revision back to back).
"""

import os
import statistics
import socket
import subprocess
import tempfile
import time

import bench

URLS = [int(n) for n in os.environ.get("BENCH_SITE_URLS", "1000,100000,1000000").split(",")]
SECONDS = int(os.environ.get("BENCH_SITE_SECONDS", "6"))
ROUNDS = int(os.environ.get("BENCH_SITE_ROUNDS", "3"))
WARM = int(os.environ.get("BENCH_SITE_WARM", "10"))
BEGIN, END = "<!-- site:begin -->", "<!-- site:end -->"

# (cell, invalidations per second, kind). The unrelated ones run ROUNDS times, in alternating
# order; then the others once (they drop pages: the cache is not the same afterwards).
UNRELATED = [
    ("none", 0, "unrelated"),
    ("10/s unrelated", 10, "unrelated"),
    ("100/s unrelated", 100, "unrelated"),
]
RELATED = [
    ("none, again", 0, "unrelated"),
    ("10/s touching 1%", 10, "related"),
    ("100/s touching 1%", 100, "related"),
]
CELLS = UNRELATED + RELATED

ZIPF_LUA = r"""
local n, prefix, cdf = 1000, "/site/", {}
function setup(thread)
  thread:set("seed", math.random(1, 2^30))
end
function init(args)
  n = tonumber(args[1])
  prefix = args[2]
  math.randomseed(seed + os.time())
  local total = 0
  for i = 1, n do total = total + 1 / i end
  local acc = 0
  for i = 1, n do
    acc = acc + 1 / (i * total)
    cdf[i] = acc
  end
  cdf[n] = 1
end
function request()
  local u = math.random()
  local lo, hi = 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return wrk.format(nil, prefix .. (lo % 100) .. "/" .. lo)
end
"""

# Every request a new page (ids past any Zipf draw): what a miss of this traffic costs.
MISS_LUA = r"""
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  base = tonumber(args[1])
  n = 0
end
function request()
  n = n + 1
  local id = base + tid * 10000000 + n
  return wrk.format(nil, "/site/" .. (id % 100) .. "/" .. id)
end
"""

OPS = ["cmd_get", "cmd_set", "cmd_touch", "incr_hits", "incr_misses", "decr_hits", "decr_misses",
       "delete_hits", "delete_misses"]


def memcached_stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    stats = {}
    for line in data.decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT":
            stats[parts[1]] = parts[2]
    return stats


def memcached_ops(ports):
    return sum(int(memcached_stats(port).get(name, 0)) for port in ports for name in OPS)


def flush(ports):
    for port in ports:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"flush_all\r\n")
            sock.recv(64)


def cpu_times():
    """The machine's busy and total jiffies (every core, from /proc/stat)."""
    fields = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def app_stats(port):
    hits, near, misses, stale, bypasses, invalidated = map(int, bench.get(port, "/bench/stats")[2].split())
    return {"hits": hits, "near": near, "misses": misses, "stale": stale, "bypasses": bypasses,
            "invalidated": invalidated}


def zipf(port, urls, prefix, lua):
    command = ["wrk", f"-t{bench.WRK_THREADS}", f"-c{bench.CONNECTIONS}", f"-d{SECONDS}s", "--latency",
               "-s", lua, f"http://127.0.0.1:{port}/", "--", str(urls), prefix]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return bench.parse_wrk(output)


def warm(port, urls, lua):
    bench.get(port, "/bench/work?on=0")
    command = ["wrk", f"-t{bench.WRK_THREADS}", f"-c{bench.CONNECTIONS}", f"-d{WARM}s", "-s", lua,
               f"http://127.0.0.1:{port}/", "--", str(urls), "/site/"]
    subprocess.run(command, check=True, capture_output=True)
    bench.get(port, "/bench/work?on=1")


def start_app(app, servers, poll=True):
    port = bench.free_port()
    env = dict(os.environ, ROCKET_PORT=str(port), ROCKET_ADDRESS="127.0.0.1", ROCKET_LOG_LEVEL="off",
               ROCKET_CLI_COLORS="false", ROCKET_WORKERS=str(bench.WORKERS), MEMCACHED_SERVERS=servers,
               BENCH_COALESCE="1", BENCH_NEAR="1", BENCH_POLL="1" if poll else "0")
    process = subprocess.Popen([str(app)], env=env, stdout=subprocess.PIPE, text=True)
    bench.wait_for_port(port, process, "bench_app (site)")
    bench.log(process.stdout.readline().strip())
    return port, process


def cell(port, process, ports, urls, lua, rate, kind):
    bench.get(port, f"/bench/churn?rate={rate}&kind={kind}")
    before, ops_before = app_stats(port), memcached_ops(ports)
    issued_before = list(map(int, bench.get(port, "/bench/churned")[2].split()))
    started, (busy_before, total_before) = time.time(), cpu_times()
    result = zipf(port, urls, "/site/", lua)
    elapsed, (busy_after, total_after) = time.time() - started, cpu_times()
    after, ops_after = app_stats(port), memcached_ops(ports)
    issued = list(map(int, bench.get(port, "/bench/churned")[2].split()))
    bench.get(port, "/bench/churn?rate=0&kind=unrelated")
    # Let the invalidations in flight end (each waits the poll horizon, 100 ms).
    time.sleep(0.3)
    counted = {k: after[k] - before[k] for k in after}
    requests = counted["hits"] + counted["misses"] + counted["stale"] + counted["bypasses"]
    requests = max(requests, 1)
    return {
        **result,
        "near": counted["near"] / requests,
        "far": (counted["hits"] - counted["near"]) / requests,
        "miss": counted["misses"] / requests,
        "stale": counted["stale"] / requests,
        "ops": (ops_after - ops_before) / requests,
        "requests": requests,
        "invalidations": (issued[1] - issued_before[1]) / elapsed,
        "rss_mib": rss_kib(process.pid) / 1024,
        "busy": (busy_after - busy_before) / max(total_after - total_before, 1),
    }


POLL_SECONDS = 5
WIRE = ["bytes_read", "bytes_written"]


def wire(ports):
    """Bytes both ways and operations, summed over the servers."""
    stats = [memcached_stats(port) for port in ports]
    return (sum(int(s.get(name, 0)) for s in stats for name in WIRE),
            sum(int(s.get(name, 0)) for s in stats for name in OPS))


def polls(app, mc_ports):
    """What the epoch polls cost the wire, per instance and server. An app with polls off issues
    0, 10 and 100 invalidations per second; for POLL_SECONDS alone, then as long again with a
    second, idle app polling the same servers. The second phase's bytes and operations, less the
    first phase's per invalidation times the second phase's invalidations, are the poller's."""
    rows = {}
    for name, ports in (("1 server", mc_ports[:1]), ("3 servers", mc_ports)):
        servers = ",".join(f"127.0.0.1:{p}" for p in ports)
        for rate in (0, 10, 100):
            churner, churning = start_app(app, servers, poll=False)
            try:
                bench.get(churner, f"/bench/churn?rate={rate}&kind=unrelated")
                time.sleep(0.5)
                phases = []
                poller = None
                for with_poller in (False, True):
                    if with_poller:
                        poller = start_app(app, servers, poll=True)
                        # The cache starts polling at its first use.
                        bench.get(poller[0], "/hit")
                        time.sleep(0.5)
                        polls_before = int(bench.get(poller[0], "/polls")[2])
                    bytes_before, ops_before = wire(ports)
                    issued_before = int(bench.get(churner, "/bench/churned")[2].split()[0])
                    started = time.time()
                    time.sleep(POLL_SECONDS)
                    elapsed = time.time() - started
                    bytes_after, ops_after = wire(ports)
                    issued = int(bench.get(churner, "/bench/churned")[2].split()[0]) - issued_before
                    polls_per_s = 0.0
                    if with_poller:
                        polls_per_s = (int(bench.get(poller[0], "/polls")[2]) - polls_before) / elapsed
                    phases.append((bytes_after - bytes_before, ops_after - ops_before, issued, elapsed,
                                   polls_per_s))
            finally:
                for process in (churning, poller[1] if poller else None):
                    if process is not None:
                        process.kill()
                        process.wait()
            (bytes_alone, ops_alone, issued_alone, _, _), (bytes_both, ops_both, issued, elapsed, polls_per_s) = phases
            per_bytes = bytes_alone / issued_alone if issued_alone else 0
            per_ops = ops_alone / issued_alone if issued_alone else 0
            count = len(ports)
            rows[(name, rate)] = {
                "polls": polls_per_s,
                "bytes": (bytes_both - (per_bytes * issued if rate else bytes_alone * elapsed / POLL_SECONDS))
                / elapsed / count,
                "ops": (ops_both - (per_ops * issued if rate else ops_alone * elapsed / POLL_SECONDS))
                / elapsed / count,
            }
            r = rows[(name, rate)]
            bench.log(f"polls, {name}, {rate:3}/s unrelated: {r['polls']:.1f} polls/s, "
                      f"{r['bytes']:.0f} B/s and {r['ops']:.1f} ops/s per server")
    return rows


def run(app, mc_ports):
    backends = [("1 server", mc_ports[:1]), ("3 servers", mc_ports)]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(ZIPF_LUA)
    results = {}
    try:
        for urls in URLS:
            for name, ports in backends:
                flush(ports)
                port, process = start_app(app, ",".join(f"127.0.0.1:{p}" for p in ports))
                try:
                    warm(port, urls, lua.name)
                    rows = {label: [] for label, _, _ in CELLS}
                    order = [cells if i % 2 == 0 else cells[::-1] for i, cells in
                             enumerate([UNRELATED] * ROUNDS)]
                    for label, rate, kind in [c for cells in order for c in cells] + RELATED:
                        r = cell(port, process, ports, urls, lua.name, rate, kind)
                        rows[label].append(r)
                        bench.log(f"site {urls:>8} URLs, {name}, {label:18} {r['rps']:8.0f} req/s  "
                                  f"near {r['near']:.2f} far {r['far']:.2f} miss {r['miss']:.3f}  "
                                  f"ops/req {r['ops']:.2f}  invalidations {r['invalidations']:.1f}/s")
                    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as miss_lua:
                        miss_lua.write(MISS_LUA)
                    command = ["wrk", f"-t{bench.WRK_THREADS}", f"-c{bench.CONNECTIONS}", f"-d{SECONDS}s",
                               "--latency", "-s", miss_lua.name, f"http://127.0.0.1:{port}/", "--",
                               str(2_000_000_000 + 100_000_000 * URLS.index(urls))]
                    rows["every request a miss"] = [bench.parse_wrk(
                        subprocess.run(command, check=True, capture_output=True, text=True).stdout)]
                    os.unlink(miss_lua.name)
                    bench.log(f"site {urls:>8} URLs, {name}, every request a miss "
                              f"{rows['every request a miss'][0]['rps']:8.0f} req/s")
                    if name == backends[0][0]:
                        off = zipf(port, urls, "/site-off/", lua.name)
                        bench.log(f"site {urls:>8} URLs, cache off {off['rps']:8.0f} req/s")
                        results[(urls, "off")] = off
                    results[(urls, name)] = rows
                finally:
                    process.kill()
                    process.wait()
    finally:
        os.unlink(lua.name)
    return backends, results


def report_polls(rows):
    lines = [
        "### What the epoch polls cost",
        "",
        f"An app with polls off invalidates tags no page carries, {POLL_SECONDS} s alone, then as long "
        "with a second, idle instance polling every 50 ms: that instance's share of every server's "
        "`bytes_read` + `bytes_written` and operations (the second phase's, less the first phase's "
        "per invalidation times the second phase's invalidations), per server: each instance polls "
        "each server.",
        "",
        "| servers | invalidations/s | polls/s per instance | bytes/s per instance and server | "
        "operations/s per instance and server |",
        "|---|---|---|---|---|",
    ]
    for (name, rate), r in rows.items():
        lines.append(f"| {name} | {rate} | {r['polls']:.1f} | {r['bytes']:.0f} | {r['ops']:.1f} |")
    worst = max(r["bytes"] for r in rows.values())
    ops = max(r["ops"] for r in rows.values())
    lines += [
        "",
        f"On paper, 1,000 instances and 100 servers: each server answers every instance's polls, "
        f"{1000 * ops:,.0f} operations and {1000 * worst / 2**20:.1f} MiB per second at most in the rows above "
        f"(about {1000 * ops * 100:,.0f} operations per second fleet-wide).",
        "",
    ]
    return lines


def report(backends, results, poll_rows):
    lines = [
        BEGIN,
        "## A real site's traffic",
        "",
        f"Written by `scripts/bench` (or `scripts/bench site` alone). Pages of 2 to 20 KiB at "
        f"`/site/<group>/<id>`, tagged `group:{{group}}`, each rendered with 2 ms of work; wrk "
        f"({bench.CONNECTIONS} connections) draws every URL from a Zipf popularity (s = 1). Per number "
        "of URLs and backend: flushed servers, a new app (near tier 16 MiB, epoch polls every 50 ms), "
        f"{WARM} s of the same traffic with the work off to fill the cache, then {SECONDS} s per run: "
        f"{ROUNDS} rounds of the runs without invalidations and with unrelated ones, in alternating order "
        "(a ratio is the median of its rounds' ratios, given in brackets; a row shows the run of median "
        "req/s), then once each the runs that drop pages. "
        "Invalidations are issued by the app itself, a task per call: of tags no page carries, or "
        "of `group:{n}` (1% of the pages each). Shares are of the requests the cache counted; "
        "operations are every memcached server's gets, sets, touches, increments and deletes, per request "
        "(the invalidations' own included); CPU busy is the machine's (both cores: wrk, the app and "
        "memcached) over the run.",
        "",
        "Targets: with 10 and 100 unrelated invalidations per second, at least 0.9x the requests per "
        "second of the same traffic without them (in the same round); with invalidations "
        "touching 1% of the pages, no more than those pages being missed once: at least 0.9x the rate "
        "predicted from the runs without invalidations plus, per extra miss (the miss share above "
        "theirs), what a miss costs more than their average request (1 / the rate of the same app "
        "when every request is a new page, less 1 / their rate).",
        "",
    ]
    for urls in URLS:
        off = results[(urls, "off")]
        for name, _ in backends:
            runs = results[(urls, name)]
            # A cell's row: its run of median req/s.
            rows = {label: sorted(r, key=lambda x: x["rps"])[(len(r) - 1) // 2] for label, r in runs.items()}
            per_round = {label: [r["rps"] / none["rps"] for r, none in zip(runs[label], runs["none"])]
                         for label, _, _ in UNRELATED}
            base_rps = (rows["none"]["rps"] + rows["none, again"]["rps"]) / 2
            base_miss = (rows["none"]["miss"] + rows["none, again"]["miss"]) / 2
            lines += [
                f"### {urls:,} URLs, {name}",
                "",
                "| invalidations | req/s | vs none | target | p50 ms | p99 ms | near | far | miss | "
                "Memcached ops/req | confirmed/s | RSS MiB | CPU busy |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
            ]
            for label, rate, kind in CELLS:
                r = rows[label]
                if label in per_round:
                    ratio = statistics.median(per_round[label])
                    rounds = ", ".join(f"{x:.2f}" for x in per_round[label])
                    shown = f"{ratio:.2f} ({rounds})" if rate else f"1.00 ({len(runs[label])} runs)"
                else:
                    ratio = r["rps"] / base_rps
                    shown = f"{ratio:.2f}"
                if rate and kind == "unrelated":
                    target = f">= 0.90 {'(met)' if ratio >= 0.9 else '(**missed**)'}"
                elif rate:
                    miss_cost = 1 / rows["every request a miss"]["rps"] - 1 / base_rps
                    predicted = 1 / (1 / base_rps + max(r["miss"] - base_miss, 0) * miss_cost)
                    met = r["rps"] >= 0.9 * predicted
                    target = (f">= 0.90 x {predicted:.0f} predicted: {r['rps'] / predicted:.2f} "
                              f"{'(met)' if met else '(**missed**)'}")
                else:
                    target = ""
                lines.append(
                    f"| {label} | {r['rps']:.0f} | {shown} | {target} | {r['p50_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} | {r['near']:.3f} | {r['far']:.3f} | {r['miss']:.3f} | "
                    f"{r['ops']:.3f} | {r['invalidations']:.1f} | {r['rss_mib']:.0f} | {r['busy']:.2f} |")
            miss = rows["every request a miss"]
            lines += ["", f"Every request a new page (a miss): {miss['rps']:.0f} req/s, p50 {miss['p50_ms']:.2f} ms.", ""]
        lines += [f"Cache off, {urls:,} URLs: {off['rps']:.0f} req/s, p50 {off['p50_ms']:.2f} ms, "
                  f"p99 {off['p99_ms']:.2f} ms.", ""]
    lines += report_polls(poll_rows)
    lines.append(END)
    return "\n".join(lines)


def section():
    """The site section BENCHMARKS.md holds now, if any."""
    path = bench.ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        return BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
    return None


def splice(section):
    path = bench.ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    bench.log("wrote the site section of BENCHMARKS.md")
    print(section)


def main():
    app = os.environ.get("BENCH_APP")
    if not app:
        bench.log("building in release mode")
        subprocess.run(["cargo", "build", "--release", "-q", "--example", "bench_app"], cwd=bench.ROOT,
                       check=True)
        app = bench.TARGET / "release" / "examples" / "bench_app"
    servers = []
    try:
        ports = []
        for _ in range(3):
            port = bench.free_port()
            process = subprocess.Popen(
                ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-m", "1024", "-t", "2",
                 "-u", "root"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            servers.append(process)
            bench.wait_for_port(port, process, "memcached")
            ports.append(port)
        poll_rows = polls(app, ports)
        backends, results = run(app, ports)
    finally:
        for process in servers:
            process.kill()
            process.wait()
    splice(report(backends, results, poll_rows))
