"""The three clouds' scale runs in one go, written to ``bench/results/`` (``make bench-scale``).

    python bench/scale_all.py [--services 1000] [--nodes 20] [--providers aws,gcp,azure] [--out bench/results]
                              [-- <more bench/scale.py options>]

For each provider, ``bench/scale.py --provider P --services N --compare-workers`` (10 workers and
then 1, upstream's default) in a process of its own, its JSON kept as ``scale-<P>-<N>.json`` and its
progress lines as ``scale-<P>-<N>.log``; then ``scale-<N>.md`` with ``bench/scale_table.py``'s tables
of every report, headed by the commit, the date and the machine's load. Azure Services get two ports
(its Services share load balancers by frontend port, so one-port Services would measure little);
the others one. Options after ``--`` go to every ``scale.py`` run unchanged.

A provider whose run fails (exit code not 0) is reported in the markdown with the tail of its log,
and the others still run; the script's exit code is then 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from scale_table import table

HERE = Path(__file__).resolve().parent
PORTS = {"aws": 1, "gcp": 1, "azure": 2}


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--services", type=int, default=1000, help="Services per run (default 1000)")
    p.add_argument(
        "--nodes",
        type=int,
        default=20,
        help="nodes (default 20, as the issue's figures; Azure's 1,000 two-port Services need more than "
        "3: a node is in at most 300 load-balancing rules, and each load balancer needs nodes of its own)",
    )
    p.add_argument("--providers", default="aws,gcp,azure", help="comma-separated (default aws,gcp,azure)")
    p.add_argument("--out", type=Path, default=HERE / "results", help="directory (default bench/results)")
    p.add_argument("--no-compare-workers", action="store_true", help="only the 10-worker run")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1 :]
    return p.parse_args(argv), extra


def commit() -> str:
    out = subprocess.run(
        ["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    dirty = subprocess.run(["git", "-C", str(HERE), "status", "--porcelain"], capture_output=True, text=True)
    return out.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def run_one(provider: str, args: argparse.Namespace, extra: list[str]) -> tuple[Path, Path, int]:
    stem = args.out / f"scale-{provider}-{args.services}"
    argv = [
        sys.executable,
        str(HERE / "scale.py"),
        *("--provider", provider, "--services", str(args.services)),
        *("--ports", str(PORTS.get(provider, 1)), "--nodes", str(args.nodes)),
        *([] if args.no_compare_workers else ["--compare-workers"]),
        *extra,
    ]
    json_path, log_path = stem.with_suffix(".json"), stem.with_suffix(".log")
    print(f"{time.strftime('%H:%M:%S')} {' '.join(argv[1:])}", file=sys.stderr, flush=True)
    with json_path.open("w") as out, log_path.open("w") as log:
        rc = subprocess.run(argv, stdout=out, stderr=log, check=False).returncode
    return json_path, log_path, rc


def markdown(results: list[tuple[str, Path, Path, int]], args: argparse.Namespace, load: list[float]) -> str:
    lines = [
        f"# Scale runs, {args.services} Services per cloud",
        "",
        f"Commit {commit()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} CPUs, "
        f"load average at start {', '.join(f'{x:.1f}' for x in load)}. Seconds are wall-clock (inflated "
        "by other load on a shared machine); call counts and CPU seconds are not.",
        "",
    ]
    for provider, json_path, log_path, rc in results:
        lines.append(f"## {provider}")
        lines.append("")
        if rc != 0:
            tail = log_path.read_text()[-1500:]
            lines += [f"`bench/scale.py` failed (exit {rc}); the end of its log:", "", "```", tail, "```", ""]
            continue
        report = json.loads(json_path.read_text())
        for run in report["runs"]:
            if "error" in run:
                lines += [f"The {run['workers']}-worker run was cut short: {run['error']}", ""]
            if run.get("phases"):
                lines += [table(report, run), ""]
        if "workers_1_over_default_time" in report:
            lines += [f"Time with 1 worker / with 10, per phase: {report['workers_1_over_default_time']}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    load = list(os.getloadavg())
    results = []
    for provider in [p.strip() for p in args.providers.split(",") if p.strip()]:
        json_path, log_path, rc = run_one(provider, args, extra)
        results.append((provider, json_path, log_path, rc))
    md = args.out / f"scale-{args.services}.md"
    md.write_text(markdown(results, args, load))
    print(md)
    return 0 if all(rc == 0 for *_, rc in results) else 1


if __name__ == "__main__":
    sys.exit(main())
