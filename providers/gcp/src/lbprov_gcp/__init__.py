"""lbprov provider for Google Cloud: backend-service passthrough network load balancers.

Registered under the ``lbprov.providers`` entry point group as ``gcp`` (and its settings model under
``lbprov.settings``). The names below are imported on first use (PEP 562 ``__getattr__``):
``lbprov --help`` and the settings flags need only :mod:`lbprov_gcp.settings`, which must not pay for
importing google-cloud-compute. ``from lbprov_gcp import GCPProvider`` works as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbprov.provider import lazy_exports

if TYPE_CHECKING:
    from lbprov_gcp.provider import GCPProvider
    from lbprov_gcp.settings import GCPSettings

#: public name -> the module that defines it
_LAZY = {"GCPProvider": "lbprov_gcp.provider", "GCPSettings": "lbprov_gcp.settings"}

__all__ = ["GCPProvider", "GCPSettings"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
