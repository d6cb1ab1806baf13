"""A Service's parts of a shared load balancer, found through an index instead of a scan.

Every plan looked at each frontend, probe and rule of every load balancer of the cluster to pick
out one Service's (``names.owns_part``) or one part by name (``observe.find``): a cost per plan that
grows with the cluster's Services, the largest that remained in the controller's profile once writes
stopped building SDK models. A part's name starts with its Service's base (``<base>``,
``<base>-TCP-80``), so the parts of a body grouped by that prefix answer both questions from a short
list. Bodies are read-only snapshots, shared by the plans of a read round
(:class:`~lbprov_azure.observe.ReadRound`): the index of a body is built once and kept with it, one
entry per load balancer name (a write's new body replaces its predecessor's entry, so no body is kept
alive that the round has let go; an LRU of 24 bodies kept superseded ones, and the controller's
peak RSS rose by ~40 MB at 300 Services).
"""

from __future__ import annotations

import threading
from typing import Any

from lbprov_azure import names
from lbprov_azure.desired import view_pool
from lbprov_azure.observe import find as scan_find
from lbprov_azure.observe import items

JSON = dict[str, Any]
#: The fields indexed: the per-Service parts of a shared load balancer.
FIELDS = ("frontendIPConfigurations", "probes", "loadBalancingRules")

_Index = dict[str, dict[str, list[JSON]]]
_cache: dict[str, tuple[JSON, _Index]] = {}  # load balancer name (lower case) -> (body, its index)
_pools: dict[str, tuple[JSON, frozenset[str]]] = {}  # load balancer name -> (body, pool addresses)
_lock = threading.Lock()


def _owner(name: str) -> str:
    """The base a part's name starts with (a base carries no ``-``: ``a`` + the UID's hex digits)."""
    return name.lower().partition("-")[0]


def _index(lb: JSON) -> _Index:
    key = str(lb.get("name", "")).lower()
    # asked ~35 times per plan: a read takes no lock (one dict.get is atomic under the GIL, and an
    # entry is replaced whole), only a store does
    hit = _cache.get(key)
    if hit is not None and hit[0] is lb:
        return hit[1]
    built: _Index = {}
    for fld in FIELDS:
        by: dict[str, list[JSON]] = {}
        for item in items(lb, fld):
            by.setdefault(_owner(str(item.get("name", ""))), []).append(item)
        built[fld] = by
    with _lock:
        _cache[key] = (lb, built)
    return built


def own(lb: JSON | None, fld: str, base: str) -> list[JSON]:
    """``lb``'s ``fld`` items that are the Service's parts (``names.owns_part(base, name)``), in order."""
    if lb is None:
        return []
    if fld not in FIELDS or "-" in base:
        return [i for i in items(lb, fld) if names.owns_part(base, str(i.get("name", "")))]
    return list(_index(lb)[fld].get(base.lower(), ()))


def count(lb: JSON | None, fld: str) -> int:
    """How many ``fld`` items ``lb`` has."""
    return len(((lb or {}).get("properties") or {}).get(fld) or ())


def others(lb: JSON | None, fld: str, base: str) -> int:
    """How many of ``lb``'s ``fld`` are not the Service's own (by name)."""
    return count(lb, fld) - len(own(lb, fld, base))


def find(lb: JSON | None, fld: str, name: str) -> JSON | None:
    """The ``fld`` item of ``lb`` named ``name`` (case-insensitive), as ``observe.find`` would."""
    if lb is None:
        return None
    if fld not in FIELDS:
        return scan_find(items(lb, fld), name)
    return scan_find(_index(lb)[fld].get(_owner(name), []), name)


def pool_addresses(lb: JSON) -> frozenset[str]:
    """The addresses in ``lb``'s backend pools, kept with the body, as its index is.

    Why: every plan asks the fleet's pools (placement, node assignment) twice over every load
    balancer of the cluster, and the bodies are the read round's snapshots, so the answer is made
    once per body, not twice per plan (issue 14). One entry per load balancer name, replaced by a
    newer body's, dropped by :func:`forget`."""
    key = str(lb.get("name", "")).lower()
    hit = _pools.get(key)
    if hit is not None and hit[0] is lb:
        return hit[1]
    found = frozenset(ip for pool in items(lb, "backendAddressPools") for ip in view_pool(pool)["addresses"])
    with _lock:
        _pools[key] = (lb, found)
    return found


def forget() -> None:
    """Drop every index (and the body it holds): called when a read round ends, so that the bodies
    of a finished round are not kept alive by their indexes."""
    with _lock:
        _cache.clear()
        _pools.clear()
