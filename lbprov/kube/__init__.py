"""Kubernetes client side: typed calls over urllib3 (``client``, ``transport``, ``config``) and informers."""

from lbprov.kube.client import (
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    KubeClient,
    KubeConfigError,
    KubeError,
    KubeUnreachable,
    NotFound,
    WatchStream,
)
from lbprov.kube.informer import Informer

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Gone",
    "Informer",
    "Invalid",
    "KubeClient",
    "KubeConfigError",
    "KubeError",
    "KubeUnreachable",
    "NotFound",
    "WatchStream",
]
