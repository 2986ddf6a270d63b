#!/usr/bin/env python3
"""Times commands: median wall time over RUNS runs after WARMUP runs, and
peak RSS of one run. Each command must exit with its expected code. The
commands take turns (one run of each, then the next round), so a
machine that slows down or speeds up during the measurement moves every
command's figures alike, not one command's more than another's.

  measure.py RUNS WARMUP -- NAME EXPECTED_EXIT CMD... [-- NAME EXPECTED CMD...]

Prints one `NAME_s=<median> NAME_rss_mb=<peak>` line per command.
"""
import os
import resource
import statistics
import subprocess
import sys
import time

runs, warmup = int(sys.argv[1]), int(sys.argv[2])
groups, cur = [], None
for arg in sys.argv[3:]:
    if arg == "--":
        cur = []
        groups.append(cur)
    else:
        cur.append(arg)


def peak_rss_mb(cmd, expected):
    pid = os.fork()
    if pid == 0:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.execvp(cmd[0], cmd)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != expected:
        sys.exit(f"{cmd[0]}: exit {code}, expected {expected}")
    return usage.ru_maxrss / 1024


def timed(name, expected, cmd):
    t = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - t
    if done.returncode != expected:
        sys.exit(f"{name}: exit {done.returncode}, expected {expected}\n"
                 + done.stderr.decode(errors="replace")[-2000:])
    return elapsed


commands = [(name, int(expected), cmd) for name, expected, *cmd in groups]
times = {name: [] for name, _, _ in commands}
for i in range(warmup + runs):
    for name, expected, cmd in commands:
        elapsed = timed(name, expected, cmd)
        if i >= warmup:
            times[name].append(elapsed)
for name, expected, cmd in commands:
    print(f"{name}_s={statistics.median(times[name]):.4f} "
          f"{name}_rss_mb={peak_rss_mb(cmd, expected):.1f}",
          flush=True)
