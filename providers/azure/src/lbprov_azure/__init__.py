"""lbprov provider for Azure: one shared Standard load balancer per cluster and scheme.

See :mod:`lbprov_azure.provider` for what is created, :mod:`lbprov_azure.lbwriter` for how
concurrent Services share the load balancer, and :mod:`lbprov_azure.sandbox` for the local ARM
emulator the tests and ``lbprov demo --provider azure`` run against.

The names below are imported on first use (PEP 562 ``__getattr__``): ``lbprov --help`` and the
settings flags need only :mod:`lbprov_azure.settings`, which must not pay for importing the Azure
SDK. ``from lbprov_azure import AzureProvider`` works as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbprov.provider import lazy_exports

if TYPE_CHECKING:
    from lbprov_azure.options import AzureOptions
    from lbprov_azure.provider import AzureProvider
    from lbprov_azure.settings import AzureSettings

#: public name -> the module that defines it
_LAZY = {
    "AzureOptions": "lbprov_azure.options",
    "AzureProvider": "lbprov_azure.provider",
    "AzureSettings": "lbprov_azure.settings",
}

__all__ = ["AzureOptions", "AzureProvider", "AzureSettings"]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
