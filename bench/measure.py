#!/usr/bin/env python3
"""Times commands: median wall time over RUNS runs after WARMUP runs, and
peak RSS of one run. Each command must exit with its expected code.

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


for name, expected, *cmd in groups:
    expected = int(expected)
    times = []
    for i in range(warmup + runs):
        t = time.perf_counter()
        done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - t
        if done.returncode != expected:
            sys.exit(f"{name}: exit {done.returncode}, expected {expected}\n"
                     + done.stderr.decode(errors="replace")[-2000:])
        if i >= warmup:
            times.append(elapsed)
    print(f"{name}_s={statistics.median(times):.4f} {name}_rss_mb={peak_rss_mb(cmd, expected):.1f}",
          flush=True)
