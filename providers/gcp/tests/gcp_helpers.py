"""The tests' helpers live in :mod:`lbprov_gcp.testing`; re-exported for the test modules."""

from lbprov_gcp.testing import (
    CLUSTER,
    CLUSTER_ID,
    GCE_CLUSTER_ID,
    converge,
    intent_for,
    make_nodes,
    make_service,
    provider_for,
)

__all__ = [
    "CLUSTER",
    "CLUSTER_ID",
    "GCE_CLUSTER_ID",
    "converge",
    "intent_for",
    "make_nodes",
    "make_service",
    "provider_for",
]
