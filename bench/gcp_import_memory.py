"""What google.cloud.compute_v1 costs the GCP provider's process in memory, and what saves it.

The GCP provider now calls the Compute REST API with JSON (gcp-speed's client): a controller no
longer imports ``compute_v1`` at all, so ``provider_with_rest_transport`` is what it holds, and
``saved_by_rest_transport_mb`` what that change saved. The other cases stay for comparison.

    python bench/gcp_import_memory.py

Each figure is the peak RSS (``VmHWM``, which starts afresh at ``exec``; ``ru_maxrss`` would
inherit the parent's) of a fresh ``python -c`` that imports the named modules
and nothing else, so the figures do not depend on the load of the machine:

* ``bare``: the interpreter alone;
* ``provider``: ``lbprov_gcp.provider``;
* ``provider_with_compute_v1``: what a running GCP controller holds: the provider plus
  ``google.cloud.compute_v1`` (its package ``__init__`` imports all of its service clients and the
  one ``types/compute.py`` that defines every message of the Compute API);
* ``provider_with_needed_clients_only``: the provider plus ``types.compute`` and only the service
  clients the provider makes (:data:`CLIENTS`), with the package ``__init__`` bypassed: the saving of
  a narrower import, without changing the calls;
* ``provider_with_rest_transport``: the provider plus what a hand-rolled Compute REST client would
  need (``google.auth``'s ``AuthorizedSession`` over ``requests``, as the provider's
  ``httpHealthChecks`` calls already use): the saving of calling the REST API directly.
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from common import print_json

#: The compute_v1 service modules behind the clients lbprov_gcp.client makes.
CLIENTS = (
    "region_health_checks",
    "region_backend_services",
    "forwarding_rules",
    "addresses",
    "firewalls",
    "instance_groups",
    "subnetworks",
    "target_pools",
    "instances",
    "region_operations",
    "zone_operations",
    "global_operations",
)

_NEEDED_ONLY = f"""
import importlib, importlib.util, sys, types
import google.cloud
spec = importlib.util.find_spec("google.cloud.compute_v1")
pkg = types.ModuleType("google.cloud.compute_v1")
pkg.__path__ = list(spec.submodule_search_locations)
sys.modules["google.cloud.compute_v1"] = pkg  # its __init__ (every client) is not run
import google.cloud.compute_v1.types.compute
for name in {CLIENTS!r}:
    importlib.import_module("google.cloud.compute_v1.services." + name)
"""

CASES = {
    "bare": "",
    "provider": "import lbprov_gcp.provider",
    "provider_with_compute_v1": "import lbprov_gcp.provider\nfrom google.cloud import compute_v1",
    "provider_with_needed_clients_only": "import lbprov_gcp.provider\n" + _NEEDED_ONLY,
    "provider_with_rest_transport": "import lbprov_gcp.provider\nimport google.auth.transport.requests, requests",
}

_PEAK = """
from pathlib import Path
print(next(l.split()[1] for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("VmHWM:")))
"""


def peak_mib(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code + _PEAK], capture_output=True, text=True, check=True)
    return round(int(out.stdout.split()[-1]) / 1024, 1)


def main() -> int:
    rss = {name: peak_mib(code) for name, code in CASES.items()}
    full = rss["provider_with_compute_v1"]
    report: dict[str, Any] = {
        "peak_rss_mb": rss,
        "compute_v1_costs_mb": round(full - rss["provider"], 1),
        "saved_by_needed_clients_only_mb": round(full - rss["provider_with_needed_clients_only"], 1),
        "saved_by_rest_transport_mb": round(full - rss["provider_with_rest_transport"], 1),
        "clients_imported_in_needed_only": len(CLIENTS),
    }
    print_json(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
