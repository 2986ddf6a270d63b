#!/usr/bin/env bash
# Benchmark: druppie's peak memory on hostile templates. Usage:
#   bench/memory.sh [PROFILE]   (release, the default; dev; or dist)
#
# Builds a small spec repo per case (two blocks, one plan in two
# environments), runs `druppie validate --render` on it under
# /usr/bin/time, and prints one line per case: its exit code, the peak
# resident memory (MiB) and the first line druppie printed. Every hostile
# case must exit 1; the last line compares the largest peak with the
# documented ceiling, max_run_bytes + max_template_memory x threads +
# 64 MiB, for the default [render] limits.
set -euo pipefail
PROFILE="${1:-release}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

case "$PROFILE" in
  release) cargo build --release --quiet --manifest-path "$HERE/Cargo.toml"; BIN="$HERE/target/release/druppie" ;;
  dev) cargo build --quiet --manifest-path "$HERE/Cargo.toml"; BIN="$HERE/target/debug/druppie" ;;
  dist) cargo build --profile dist --quiet --manifest-path "$HERE/Cargo.toml"; BIN="$HERE/target/dist/druppie" ;;
  *) echo "usage: $0 [release|dev|dist]" >&2; exit 2 ;;
esac
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }

# spec DIR: the two-block, one-plan spec every case starts from.
spec() {
  local d="$1"
  mkdir -p "$d/spec/plans" "$d/spec/stacks" "$d/bouwblokken" \
    "$d/templates/web/infra" "$d/templates/db/infra"
  cat >"$d/spec/platform.yaml" <<'EOF'
infra:
  repo: infra
  branch: main
environments:
  dev: {trust: deploy, path: apps/dev, namespace: "{{ plan }}-dev"}
  prod: {trust: deploy, path: apps/prod, namespace: "{{ plan }}"}
EOF
  cat >"$d/bouwblokken/web.md" <<'EOF'
---
id: web
name: Web
type: service
version: 1.0.0
description: A web app.
inputs:
  replicas: {type: integer, default: 1}
---
EOF
  cat >"$d/bouwblokken/db.md" <<'EOF'
---
id: db
name: Database
type: database
version: 1.0.0
description: A database.
inputs:
  instances: {type: integer, default: 1}
---
EOF
  cat >"$d/spec/stacks/app.yaml" <<'EOF'
name: app
description: A web app and its database.
components:
  db: {block: db}
  web: {block: web}
EOF
  cat >"$d/spec/plans/shop.yaml" <<'EOF'
name: shop
stack: app
owner: team-shop
environments: [dev, prod]
EOF
  echo "kind: Deployment" >"$d/templates/web/infra/deployment.yaml.j2"
  echo "kind: ConfigMap" >"$d/templates/db/infra/config.yaml.j2"
}

# case NAME: a fresh spec in $WORK/NAME, printed as its directory.
new_case() { local d="$WORK/$1"; spec "$d"; echo "$d"; }

d="$(new_case baseline)"
d="$(new_case doubling)"
echo "{% set a = 'x' * (50000000 * instances) %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{{ b|length }}" >"$d/templates/db/infra/bomb.yaml.j2"
d="$(new_case folded)"
echo "{% set a = 'x' * 50000000 %}{% set b = a ~ a ~ a ~ a ~ a ~ a ~ a ~ a %}{{ b|length }}" >"$d/templates/db/infra/bomb.yaml.j2"
d="$(new_case replace)"
echo "{% set a = 'x' * 1000 %}{% set b = a|replace('x', a) %}{{ b|replace('x', b)|length }}" >"$d/templates/db/infra/bomb.yaml.j2"
d="$(new_case join)"
echo "{% set a = 'x' * (10000000 * instances) %}{% set l = [a, a, a, a, a, a, a, a] %}{{ (l + l + l + l)|join(a)|length }}" >"$d/templates/db/infra/bomb.yaml.j2"
d="$(new_case loop)"
printf '{%% for i in range(1000) %%}{%% for j in range(1000) %%}%s\n{%% endfor %%}{%% endfor %%}' "$(printf 'x%.0s' $(seq 200))" >"$d/templates/db/infra/bomb.yaml.j2"
d="$(new_case files_1000x4MB)"
for i in $(seq -w 0 999); do
  echo "{{ 'x' * (4000000 * instances) }}" >"$d/templates/db/infra/big-$i.yaml.j2"
done
d="$(new_case files_1000x4MB_run_limit)"
for i in $(seq -w 0 999); do
  echo "{{ 'x' * (4000000 * instances) }}" >"$d/templates/db/infra/big-$i.yaml.j2"
done
printf '[render]\nmax_instance_bytes = "8GiB"\nmax_instance_files = 100000\n' >"$d/druppie.toml"
d="$(new_case constants_1000x4MB)"
for i in $(seq -w 0 999); do
  echo "{{ 'x' * 4000000 }}" >"$d/templates/db/infra/big-$i.yaml.j2"
done

THREADS="$(nproc)"
CEILING=$((512 + 64 * THREADS + 64))
echo "druppie $("$BIN" --version | head -1), profile $PROFILE, $THREADS threads, default [render] limits"
printf '%-26s %4s %9s  %s\n' case exit peak_MiB "first line"
MAX=0
for name in baseline doubling folded replace join loop files_1000x4MB files_1000x4MB_run_limit constants_1000x4MB; do
  d="$WORK/$name"
  config=()
  [ -f "$d/druppie.toml" ] && config=(--config "$d/druppie.toml")
  set +e
  /usr/bin/time -f '%M' -o "$WORK/rss" "$BIN" --spec "$d" "${config[@]}" --color never \
    validate --render >"$WORK/out" 2>"$WORK/err"
  code=$?
  set -e
  kib="$(tail -1 "$WORK/rss")"
  mib=$((kib / 1024))
  [ "$mib" -gt "$MAX" ] && MAX=$mib
  first="$(grep -m1 -E '^(error|spec is valid)' "$WORK/err" "$WORK/out" -h | cut -c1-110)"
  printf '%-26s %4s %9s  %s\n' "$name" "$code" "$mib" "$first"
  if [ "$name" = baseline ] && [ "$code" != 0 ]; then echo "baseline failed" >&2; cat "$WORK/err" >&2; exit 1; fi
  if [ "$name" != baseline ] && [ "$code" != 1 ]; then echo "$name: expected exit 1" >&2; exit 1; fi
done
echo "peak_max_mib=$MAX ceiling_mib=$CEILING"
[ "$MAX" -lt "$CEILING" ]
