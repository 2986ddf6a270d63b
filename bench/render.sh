#!/usr/bin/env bash
# Benchmark: druppie's full dry run against Jinja2 rendering the same
# templates. Usage: bench/render.sh [N] (default 1000 plans).
#
# Builds a spec repo from ../shared/bench (one block from the workload's 12
# templates, one plan per answers file), renders it once into a git infra
# repo, then times (a) `druppie diff` against that repo (nothing to change:
# exit 0) and (b) `render_jinja.py --n N` (Jinja2, in memory). The last
# line is `druppie_s=<median> jinja2_s=<median> ratio=<jinja2_s/druppie_s>`.
set -euo pipefail
N="${1:-1000}"
RUNS="${RUNS:-10}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
SHARED="${SHARED:-$HERE/../shared/bench}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 -c 'import yaml, jinja2' 2>/dev/null || pip install --quiet pyyaml jinja2
cargo build --profile dist --quiet --manifest-path "$HERE/Cargo.toml"
BIN="$HERE/target/dist/druppie"

python3 "$SHARED/gen.py" --out "$WORK/work" --n "$N" >/dev/null
python3 "$HERE/bench/mkspec.py" "$WORK/work" "$N" "$WORK/spec"
# The run limits grow with the platform, as its operator sets them (the
# defaults hold 100,000 files, 512 MiB; 15 files a plan here).
FILES=$(( N * 40 > 100000 ? N * 40 : 100000 ))
MIB=$(( N / 10 > 512 ? N / 10 : 512 ))
printf '[render]\nmax_run_files = %d\nmax_run_bytes = "%dMiB"\n' "$FILES" "$MIB" > "$WORK/druppie.toml"
BIN=("$BIN" --config "$WORK/druppie.toml")
"${BIN[@]}" --spec "$WORK/spec" render --out "$WORK/repos" >/dev/null
git -C "$WORK/repos/infra" init -q -b main
git -C "$WORK/repos/infra" add -A
git -C "$WORK/repos/infra" -c user.name=bench -c user.email=bench@example.org \
  -c gc.auto=0 commit -qm "first render"
# Pack the objects now, as a clone or fetch would have them. Left to
# itself, the commit above starts `git gc --auto` in the background, which
# packs the same objects while the timing below runs.
git -C "$WORK/repos/infra" gc --quiet --prune=now
echo "N=$N plans, $(git -C "$WORK/repos/infra" ls-files | wc -l) files in the infra repo"

# Let the kernel write back the ~100 MB just written, so the timing below
# measures druppie and Jinja2 rather than the page-cache flush.
sync

RESULT="$(python3 "$HERE/bench/measure.py" "$RUNS" 2 \
  -- druppie 0 "${BIN[@]}" --spec "$WORK/spec" diff --repos "$WORK/repos" \
  -- jinja2 0 python3 "$SHARED/render_jinja.py" --work "$WORK/work" --n "$N")"
echo "$RESULT"
python3 - "$RESULT" <<'PY'
import re, sys
v = dict(re.findall(r"(\w+)_s=([0-9.]+)", sys.argv[1]))
d, j = float(v["druppie"]), float(v["jinja2"])
print(f"druppie_s={d:.4f} jinja2_s={j:.4f} ratio={j / d:.2f}")
PY
