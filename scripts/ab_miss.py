#!/usr/bin/env python3
"""Compares the miss path of two builds of the benchmark app side by side.

    scripts/ab_miss.py BEFORE_BENCH_APP AFTER_BENCH_APP

Each build gets a memcached of its own on a free loopback port; rounds alternate the order
(AB, BA, ...) and each round drives `/work` then `/miss` (a unique query per request) with wrk on
the same build, so a build's ratio never mixes its figures with the other's. `scripts/bench`
compares runs made at different times; this puts two builds in one window of the machine's
speed. Build each with `cargo build --release --example bench_app` (in a worktree of the old
commit for BEFORE). Environment: AB_SECONDS (per run, default 5), AB_ROUNDS (default 6).
"""

import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (the harness's helpers: ports, wrk, the miss script)

bench.SECONDS = int(os.environ.get("AB_SECONDS", "5"))
ROUNDS = int(os.environ.get("AB_ROUNDS", "6"))


def start(name, app, started):
    memcached_port = bench.free_port()
    memcached = subprocess.Popen(
        ["memcached", "-l", "127.0.0.1", "-p", str(memcached_port), "-U", "0", "-m", "1024",
         "-t", "2", "-u", "root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    started.append(memcached)
    bench.wait_for_port(memcached_port, memcached, "memcached")
    port = bench.free_port()
    env = dict(os.environ, ROCKET_PORT=str(port), ROCKET_ADDRESS="127.0.0.1",
               ROCKET_LOG_LEVEL="off", MEMCACHED_SERVERS=f"127.0.0.1:{memcached_port}",
               BENCH_COALESCE="1")
    process = subprocess.Popen([app], env=env, stdout=subprocess.DEVNULL)
    started.append(process)
    bench.wait_for_port(port, process, name)
    bench.get(port, "/miss?n=warm")
    return port


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    apps = {"before": sys.argv[1], "after": sys.argv[2]}
    started = []
    lua = Path("/tmp") / f"ab-miss-{os.getpid()}.lua"
    lua.write_text(bench.MISS_LUA)
    try:
        ports = {name: start(name, app, started) for name, app in apps.items()}
        ratios = {name: [] for name in apps}
        for round_number in range(ROUNDS):
            order = list(apps) if round_number % 2 == 0 else list(apps)[::-1]
            for name in order:
                work = bench.wrk(ports[name], "/work")["rps"]
                miss = bench.wrk(ports[name], "/miss", str(lua),
                                 nonce=f"ab{os.getpid()}r{round_number}")["rps"]
                ratios[name].append(miss / work)
                print(f"round {round_number + 1}/{ROUNDS} {name:6}: work {work:.0f} req/s, "
                      f"miss {miss:.0f} req/s, miss / work {miss / work:.3f}", flush=True)
        for name, values in ratios.items():
            listed = ", ".join(f"{value:.2f}" for value in values)
            print(f"{name}: miss / work median {statistics.median(values):.3f} ({listed})")
    finally:
        lua.unlink(missing_ok=True)
        for process in started:
            process.terminate()


if __name__ == "__main__":
    main()
