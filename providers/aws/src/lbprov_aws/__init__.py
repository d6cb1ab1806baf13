"""lbprov provider for AWS: a Network Load Balancer (default) or a classic ELB per Service.

The names below are imported on first use (PEP 562 ``__getattr__``): ``lbprov --help`` and the
settings flags need only :mod:`lbprov_aws.settings`, which must not pay for importing boto3.
``from lbprov_aws import AWSProvider`` works as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lbprov.provider import lazy_exports

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

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
