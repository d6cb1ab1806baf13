"""lbprov provider for AWS: a Network Load Balancer (default) or a classic ELB per Service.

The names below are imported on first use (PEP 562 ``__getattr__``): ``lbprov --help`` and the
settings flags need only :mod:`lbprov_aws.settings`, which must not pay for importing boto3.
``from lbprov_aws import AWSProvider`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lbprov_aws.options import AWSOptions
    from lbprov_aws.provider import AWSProvider
    from lbprov_aws.settings import AWSSettings

#: public name -> the module that defines it
_LAZY = {
    "AWSOptions": "lbprov_aws.options",
    "AWSProvider": "lbprov_aws.provider",
    "AWSSettings": "lbprov_aws.settings",
}

__all__ = ["AWSOptions", "AWSProvider", "AWSSettings"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
