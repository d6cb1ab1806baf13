"""lbprov: cloud load balancers for Kubernetes LoadBalancer Services."""

from lbprov.model import (
    Action,
    Change,
    HealthCheck,
    Ingress,
    Intent,
    InvalidService,
    OwnedLoadBalancer,
    OwnershipConflict,
    Plan,
    Port,
    SandboxNode,
    ServiceRef,
    Target,
)

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Change",
    "HealthCheck",
    "Ingress",
    "Intent",
    "InvalidService",
    "OwnedLoadBalancer",
    "OwnershipConflict",
    "Plan",
    "Port",
    "SandboxNode",
    "ServiceRef",
    "Target",
]
