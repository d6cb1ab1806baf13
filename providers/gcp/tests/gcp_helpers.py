"""The tests' helpers live in :mod:`lbprov_gcp.testing`; re-exported for the test modules."""

from lbprov_gcp.testing import CLUSTER, converge, intent_for, make_nodes, make_service, provider_for

__all__ = ["CLUSTER", "converge", "intent_for", "make_nodes", "make_service", "provider_for"]
