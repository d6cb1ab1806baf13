"""lbprov provider for AWS: a Network Load Balancer (default) or a classic ELB per Service."""

from lbprov_aws.options import AWSOptions
from lbprov_aws.provider import AWSProvider
from lbprov_aws.settings import AWSSettings

__all__ = ["AWSOptions", "AWSProvider", "AWSSettings"]
