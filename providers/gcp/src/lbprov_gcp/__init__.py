"""lbprov provider for Google Cloud: backend-service passthrough network load balancers.

Registered under the ``lbprov.providers`` entry point group as ``gcp``.
"""

from lbprov_gcp.provider import GCPProvider
from lbprov_gcp.settings import GCPSettings

__all__ = ["GCPProvider", "GCPSettings"]
