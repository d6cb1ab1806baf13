"""Azure options parsed once per distinct input, not once per Service and resolve.

A node sync resolves every Service again (issue 14: 1,000 Services at each node change), and
:func:`~lbprov_azure.options.parse_options` was the largest cost of Azure's resolve: every key
checked, every CIDR parsed by :mod:`ipaddress`, a pydantic model validated, for annotations that
did not change. Most Services of a cluster carry the same few Azure annotations, so the options are
kept by what ``parse_options`` reads and nothing else:

* the annotations in the Azure namespaces (``service.beta.kubernetes.io/azure-*`` and the per-port
  ``service.beta.kubernetes.io/port_*``: :func:`~lbprov_azure.annotation_keys.in_namespace`); every
  other key is never read by it;
* the intent's ``requested_ip``, ``ip_families``, ``source_ranges`` and number of ports; and, only
  when per-port keys are present, the ports themselves (names, numbers, NodePorts) and whether the
  Service has a health check NodePort (``externalTrafficPolicy: Local``).

Only answers are kept: input that ``parse_options`` refuses is parsed again on every call, so each
Service still gets its own :class:`~lbprov.model.InvalidService`, naming the field, every time
(``parse_options`` logs nothing and emits no event, so there is nothing else a kept answer could
swallow). The options model is frozen, so one instance can serve many intents.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping

from lbprov.model import Intent
from lbprov_azure.annotation_keys import PORT_PREFIX, in_namespace
from lbprov_azure.options import AzureOptions, parse_options

#: Distinct inputs kept; past it the memo starts again (a cluster has far fewer distinct sets of
#: Azure annotations; Services with per-port keys are keyed by their NodePorts too).
MAX_ENTRIES = 4096


def input_key(intent: Intent, annotations: Mapping[str, str]) -> Hashable:
    """Everything :func:`parse_options` reads of ``intent`` and ``annotations``."""
    ours = tuple(sorted((k, str(v)) for k, v in annotations.items() if in_namespace(k)))
    per_port = any(k.startswith(PORT_PREFIX) for k, _ in ours)
    return (
        ours,
        intent.requested_ip,
        intent.ip_families,
        intent.source_ranges,
        len(intent.ports),
        (intent.ports, intent.health_check is not None) if per_port else None,
    )


class OptionsMemo:
    """:func:`parse_options` answered once per distinct :func:`input_key` (see the module doc)."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._kept: dict[Hashable, AzureOptions] = {}
        self._lock = threading.Lock()
        #: how many calls were answered from the memo / parsed (tests read them)
        self.hits = 0
        self.parsed = 0

    def parse(self, intent: Intent, annotations: Mapping[str, str]) -> AzureOptions:
        key = input_key(intent, annotations)
        found = self._kept.get(key)
        if found is not None:
            with self._lock:
                self.hits += 1
            return found
        opts = parse_options(intent, annotations)  # raises for bad input: never kept
        with self._lock:
            self.parsed += 1
            if len(self._kept) >= self.max_entries:
                self._kept.clear()
            self._kept[key] = opts
        return opts
