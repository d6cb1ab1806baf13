"""The members :class:`~lbprov_azure.sandbox.state.ArmState`'s mixins share, declared once.

The emulator's resource families (load balancers, public IPs, NSGs, virtual networks, long-running
operations) are mixins of one ``ArmState``: each uses state and helpers that another part defines
(``ArmState.__init__`` sets the state; ``ArmState`` and :class:`VirtualNetworks` define the helpers).
Declaring them here lets mypy check every mixin on its own. The methods are declared under
``TYPE_CHECKING`` only, so this class adds nothing at run time: the implementations are found
through ``ArmState``'s method resolution order exactly as before.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lbprov_azure.sandbox.base import JSON, ArmError


class ArmStateParts:
    """State set by ``ArmState.__init__`` and helpers defined in other mixins (see the module)."""

    lock: threading.RLock
    base_url: str
    subscription: str
    location: str
    async_operations: bool
    #: type -> (resource group lower, name lower) -> resource JSON
    resources: dict[str, dict[tuple[str, str], JSON]]
    #: subnet id lower -> private addresses in use
    _private_used: dict[str, set[str]]
    #: the static public IPv4 addresses handed out, in order
    _public_ips: Iterator[ipaddress.IPv4Address]

    if TYPE_CHECKING:
        # Defined in ArmState (state.py).

        @staticmethod
        def _check_name(kind: str, name: str) -> None: ...

        def _bad_ref(self, target: str, referrer: str) -> ArmError: ...

        def _parse_id(self, rid: str) -> tuple[str, str, str, list[str]] | None: ...

        def _lookup(self, rid: str, rtype: str) -> JSON | None: ...

        # Defined in VirtualNetworks (virtual_networks.py).

        def _lookup_subnet(self, rid: str) -> JSON | None: ...

        def _allocate_private(self, subnet_id: str, subnet: JSON | None, version: int = 4) -> str: ...

        def _claim_private(self, subnet: JSON, addr: Any, owner: str) -> None: ...

        def _release_private(self, fe: JSON) -> None: ...
