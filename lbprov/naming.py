"""Deterministic names and ownership tags.

Names derive from the Service UID, as upstream's ``DefaultLoadBalancerName`` does, so a restarted
controller or a second replica always finds the same cloud resources, and two same-named Services
(in two clusters, or recreated) never collide. Ownership is recorded on every resource as tags (AWS,
Azure) or labels/description (GCP); a resource without this cluster's tag is never changed.
"""

from __future__ import annotations

import hashlib
import re

from lbprov.model import ServiceRef

#: Tag key whose value ``owned`` marks a resource as created by this cluster (upstream name).
CLUSTER_TAG_PREFIX = "kubernetes.io/cluster/"
OWNED = "owned"
#: Tag holding ``<namespace>/<name>`` of the Service (upstream name).
SERVICE_NAME_TAG = "kubernetes.io/service-name"
#: Tag holding the Service UID: the key that deletion and gc look resources up by.
SERVICE_UID_TAG = "lbprov.io/service-uid"
#: Tag recording which kind of load balancer was created (deletion never trusts today's annotations).
LB_KIND_TAG = "lbprov.io/lb-kind"
#: Tag marking the tool that created the resource.
MANAGED_BY_TAG = "lbprov.io/managed-by"
MANAGED_BY = "lbprov"

_CLUSTER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def lb_name(uid: str) -> str:
    """Upstream's ``DefaultLoadBalancerName``: ``"a"`` + the UID without dashes, cut to 32 chars."""
    return ("a" + uid.replace("-", ""))[:32]


def cluster_tag_key(cluster: str) -> str:
    return CLUSTER_TAG_PREFIX + cluster


def validate_cluster_name(cluster: str) -> str:
    """A cluster name is used in cloud names and tags: lowercase DNS label, at most 63 chars."""
    if not _CLUSTER_NAME.match(cluster):
        raise ValueError(
            f"cluster name {cluster!r} is invalid: use 1-63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return cluster


def ownership_tags(cluster: str, ref: ServiceRef) -> dict[str, str]:
    """The tags every per-Service resource carries."""
    return {
        cluster_tag_key(cluster): OWNED,
        SERVICE_NAME_TAG: ref.key,
        SERVICE_UID_TAG: ref.uid,
        MANAGED_BY_TAG: MANAGED_BY,
    }


def cluster_tags(cluster: str) -> dict[str, str]:
    """The tags of resources shared by all Services of a cluster (instance groups, shared LBs)."""
    return {cluster_tag_key(cluster): OWNED, MANAGED_BY_TAG: MANAGED_BY}


def is_owned_by_cluster(tags: dict[str, str], cluster: str) -> bool:
    return tags.get(cluster_tag_key(cluster)) == OWNED


def is_owned_by_service(tags: dict[str, str], cluster: str, uid: str) -> bool:
    return is_owned_by_cluster(tags, cluster) and tags.get(SERVICE_UID_TAG) == uid


def short_hash(*parts: object, length: int = 10) -> str:
    """A stable hex digest of ``parts``, for names that must encode more than the UID."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]
