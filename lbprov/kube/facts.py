"""Facts about the cluster that providers need but must not read themselves.

Providers never talk to Kubernetes (DESIGN.md: Kubernetes stays in the core). What a provider
needs from the cluster is read here, once per run, and handed over in its settings:

* the cluster *identity* (``cluster_id``): the UID of the ``kube-system`` Namespace, which no two
  clusters share even when their names are the same; every delete decided from cloud state checks it;
* the ConfigMap values a provider declares in ``cluster_facts`` (GCP: upstream's ``ingress-uid``).

A value the user set explicitly (flag, env, settings file) always wins.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from lbprov.kube.client import AlreadyExists, KubeClient
from lbprov.provider import ConfigMapFact, cluster_facts

log = logging.getLogger(__name__)

IDENTITY_NAMESPACE = "kube-system"


class ClusterFactError(RuntimeError):
    """A fact the run needs could not be read from the cluster; the message says which and why."""


def cluster_identity(kube: KubeClient) -> str:
    """The UID of the ``kube-system`` Namespace: this cluster's identity."""
    ns = kube.get_namespace(IDENTITY_NAMESPACE)
    uid = str(((ns or {}).get("metadata") or {}).get("uid") or "")
    if not uid:
        raise ClusterFactError(
            f"cannot read the cluster identity: Namespace {IDENTITY_NAMESPACE!r} not found on "
            f"{kube.host} (is this a Kubernetes cluster? lbprov needs 'get' on namespaces)"
        )
    return uid


def config_map_value(kube: KubeClient, fact: ConfigMapFact, *, read_only: bool) -> str | None:
    """The first of ``fact.keys`` present in the ConfigMap; creates the ConfigMap when allowed."""
    cm = kube.get_config_map(fact.namespace, fact.name)
    if cm is None:
        if read_only or fact.create_key is None:
            return None
        value = secrets.token_hex(8)
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": fact.name, "namespace": fact.namespace},
            "data": {fact.create_key: value},
        }
        try:
            kube.create_config_map(fact.namespace, body)
            log.info("created ConfigMap %s/%s (%s=%s)", fact.namespace, fact.name, fact.create_key, value)
            return value
        except AlreadyExists:  # another controller (or replica) made it first: use theirs
            cm = kube.get_config_map(fact.namespace, fact.name)
            if cm is None:
                return None
    data: Mapping[str, str] = cm.get("data") or {}
    for key in fact.keys:
        if data.get(key):
            return str(data[key])
    return None


def fill_settings(
    kube: KubeClient, provider: object, settings: Mapping[str, Any], *, read_only: bool
) -> dict[str, Any]:
    """``settings`` with ``cluster_id`` and the provider's ``cluster_facts`` filled where unset."""
    out = dict(settings)
    if not out.get("cluster_id"):
        out["cluster_id"] = cluster_identity(kube)
    for field, fact in cluster_facts(provider).items():
        if out.get(field) in (None, ""):
            out[field] = config_map_value(kube, fact, read_only=read_only)
    return out
