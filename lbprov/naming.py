"""Deterministic names and ownership tags.

Names derive from the Service UID, as upstream's ``DefaultLoadBalancerName`` does, so a restarted
controller or a second replica always finds the same cloud resources, and two same-named Services
(in two clusters, or recreated) never collide. Ownership is recorded on every resource as tags (AWS,
Azure) or labels/description (GCP); a resource without this cluster's tag is never changed.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping

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
#: Tag holding the cluster's *identity*: the UID of its ``kube-system`` Namespace. Cluster names are
#: not unique (two clusters can share one, a kubeconfig can point at the wrong one), so every delete
#: decided from cloud state rather than from one Service's own plan checks this tag first.
CLUSTER_ID_TAG = "lbprov.io/cluster-id"

#: Cluster names as EKS allows them: 1-100 letters, digits, ``-`` and ``_``, starting with a letter
#: or digit (EKS ``CreateCluster``: ``^[0-9A-Za-z][A-Za-z0-9\-_]*``, length 1-100). Upper case is
#: kept: the ``kubernetes.io/cluster/<name>`` tag must match what upstream wrote, verbatim.
_CLUSTER_NAME = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,99}$")


def lb_name(uid: str) -> str:
    """Upstream's ``DefaultLoadBalancerName``: ``"a"`` + the UID without dashes, cut to 32 chars."""
    return ("a" + uid.replace("-", ""))[:32]


def cluster_tag_key(cluster: str) -> str:
    return CLUSTER_TAG_PREFIX + cluster


def validate_cluster_name(cluster: str) -> str:
    """A cluster name as EKS allows it (see ``_CLUSTER_NAME``).

    Tags use it verbatim; cloud resource *names* derived from it go through :func:`safe_name`,
    since most clouds allow fewer characters or less length than a cluster name may have.
    """
    if not _CLUSTER_NAME.match(cluster):
        raise ValueError(
            f"cluster name {cluster!r} is invalid: use 1-100 letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return cluster


def safe_name(prefix: str, cluster: str, max_len: int, *, lower: bool = True) -> str:
    """``prefix + cluster`` made valid for a cloud's resource names.

    Characters other than letters, digits and ``-`` become ``-`` (and letters are lower-cased when
    ``lower``); a name longer than ``max_len`` is cut and ends with a hash of the *original* cluster
    name, so two long names that share a prefix still differ. Trailing ``-`` are stripped, since most
    clouds refuse names that end with one.
    """
    body = re.sub(r"[^0-9A-Za-z-]", "-", cluster)
    if lower:
        body = body.lower()
    name = prefix + body
    if len(name) > max_len:
        digest = short_hash(cluster, length=8)
        name = name[: max_len - len(digest) - 1].rstrip("-") + "-" + digest
    return name.rstrip("-")


def ownership_tags(cluster: str, ref: ServiceRef, cluster_id: str | None = None) -> dict[str, str]:
    """The tags every per-Service resource carries (with the cluster identity when known)."""
    tags = {
        cluster_tag_key(cluster): OWNED,
        SERVICE_NAME_TAG: ref.key,
        SERVICE_UID_TAG: ref.uid,
        MANAGED_BY_TAG: MANAGED_BY,
    }
    if cluster_id:
        tags[CLUSTER_ID_TAG] = cluster_id
    return tags


def cluster_tags(cluster: str, cluster_id: str | None = None) -> dict[str, str]:
    """The tags of resources shared by all Services of a cluster (instance groups, shared LBs)."""
    tags = {cluster_tag_key(cluster): OWNED, MANAGED_BY_TAG: MANAGED_BY}
    if cluster_id:
        tags[CLUSTER_ID_TAG] = cluster_id
    return tags


def identity_matches(tags: Mapping[str, str], cluster_id: str | None) -> bool:
    """True only when the cluster identity is known and ``tags`` carry exactly it.

    The guard of every delete decided from cloud state (gc, orphaned rules, shared resources no one
    uses): an unknown identity, or a resource without one, is never enough to delete.
    """
    return bool(cluster_id) and tags.get(CLUSTER_ID_TAG) == cluster_id


def is_owned_by_cluster(tags: Mapping[str, str], cluster: str) -> bool:
    return tags.get(cluster_tag_key(cluster)) == OWNED


def is_owned_by_service(tags: Mapping[str, str], cluster: str, uid: str) -> bool:
    return is_owned_by_cluster(tags, cluster) and tags.get(SERVICE_UID_TAG) == uid


def short_hash(*parts: object, length: int = 10) -> str:
    """A stable hex digest of ``parts``, for names that must encode more than the UID."""
    digest = hashlib.sha256("\x00".join(str(p) for p in parts).encode()).hexdigest()
    return digest[:length]


def event_name(object_name: str) -> str:
    """A new Event's name: the object's name and a nanosecond clock, as client-go's recorder."""
    return f"{object_name}.{time.time_ns():x}"
