"""``python tests/crash/serve_cloud.py``: one provider's emulator in its own process, behind a
:class:`FaultProxy`, for the crash harness.

Writes a JSON file with the settings that point at the proxy (what ``lbprov run`` uses), the
settings that point at the emulator directly (what the harness's final checks use: no faults),
and the nodes to register; then serves until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultproxy import FaultProxy

from lbprov.provider import load_provider
from lbprov.sandbox.kube_tls import make_certificates

ENDPOINT_SETTINGS = {"aws": "endpoint_url", "gcp": "api_endpoint", "azure": "base_url"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--provider", required=True)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--throttle", type=float, default=0.0)
    parser.add_argument("--lost", type=float, default=0.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    names = [f"node-{i}" for i in range(1, args.nodes + 1)]
    with load_provider(args.provider).sandbox(names) as cloud:
        field = ENDPOINT_SETTINGS[args.provider]
        cert = key = None
        direct = dict(cloud.settings)
        proxied = dict(cloud.settings)
        if args.provider == "azure":
            files = make_certificates(["127.0.0.1", "localhost"])
            cert, key = files.cert_file, files.key_file
            proxied["ca_bundle"] = files.ca_file
        proxy = FaultProxy(
            args.provider,
            str(direct[field]),
            seed=args.seed,
            throttle=args.throttle,
            lost=args.lost,
            cert_file=cert,
            key_file=key,
        ).start()
        proxied[field] = proxy.url
        doc = {
            "settings": proxied,
            "direct": direct,
            "nodes": [asdict(n) for n in cloud.nodes],
        }
        tmp = Path(args.out + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.rename(args.out)
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        print(json.dumps(proxy.counts), flush=True)
        proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
