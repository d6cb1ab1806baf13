"""Azure names and tags: which resource belongs to which cluster and Service.

* Load balancers: ``<cluster>`` (public) and ``<cluster>-internal``, one per cluster and scheme.
* Per Service (``base`` = ``a`` + UID without dashes, 32 chars): public IP ``<cluster>-<base>``,
  frontend IP configuration ``<base>``, probe and rule ``<base>-<PROTO>-<port>``, NSG rule
  ``lbprov-<base>-<PROTO>``. Names carry the UID, so clusters and same-named Services never collide.
* IPv6 (upstream's ``getResourceByIPFamily`` and ``getBackendPoolName``): a dual-stack Service's IPv6
  frontend, public IP, probes, rules (and lbprov's NSG rules) add ``-IPv6`` to the names above; an
  IPv6 single-stack Service's keep them. IPv6 node addresses are in the pool ``<cluster>-IPv6``.
* Tags: Azure forbids ``/`` in tag names, so the core's ownership tags
  (``kubernetes.io/cluster/<c>: owned`` ...) are stored with ``/`` replaced by ``_``.
* The shared LB records which Services have parts on it in ``lbprov.io_services.<n>`` tags: the
  UIDs (without dashes) packed into values of at most 256 characters, since a resource may carry
  only 50 tags and a slot of load balancers holds at most 300 rules (46 tags x 7 UIDs = 322).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping

from lbprov import naming
from lbprov.model import ServiceRef

SERVICES_TAG_PREFIX = "lbprov.io_services."
LB_KIND = "shared-standard"
MAX_TAG_VALUE = 256
#: Azure's rule for Microsoft.Network resource names: 1-80 characters, letters, digits, ``_``, ``.``
#: and ``-``, starting with a letter or digit and ending with a letter, digit or ``_``
#: (learn.microsoft.com "Naming rules and restrictions for Azure resources", Microsoft.Network).
MAX_NAME = 80
_VALID_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
_INTERNAL_SUFFIX = "-internal"
#: NSG rule descriptions hold at most 140 characters: ``lbprov <cluster mark> <uid> <key>``.
_MARK_MAX = 64


def fit(name: str, max_len: int = MAX_NAME) -> str:
    """``name`` made a valid Azure resource name of at most ``max_len`` characters.

    A valid name that fits is kept verbatim (upper case and ``_`` included: upstream names the
    shared LB after the cluster as it is, and an adopted LB must keep its name). Otherwise invalid
    characters become ``-`` and a name too long is cut and ends with a hash of the original, so two
    long cluster names sharing a prefix still get different names.
    """
    if len(name) <= max_len and _VALID_NAME.match(name):
        return name
    body = re.sub(r"[^A-Za-z0-9_.-]", "-", name)
    if len(body) > max_len:
        digest = naming.short_hash(name, length=8)
        body = body[: max_len - len(digest) - 1].rstrip("-.") + "-" + digest
    return body.rstrip("-.") or naming.short_hash(name, length=8)


@functools.lru_cache(maxsize=64)
def cluster_mark(cluster: str) -> str:
    """The cluster as NSG rule descriptions name it (140-character limit: long names are hashed).

    Cached, as :func:`lb_name` and :func:`pool_name`: every plan asks them many times of the same
    cluster (one name check each: ~50 per Service at 1,000 Services, issue 14)."""
    return fit(cluster, _MARK_MAX)


def azure_key(key: str) -> str:
    return key.replace("/", "_")


def azure_tags(tags: Mapping[str, str]) -> dict[str, str]:
    return {azure_key(k): v for k, v in tags.items()}


@functools.lru_cache(maxsize=1024)
def lb_name(cluster: str, scheme: str, slot: int = 0) -> str:
    """``<cluster>`` / ``<cluster>-internal`` as upstream names them, shortened to fit 80 characters;
    the load balancers of slot ``k`` >= 1 (see :mod:`lbprov_azure.placement`) add ``-<k+1>``."""
    suffix = (f"-{slot + 1}" if slot else "") + ("" if scheme == "external" else _INTERNAL_SUFFIX)
    return fit(cluster, MAX_NAME - len(suffix)) + suffix


#: What upstream appends to the IPv6 resources of a dual-stack Service and to the IPv6 backend pool.
IPV6_SUFFIX = "-IPv6"


@functools.lru_cache(maxsize=64)
def pool_name(cluster: str, family: str = "IPv4") -> str:
    """``<cluster>``, and ``<cluster>-IPv6`` for IPv6 node addresses (upstream's getBackendPoolName)."""
    if family == "IPv6":
        return fit(cluster, MAX_NAME - len(IPV6_SUFFIX)) + IPV6_SUFFIX
    return fit(cluster)


def of_family(name: str, family: str, dual_stack: bool) -> str:
    """``name`` with ``-IPv6`` for the IPv6 part of a dual-stack Service (upstream's
    getResourceByIPFamily): single-stack Services, of either family, keep the plain name."""
    return name + IPV6_SUFFIX if dual_stack and family == "IPv6" else name


def pip_name(cluster: str, base: str) -> str:
    """``<cluster>-<base>`` as upstream names it; the cluster part shortened so the whole fits 80."""
    return f"{fit(cluster, MAX_NAME - len(base) - 1)}-{base}"


def rule_name(base: str, protocol: str, port: int) -> str:
    return f"{base}-{protocol}-{port}"


def nsg_rule_name(base: str, protocol: str) -> str:
    return f"lbprov-{base}-{protocol}"


def nsg_rule_prefix(base: str) -> str:
    return f"lbprov-{base}-"


def uid_token(uid: str) -> str:
    return uid.replace("-", "")


def uid_from_token(token: str) -> str:
    if len(token) == 32:
        return f"{token[:8]}-{token[8:12]}-{token[12:16]}-{token[16:20]}-{token[20:]}"
    return token


def owns_part(base: str, name: str) -> bool:
    """Whether a frontend / rule / probe of the shared LB is one of the Service's parts, by name."""
    low, b = name.lower(), base.lower()
    return low == b or low.startswith(b + "-")


def service_tags(cluster: str, ref: ServiceRef, cluster_id: str | None = None) -> dict[str, str]:
    return azure_tags(naming.ownership_tags(cluster, ref, cluster_id))


def lb_tags(cluster: str, cluster_id: str | None = None) -> dict[str, str]:
    tags = azure_tags(naming.cluster_tags(cluster, cluster_id))
    tags[azure_key(naming.LB_KIND_TAG)] = LB_KIND
    return tags


CLUSTER_ID_KEY = azure_key(naming.CLUSTER_ID_TAG)


def identity_of(tags: Mapping[str, str] | None) -> str | None:
    """The cluster identity an Azure resource's tags carry (``lbprov.io_cluster-id``)."""
    return (tags or {}).get(CLUSTER_ID_KEY)


def identity_matches(tags: Mapping[str, str] | None, cluster_id: str | None) -> bool:
    """:func:`lbprov.naming.identity_matches` for Azure's tag spelling."""
    return naming.identity_matches({naming.CLUSTER_ID_TAG: identity_of(tags) or ""}, cluster_id)


def rule_identity(cluster_id: str | None) -> str:
    """The identity mark in an NSG rule's description (rules have no tags, descriptions 140 chars):
    ``cid:`` + 16 hex digits of SHA-256 of the cluster identity, ``-`` when it is unknown."""
    return f"cid:{naming.short_hash(cluster_id, length=16)}" if cluster_id else "-"


def parse_rule_description(desc: str, cluster: str) -> tuple[str, str | None, str] | None:
    """(uid, identity mark or None, service key) of ``lbprov <cluster mark> <uid> [<cid:...>|-] <key>``."""
    prefix = f"lbprov {cluster_mark(cluster)} "
    if not desc.startswith(prefix):
        return None
    tokens = desc[len(prefix) :].split(" ")
    uid, rest = tokens[0], tokens[1:]
    mark: str | None = None
    if rest and (rest[0] == "-" or rest[0].startswith("cid:")):
        mark = None if rest[0] == "-" else rest[0]
        rest = rest[1:]
    return uid, mark, " ".join(rest)


def is_cluster_owned(tags: Mapping[str, str] | None, cluster: str) -> bool:
    return (tags or {}).get(azure_key(naming.cluster_tag_key(cluster))) == naming.OWNED


def is_service_owned(tags: Mapping[str, str] | None, cluster: str, uid: str) -> bool:
    return is_cluster_owned(tags, cluster) and (tags or {}).get(azure_key(naming.SERVICE_UID_TAG)) == uid


def service_tokens(tags: Mapping[str, str] | None) -> frozenset[str]:
    """The Service UID tokens recorded on a shared LB, read-only.

    Cached by the packed tag values: every plan asks it of every LB, and of each LB once per room
    held by another Service's plan (placement), while the map changes only once per LB write; a
    parse of a full map (300 tokens) per question was ~9% of the controller's CPU on a create."""
    if not tags:
        return frozenset()
    return _tokens(tuple(v for k, v in tags.items() if k.startswith(SERVICES_TAG_PREFIX)))


@functools.lru_cache(maxsize=256)
def _tokens(packed: tuple[str, ...]) -> frozenset[str]:
    return frozenset(t for v in packed for t in v.split(" ") if t)


def services_of(tags: Mapping[str, str] | None) -> set[str]:
    """The Service UID tokens recorded on a shared LB (a set of the caller's own)."""
    return set(service_tokens(tags))


def with_services(tags: Mapping[str, str] | None, tokens: Iterable[str]) -> dict[str, str]:
    """``tags`` with the Service map replaced by ``tokens``, packed into as few tags as fit."""
    out = {k: v for k, v in (tags or {}).items() if not k.startswith(SERVICES_TAG_PREFIX)}
    chunk: list[str] = []
    n = 0
    for token in sorted(set(tokens)):
        if chunk and len(" ".join([*chunk, token])) > MAX_TAG_VALUE:
            out[f"{SERVICES_TAG_PREFIX}{n}"] = " ".join(chunk)
            n, chunk = n + 1, []
        chunk.append(token)
    if chunk:
        out[f"{SERVICES_TAG_PREFIX}{n}"] = " ".join(chunk)
    return out
