"""The cloud emulator of the scale bench, in a process of its own.

    python bench/scale_cloud.py <provider> <node> [<node> ...]

Starts ``lbprov.provider.load_provider(<provider>).sandbox(nodes)`` (the public interface every
provider offers: moto for AWS, the GCE and ARM emulators for GCP and Azure), then speaks JSON lines:
it first prints ``{"event": "ready", "pid", "settings", "nodes", "endpoint"}``, then answers one
command per stdin line:

* ``{"cmd": "add_node", "name": N}`` -> ``{"event": "node", "node": {...}}`` (one more instance);
* ``{"cmd": "quit"}`` (or end of input) -> stops the emulator and exits.

Running it apart from the controller is what lets the bench report the controller's own CPU
seconds: an in-process emulator's work would be counted as the controller's.

``BENCH_EMULATOR_SAMPLES=<file>`` writes a wall-clock stack sample of every thread (bench/sampler.py);
``BENCH_EMULATOR_PROFILE=<file>`` a cProfile of every thread in CPU time (bench/thread_profile.py; a
pstats file of the whole run), which tells the emulator's CPU per request from its waiting.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from sampler import StackSampler
from thread_profile import ThreadProfiles

from lbprov.provider import load_provider


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    provider, nodes = argv[0], argv[1:]
    samples_to = os.environ.get("BENCH_EMULATOR_SAMPLES")
    sampler = StackSampler() if samples_to else None
    if sampler is not None:
        sampler.start()
    profile_to = os.environ.get("BENCH_EMULATOR_PROFILE")
    profiles = ThreadProfiles() if profile_to else None
    if profiles is not None:
        profiles.install()
    try:
        return _serve(provider, nodes)
    finally:
        if sampler is not None and samples_to:
            sampler.stop_and_write(samples_to)
        if profiles is not None and profile_to:
            profiles.dump(Path(profile_to))


def _serve(provider: str, nodes: list[str]) -> int:
    with load_provider(provider).sandbox(nodes) as cloud:
        _reply(
            {
                "event": "ready",
                "pid": os.getpid(),
                "settings": cloud.settings,
                "nodes": [dataclasses.asdict(n) for n in cloud.nodes],
                "endpoint": cloud.endpoint,
            }
        )
        for line in sys.stdin:
            if not line.strip():
                continue
            cmd = json.loads(line)
            if cmd["cmd"] == "add_node":
                node = cloud.add_node(cmd["name"])
                _reply({"event": "node", "node": dataclasses.asdict(node)})
            elif cmd["cmd"] == "quit":
                break
            else:
                _reply({"event": "error", "error": f"unknown command {cmd['cmd']!r}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
