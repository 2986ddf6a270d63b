#!/usr/bin/env python3
"""Builds a druppie spec repo from the shared benchmark workload.

  mkspec.py WORK N OUT

WORK is a directory made by ../shared/bench/gen.py. OUT gets one building
block (`service`, infra templates = the workload's 12 templates and its
_partials), one stack, one environment (`bench`), two policies and one plan
per answers file (the first N). The answers' `env` key is renamed to
`app_env`, because `env` is a name druppie's template context reserves;
only template expressions are rewritten, never the text around them.
"""
import json
import re
import sys
from pathlib import Path

work, n, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


TAG = re.compile(r"({{.*?}}|{%.*?%})", re.S)


def rename_env(src: str) -> str:
    return TAG.sub(lambda m: re.sub(r"\benv\b", "app_env", m.group(0)), src)


templates = work / "templates"
for path in sorted(templates.rglob("*")):
    if not path.is_file():
        continue
    rel = path.relative_to(templates).as_posix()
    text = path.read_text(encoding="utf-8")
    if rel.startswith("_partials/"):
        write(out / "templates" / rel, text)
    else:
        write(out / "templates/service/infra" / rel, rename_env(text))

names = json.loads((work / "answers/index.json").read_text())[:n]
sample = json.loads((work / "answers" / f"{names[0]}.json").read_text())


def kind(v) -> str:
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, str):
        return "string"
    return "list" if isinstance(v, list) else "object"


inputs = "".join(
    f"  {'app_env' if k == 'env' else k}: {{type: {kind(v)}, required: true}}\n"
    for k, v in sample.items()
)
write(out / "bouwblokken/service.md", f"""---
id: service
name: Python service
type: service
version: 1.0.0
description: The benchmark workload's service template set.
capabilities: [web]
inputs:
{inputs}---
# Python service
""")
write(out / "spec/platform.yaml", """infra:
  repo: infra
  branch: main
environments:
  bench:
    trust: deploy
    path: apps/bench
    namespace: "{{ plan }}"
""")
write(out / "spec/stacks/service.yaml", "name: service\ncomponents:\n  svc:\n    block: service\n")
write(out / "spec/policies/no-latest-tag.yaml", """name: no-latest-tag
match:
  apiVersions: [apps/v1]
  kinds: [Deployment]
rule: >-
  object.spec.template.spec.containers.all(c, !c.image.endsWith(':latest'))
severity: error
message: images are pinned
""")
write(out / "spec/policies/replicas-bounds.yaml", """name: replicas-bounds
match:
  kinds: [Deployment]
rule: object.spec.replicas >= 1 && object.spec.replicas <= 10
severity: warning
message: replicas between 1 and 10
""")
for name in names:
    answers = json.loads((work / "answers" / f"{name}.json").read_text())
    answers["app_env"] = answers.pop("env")
    plan = {"name": name, "stack": "service", "owner": answers["team"],
            "environments": ["bench"], "inputs": {"svc": answers}}
    # JSON is YAML: one line per plan file keeps this script dependency-free.
    write(out / "spec/plans" / f"{name}.yaml", json.dumps(plan) + "\n")
