"""lbprov provider for Azure: one shared Standard load balancer per cluster and scheme.

See :mod:`lbprov_azure.provider` for what is created, :mod:`lbprov_azure.lbwriter` for how
concurrent Services share the load balancer, and :mod:`lbprov_azure.sandbox` for the local ARM
emulator the tests and ``lbprov demo --provider azure`` run against.
"""

from lbprov_azure.options import AzureOptions
from lbprov_azure.provider import AzureProvider
from lbprov_azure.settings import AzureSettings

__all__ = ["AzureOptions", "AzureProvider", "AzureSettings"]
