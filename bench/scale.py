#!/usr/bin/env python3
"""Benchmark `druppie serve` at platform scale, each figure paired with
git doing the same job in the same run.

Usage: bench/scale.py [--plans N] [--nothing N] [--changes N]

The spec is N plans of the shared benchmark workload (../shared/bench,
built by bench/mkspec.py: one block of 12 templates, one `deploy`
environment), pushed to a bare spec repo on a plain-git forge of local
bare repos with an empty infra repo. A release daemon (`--profile dist`)
is started and measured:

1. first apply: from the start of `druppie serve` to ready (the first
   reconcile wrote every plan into the empty infra repo and pushed it);
   git: `druppie render --out`, then `git add -A && git commit` of it;
2. nothing changed: a webhook about the infra repo when nothing moved,
   to the end of its reconcile (p50/p95 over --nothing webhooks; the
   first one after the first apply looks at everything once more, as
   every reconcile after a write does); git: `git status` on the
   rendered tree;
3. one plan changed: a new image tag in one plan, pushed, and its
   webhook, to the signed commit on the infra repo's main (p50/p95 over
   --changes changes); git: one rendered file changed, then
   `git add -A && git commit`;
4. the daemon's RSS at the end, after the reconciles it counts.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, "bench"))
import daemon as base  # noqa: E402  (bench/daemon.py: the forge and the daemon)

SHARED = os.environ.get("SHARED", os.path.join(HERE, "..", "shared", "bench"))


def percentiles(times):
    times = sorted(times)
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    return statistics.median(times) * 1000, p95 * 1000


def timed(cmd, cwd):
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t0


def setup(tmp, n):
    """The forge (spec, empty infra) and druppie.toml for n plans."""
    subprocess.run([sys.executable, os.path.join(SHARED, "gen.py"), "--out",
                    os.path.join(tmp, "work"), "--n", str(n)], check=True, capture_output=True)
    spec = os.path.join(tmp, "spec-src")
    subprocess.run([sys.executable, os.path.join(HERE, "bench/mkspec.py"),
                    os.path.join(tmp, "work"), str(n), spec], check=True)
    forge, config = base.forge_around(tmp, spec)
    # 18 files a plan: the run limits grow with the platform, as its
    # operator sets them (the defaults hold 100,000 files, 512 MiB).
    with open(config, "a") as f:
        f.write(f"\n[render]\nmax_run_files = {max(100_000, 40 * n)}\n"
                f"max_run_bytes = \"{max(512, n // 10)}MiB\"\n")
    return spec, forge, config


def git_baselines(binary, spec, config, tmp):
    """git doing each job on the same rendered tree."""
    out = os.path.join(tmp, "rendered")
    t0 = time.perf_counter()
    subprocess.run([binary, "--config", config, "--spec", spec, "render", "--out", out],
                   check=True, capture_output=True)
    infra = os.path.join(out, "infra")
    base.git(infra, "init", "-q")
    base.git(infra, "-c", "gc.auto=0", "add", "-A")
    base.git(infra, "-c", "gc.auto=0", "commit", "-qm", "first render")
    first = time.perf_counter() - t0
    files = int(subprocess.run(["git", "ls-files"], cwd=infra, capture_output=True,
                               text=True).stdout.count("\n"))
    status = [timed(["git", "status", "--porcelain"], infra) for _ in range(10)]
    one = []
    target = subprocess.run(["git", "ls-files"], cwd=infra, capture_output=True,
                            text=True).stdout.split()[0]
    for i in range(10):
        with open(os.path.join(infra, target), "a") as f:
            f.write(f"# change {i}\n")
        one.append(timed(["git", "-c", "user.name=b", "-c", "user.email=b@example.org",
                          "-c", "gc.auto=0", "commit", "-qam", f"change {i}"], infra))
    return first, files, percentiles(status), percentiles(one)


def change(tmp, n):
    """A new image tag in the first plan, pushed; the spec commit."""
    work = os.path.join(tmp, "spec-work")
    plans = sorted(os.listdir(os.path.join(work, "spec/plans")))
    path = os.path.join(work, "spec/plans", plans[0])
    with open(path) as f:
        text = f.read()
    text = re.sub(r'"tag": "[^"]*"', f'"tag": "9.9.{n}"', text, count=1)
    with open(path, "w") as f:
        f.write(text)
    base.git(work, "commit", "-qam", f"tag 9.9.{n}")
    base.git(work, "push", "-q", "origin", "main")
    return base.git(work, "rev-parse", "HEAD").strip()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--plans", type=int, default=1000)
    p.add_argument("--nothing", type=int, default=1000)
    p.add_argument("--changes", type=int, default=20)
    a = p.parse_args()
    binary = base.release_binary()
    tmp = tempfile.mkdtemp(prefix="druppie-scale-")
    d = None
    try:
        spec, forge, config = setup(tmp, a.plans)
        git_first, files, git_status, git_commit = git_baselines(binary, spec, config, tmp)
        t0 = time.perf_counter()
        d = base.Daemon(binary, config, tmp)
        first = time.perf_counter() - t0
        print(f"N={a.plans} plans, {files} files in the infra repo", flush=True)
        print(f"first apply: druppie {first:.2f}s (start to ready); "
              f"git {git_first:.2f}s (render --out, add, commit); "
              f"daemon RSS {d.rss_kb() / 1024:.1f} MB", flush=True)
        idle = []
        for i in range(a.nothing):
            target = d.reconciles() + 1
            t = time.perf_counter()
            d.hook(f"idle-{i}", "0" * 40, repo="infra")
            while d.reconciles() < target:
                time.sleep(0.0005)
            idle.append(time.perf_counter() - t)
        p50, p95 = percentiles(idle)
        print(f"nothing changed, webhook -> reconcile done: p50={p50:.0f}ms p95={p95:.0f}ms; "
              f"git status p50={git_status[0]:.0f}ms p95={git_status[1]:.0f}ms", flush=True)
        changed = []
        for i in range(a.changes):
            after = change(tmp, i)
            before = base.head(forge)
            t = time.perf_counter()
            d.hook(f"change-{i}", after)
            while base.head(forge) == before:
                time.sleep(0.001)
            changed.append(time.perf_counter() - t)
            while d.get("/api/v1/status")[1].count('"applying"'):
                time.sleep(0.005)
        p50, p95 = percentiles(changed)
        print(f"one plan changed, webhook -> signed commit: p50={p50:.0f}ms p95={p95:.0f}ms; "
              f"git add+commit p50={git_commit[0]:.0f}ms p95={git_commit[1]:.0f}ms", flush=True)
        # The last reconcile ends after its commit is on the forge: RSS
        # is read once the daemon has idled for a second.
        settled = d.reconciles()
        time.sleep(1)
        while d.reconciles() != settled:
            settled = d.reconciles()
            time.sleep(1)
        print(f"daemon RSS after {d.reconciles():.0f} reconciles: {d.rss_kb() / 1024:.1f} MB "
              f"(its kept render check: {d.children_rss_kb() / 1024:.1f} MB)", flush=True)
        parts = ", ".join(f"{kind.lower()} {mb:.1f}" for kind, mb in d.rss_parts().items())
        print(f"daemon RSS by kind (MB): {parts}", flush=True)
    finally:
        if d is not None:
            d.stop()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {tmp}", flush=True)
        else:
            subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
