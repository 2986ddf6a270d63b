#!/usr/bin/env python3
"""Benchmark `druppie serve` with the plain-git forge on local bare repos.

Usage: bench/daemon.py [--latency N] [--burst N] [--reconciles N] (0 skips a part)

The spec is this repository's example (blocks, templates, stacks, plans),
pushed to a bare spec repo beside the infra repo. A release daemon is
started on 127.0.0.1 with a webhook secret, and three things are measured:

1. latency: a one-plan change is pushed to the spec repo, then a signed
   push webhook is sent; the time from the webhook to the signed commit on
   the infra repo's main (p50/p95 over N changes);
2. burst: one change, then N webhook deliveries (distinct ids, 8 senders)
   within 10 s; afterwards exactly one new commit on main and at most one
   on each proposal branch (open proposals are rebuilt on the new main),
   and how many reconciles ran;
3. memory: N reconciles (webhooks that name no commit, one after the
   other); RSS after the first 5% and at the end.
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECRET = "bench-secret"


def git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.name=Person", "-c", "user.email=person@example.org",
         "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd, check=True, capture_output=True, text=True).stdout


def setup(tmp):
    spec = os.path.join(tmp, "spec-src")
    os.makedirs(spec)
    for d in ["bouwblokken", "skills", "templates", "spec"]:
        shutil.copytree(os.path.join(HERE, d), os.path.join(spec, d))
    return forge_around(tmp, spec)


def forge_around(tmp, spec):
    """A plain-git forge in `tmp` with `spec` (a directory, committed
    here) as its spec repo and an infra repo holding only a README, a
    person's clone of the spec (`spec-work`), a signing key and the
    daemon's druppie.toml; returns (forge, config)."""
    forge = os.path.join(tmp, "forge")
    os.makedirs(forge)
    git(spec, "init", "-q")
    git(spec, "add", "-A")
    git(spec, "commit", "-qm", "spec")
    # Packed, as a push leaves it on a forge: a local clone would share
    # the loose objects of the commit above, and the first commit in
    # spec-work would start `git gc` on them in the background, while
    # the daemon is timed.
    git(tmp, "clone", "-q", "--bare", "--no-local", spec, os.path.join(forge, "spec.git"))
    git(tmp, "clone", "-q", os.path.join(forge, "spec.git"), "spec-work")
    git(forge, "init", "-q", "--bare", "infra.git")
    work = os.path.join(tmp, "infra-work")
    git(tmp, "clone", "-q", os.path.join(forge, "infra.git"), work)
    with open(os.path.join(work, "README.md"), "w") as f:
        f.write("# infra\n")
    git(work, "add", "-A")
    git(work, "commit", "-qm", "start")
    git(work, "push", "-q", "origin", "main")
    key = os.path.join(tmp, "key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    config = os.path.join(tmp, "druppie.toml")
    with open(config, "w") as f:
        f.write(f"""[spec]
url = "{forge}/spec.git"
branch = "main"
[forge]
kind = "git"
base = "{forge}"
[repos]
cache_dir = "{tmp}/cache"
[signing]
key = "{key}"
[server]
listen = "127.0.0.1:0"
poll_interval = "1h"
webhook_secret_env = "BENCH_WEBHOOK_SECRET"
""")
    return forge, config


class Daemon:
    def __init__(self, binary, config, tmp):
        env = dict(os.environ, BENCH_WEBHOOK_SECRET=SECRET, HOME=tmp)
        env.pop("KUBECONFIG", None)
        self.proc = subprocess.Popen([binary, "--config", config, "serve"], env=env,
                                     stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     text=True)
        for line in self.proc.stderr:
            if '"listening"' in line:
                self.addr = json.loads(line)["fields"]["addr"]
                break
        # BENCH_LOG=<file> keeps the daemon's log (with DRUPPIE_LOG=druppie=debug,
        # each stage's time); else it is read and dropped.
        log = os.environ.get("BENCH_LOG")
        sink = open(log, "w", buffering=1) if log else None
        threading.Thread(target=lambda: [sink.write(line) if sink else None
                                         for line in self.proc.stderr], daemon=True).start()
        while self.get("/readyz")[0] != 200:
            time.sleep(0.05)

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://{self.addr}{path}") as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def hook(self, delivery, after, repo="spec"):
        body = json.dumps({"ref": "refs/heads/main", "after": after,
                           "repository": {"name": repo, "full_name": f"platform/{repo}"}}).encode()
        sig = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        req = urllib.request.Request(f"http://{self.addr}/webhooks/gitea", data=body, headers={
            "content-type": "application/json", "x-gitea-event": "push",
            "x-gitea-delivery": delivery, "x-gitea-signature": sig})
        with urllib.request.urlopen(req) as r:
            return r.status

    def metric(self, series):
        text = self.get("/metrics")[1]
        m = re.search("^" + re.escape(series) + r" (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    def reconciles(self):
        return sum(self.metric(f'druppie_reconciles_total{{result="{r}"}}')
                   for r in ["success", "failed", "terminal", "dry-run"])

    def rss_kb(self):
        return rss_kb(self.proc.pid)

    def rss_parts(self):
        """The daemon's RSS by kind: heap and stacks (anon), mapped
        files (git packs, the binary) and shared memory (files mapped
        from a tmpfs), in MB."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            status = f.read()
        return {kind: int(re.search(rf"Rss{kind}:\s+(\d+)", status).group(1)) / 1024
                for kind in ("Anon", "File", "Shmem")}

    def children_rss_kb(self):
        """The RSS of the daemon's children (the kept render check)."""
        total = 0
        for task in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{task}/children") as f:
                for pid in f.read().split():
                    try:
                        total += rss_kb(int(pid))
                    except (FileNotFoundError, AttributeError):
                        pass
        return total

    def stop(self):
        self.proc.terminate()
        return self.proc.wait(timeout=60)


def change(tmp, n):
    """Releases docs-portal 2.0.<n> and pushes; returns the spec commit."""
    work = os.path.join(tmp, "spec-work")
    plan = os.path.join(work, "spec/plans/docs-portal.yaml")
    with open(plan) as f:
        text = f.read()
    text = re.sub(r"docs-portal:2\.0\.\d+", f"docs-portal:2.0.{n}", text)
    with open(plan, "w") as f:
        f.write(text)
    git(work, "commit", "-qam", f"docs-portal 2.0.{n}")
    git(work, "push", "-q", "origin", "main")
    return git(work, "rev-parse", "HEAD").strip()


def head(forge, ref="main"):
    """The infra repo's `refs/heads/<ref>` on the forge, read from its ref
    files as git stores them (a loose ref, else `packed-refs`): the
    timing loops ask every millisecond, and a `git rev-parse` each time
    took a core's worth of CPU from the daemon being timed."""
    repo = os.path.join(forge, "infra.git")
    name = f"refs/heads/{ref}"
    try:
        with open(os.path.join(repo, name)) as f:
            return f.read().strip()
    except FileNotFoundError:
        pass
    try:
        with open(os.path.join(repo, "packed-refs")) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1] == name:
                    return parts[0]
    except FileNotFoundError:
        pass
    return ""


def count(forge, ref):
    return int(git(os.path.join(forge, "infra.git"), "rev-list", "--count", ref))


def written(forge, spec_commit, *refs):
    """Commits reachable from `refs` that name `spec_commit`."""
    log = git(os.path.join(forge, "infra.git"), "log", "--format=%(trailers:key=Druppie-Spec-Commit,valueonly)", *refs)
    return log.split().count(spec_commit)


def latency(d, forge, tmp, n):
    """Webhook -> signed commit on the infra repo's main, over n changes."""
    times = []
    for i in range(n):
        after = change(tmp, 10 + i)
        before = head(forge)
        t0 = time.perf_counter()
        d.hook(f"lat-{i}", after)
        while head(forge) == before:
            time.sleep(0.001)
        times.append(time.perf_counter() - t0)
        # Let the reconcile finish (the prod proposal, the audit push).
        while d.get("/api/v1/status")[1].count('"applying"'):
            time.sleep(0.005)
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    signed = subprocess.run(
        ["git", "cat-file", "commit", "main"], cwd=os.path.join(forge, "infra.git"),
        capture_output=True, text=True).stdout
    assert "gpgsig -----BEGIN SSH SIGNATURE-----" in signed
    print(f"latency webhook->signed commit: n={len(times)} "
          f"p50={statistics.median(times) * 1000:.0f}ms p95={p95 * 1000:.0f}ms "
          f"max={times[-1] * 1000:.0f}ms", flush=True)


def burst(d, forge, tmp, n):
    """n deliveries of one change within 10 s: no duplicate commits."""
    rec_before = d.reconciles()
    after = change(tmp, 9000)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda i: d.hook(f"burst-{i}", after), range(n)))
    sent = time.perf_counter() - t0
    time.sleep(1)
    while d.get("/api/v1/status")[1].count('"applying"'):
        time.sleep(0.01)
    new_main = written(forge, after, "main")
    branches = git(os.path.join(forge, "infra.git"), "for-each-ref", "--format=%(refname)",
                   "refs/heads/druppie/").split()
    # An open proposal is rebuilt on the new main: one commit per branch.
    per_branch = {b.split("/", 2)[2]: written(forge, after, b, "^main") for b in branches}
    skipped = d.metric('druppie_reconciles_total{result="skipped"}')
    print(f"burst: {n} deliveries in {sent:.2f}s (all 202: {set(codes) == {202}}); "
          f"new commits on main={new_main}, per proposal branch={per_branch}; "
          f"reconciles={d.reconciles() - rec_before:.0f} "
          f"skipped={skipped:.0f}", flush=True)
    assert new_main == 1 and set(per_branch.values()) <= {0, 1}, "duplicates"


def memory(d, n):
    """RSS over n reconciles (webhooks that name no commit, one at a time):
    after the first 5 %, at the end, and sampled 40 times in between."""
    warm = max(1, n // 20)
    every = max(1, n // 40)
    rss, samples = {}, []
    t0 = time.perf_counter()
    for i in range(n):
        target = d.reconciles() + 1
        d.hook(f"mem-{i}", "0" * 40, repo="infra")
        while d.reconciles() < target:
            time.sleep(0.001)
        if i + 1 == warm:
            rss["warm"] = d.rss_kb()
        if (i + 1) % every == 0:
            samples.append(d.rss_kb())
    rss["end"] = d.rss_kb()
    took = time.perf_counter() - t0
    growth = (rss["end"] - rss["warm"]) / rss["warm"] * 100
    print(f"memory: {n} reconciles in {took:.0f}s "
          f"({took / n * 1000:.1f} ms each); RSS after {warm}: "
          f"{rss['warm'] / 1024:.1f} MB, at the end: {rss['end'] / 1024:.1f} MB "
          f"(growth {growth:+.1f}%); sampled every {every}: "
          f"min {min(samples) / 1024:.1f} MB, max {max(samples) / 1024:.1f} MB", flush=True)
    print("memory samples (MB): " + " ".join(f"{s / 1024:.1f}" for s in samples), flush=True)


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def release_binary():
    """The druppie the benchmarks run: built with `--profile dist` (the
    README's figures), or BENCH_PROFILE (`release` builds faster while
    trying a change), or BENCH_BINARY as it is (a build of its own, or a
    wrapper such as a heap profiler's)."""
    if os.environ.get("BENCH_BINARY"):
        return os.environ["BENCH_BINARY"]
    profile = os.environ.get("BENCH_PROFILE", "dist")
    subprocess.run(["cargo", "build", "--profile", profile, "--quiet"], cwd=HERE, check=True)
    return os.path.join(HERE, "target", profile, "druppie")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--latency", type=int, default=40)
    p.add_argument("--burst", type=int, default=1000)
    p.add_argument("--reconciles", type=int, default=10000)
    a = p.parse_args()
    binary = release_binary()
    tmp = tempfile.mkdtemp(prefix="druppie-bench-")
    d = None
    try:
        forge, config = setup(tmp)
        d = Daemon(binary, config, tmp)
        print(f"first reconcile done; infra main has {count(forge, 'main')} commits", flush=True)
        if a.latency:
            latency(d, forge, tmp, a.latency)
        if a.burst:
            burst(d, forge, tmp, a.burst)
        if a.reconciles:
            memory(d, a.reconciles)
        code = d.stop()
        d = None
        print(f"SIGTERM: exit {code}")
    finally:
        if d is not None:
            d.proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
