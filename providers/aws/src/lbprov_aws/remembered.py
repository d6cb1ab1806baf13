"""What the provider remembers of the cloud between reads: tags by ARN, and the detail reads of the
resources lbprov owns (listeners, attributes, registered targets), kept current by lbprov's own writes.

Why: the account-wide part of a plan (whose target groups want which node rules, which load
balancers are ours) needs the tags of every target group and load balancer. Tags of a resource
change only when lbprov writes them (ownership, Service, source ranges, health NodePort) or when a
person edits them by hand; re-reading every tag of the account for every plan made the reads of N
Service creations grow as N². So tags are read once per ARN and then kept, and every elbv2 write of
this process updates (or forgets) what it changed, through :meth:`Remembered.before_write` /
:meth:`after_write` hooked into :class:`~lbprov_aws.client.AWSClients`. Edits made by hand are
seen when the Service's turn for a deep check comes (observe.py: ``ReadRound.drift_check``), which
forgets its tags and details first.

A read that raced with a write of the same key is not stored (a generation per key, bumped by
every write before and after it is sent), so a cached value is never older than the last write.
Deleted resources are forgotten when their delete is sent, and entries whose ARN no longer shows in
a listing are pruned, so the memory stays proportional to what exists.

The cluster's classic ELBs (by name) are remembered with their tags and registered instances, for
the node sync (node_sync.py): every listing or describe of them stores what it found unless a write
of that ELB was sent since the read began (:meth:`Remembered.clock` before the read,
:meth:`Remembered.classics_read` after it), so the periodic resync's listing repairs what was
changed by hand; lbprov's own writes keep them current in between, a failed write forgets them.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from lbprov.interning import compact

#: Distinct values kept for sharing: a cluster has a few (its annotation choices, its node set), and
#: a bound keeps values unique to each resource (an access-log prefix per Service) from piling up.
SHARED_VALUES = 256
#: Generations kept at most (see ``Remembered._bump``): 10,000 Services written by one process
#: would otherwise keep one per load balancer and target group ever written, for good.
GENERATIONS_MAX = 4096
#: The key of :meth:`Remembered.generations`' snapshot that holds its epoch (never an ARN or name).
_EPOCH = ""
#: Deletes: what they name is gone, its generation too (see ``Remembered._gen``).
_DELETES = frozenset(
    {"elbv2:DeleteLoadBalancer", "elbv2:DeleteTargetGroup", "elbv2:DeleteListener", "elb:DeleteLoadBalancer"}
)
#: Classic ELB writes whose effect on the remembered tags and instances is set after the call.
_CLASSIC_SET_AFTER = (
    "elb:AddTags",
    "elb:RemoveTags",
    "elb:RegisterInstancesWithLoadBalancer",
    "elb:DeregisterInstancesFromLoadBalancer",
)
#: Classic ELB writes that change neither its tags nor its registered instances.
_CLASSIC_OTHER_WRITES = frozenset(
    {
        "elb:ConfigureHealthCheck",
        "elb:CreateLoadBalancerListeners",
        "elb:DeleteLoadBalancerListeners",
        "elb:CreateLoadBalancerPolicy",
        "elb:SetLoadBalancerPoliciesOfListener",
        "elb:AttachLoadBalancerToSubnets",
        "elb:DetachLoadBalancerFromSubnets",
        "elb:ApplySecurityGroupsToLoadBalancer",
    }
)
#: Parameters of elbv2/elb writes that name the resource they change.
_KEY_PARAMS = ("ResourceArns", "TargetGroupArn", "LoadBalancerArn", "ListenerArn", "LoadBalancerName")


class Remembered:
    """Tags and details by ARN (classic ELBs by name), thread-safe; see the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: Generation of each key written by this process: every bump takes the next value of
        #: ``_clock``. A key not in ``_gen`` has the generation ``_floor``, the highest one forgotten
        #: (a deleted resource's entry is dropped, so ``_gen`` does not grow with every resource
        #: ever made; a read started before the drop then sees a different generation, and is not
        #: kept: at worst read again).
        self._gen: dict[str, int] = {}
        self._clock = 0
        self._floor = 0
        #: How many times ``_gen`` was emptied (:meth:`_bump`): a snapshot of another epoch cannot
        #: tell a key written since from one never written, so :meth:`prune` leaves it alone.
        self._epoch = 0
        #: Distinct attributes and target sets, by their JSON: shared by every resource that has
        #: one of them (:meth:`_shared`).
        self._values: dict[tuple[str, bytes], Any] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.lb_attributes: dict[str, dict[str, str]] = {}
        #: Listeners by load balancer ARN, as DescribeListeners / CreateListener return them.
        self.listeners: dict[str, tuple[Any, ...]] = {}
        self.tg_attributes: dict[str, dict[str, str]] = {}
        self.targets: dict[str, tuple[str, ...]] = {}
        self.classic_cross_zone: dict[str, bool] = {}
        #: A classic ELB's LoadBalancerAttributes (cross-zone, access log, draining, idle timeout).
        self.classic_attributes: dict[str, dict[str, Any]] = {}
        #: The cluster's classic ELBs by name: their tags and registered instances as last listed
        #: or described (:meth:`classics_read`), kept current by lbprov's own writes: what the node
        #: sync plans a classic ELB's instances from (node_sync.py).
        self.classic_tags: dict[str, dict[str, str]] = {}
        self.classic_instances: dict[str, tuple[str, ...]] = {}
        #: A classic ELB's attributes while a ModifyLoadBalancerAttributes of it is in flight (None:
        #: not known, or a second write in flight): what the write merges into when it succeeds.
        self._classic_attributes_writing: dict[str, dict[str, Any] | None] = {}

    # -- reads -------------------------------------------------------------------------------------

    def generation(self, key: str) -> int:
        with self._lock:
            return self._gen.get(key, self._floor)

    def store(self, table: dict[str, Any], key: str, value: Any, generation: int) -> None:
        """Keep ``value`` read for ``key`` unless a write of ``key`` was sent since ``generation``."""
        with self._lock:
            if self._gen.get(key, self._floor) == generation:
                table[_intern(key)] = self._shared(value) if table is not self.listeners else compact(value)

    def _shared(self, value: Any) -> Any:
        """One object for every resource whose attributes (or registered targets) are the same (the
        lock held): most target groups and load balancers have AWS's default attributes and every
        node as target, so 10,000 of them share a handful of dicts and tuples instead of holding
        10,000 equal ones (with 1,000 nodes, a tuple of targets is 8 KB). Safe because what is
        remembered is never changed in place (a write replaces it; readers get copies or must not
        change it). At most :data:`SHARED_VALUES` distinct ones are kept: when the table is full,
        the values no resource holds any more (a node set before a node change, the attributes of
        deleted resources) are dropped first, so the current ones keep being shared in a long-lived
        controller with node churn; only if every kept value is still in use is a new one kept
        unshared. Keyed by a digest of the JSON (a 1,000-node target set's JSON is ~22 KB) with an
        equality check on a hit."""
        text = json.dumps(value, sort_keys=True, default=str)
        key = (type(value).__name__, hashlib.blake2b(text.encode(), digest_size=16).digest())
        if (found := self._values.get(key)) is not None and found == value:
            return found
        value = compact(value)
        if len(self._values) >= SHARED_VALUES:
            self._drop_unused_values()
        if len(self._values) < SHARED_VALUES:
            self._values[key] = value
        return value

    def _drop_unused_values(self) -> None:
        """Forget shared values that only the table still holds (the lock held)."""
        # getrefcount counts the table's reference and its own argument's: 2 is "no one else".
        unused = [k for k in self._values if sys.getrefcount(self._values[k]) <= 2]
        for k in unused:
            del self._values[k]

    def get(self, table: Mapping[str, Any], key: str) -> Any:
        with self._lock:
            return table.get(key)

    def tags_of(
        self,
        arns: Sequence[str],
        fetch: Callable[[Sequence[str]], dict[str, dict[str, str]]],
        *,
        fresh: bool = False,
        shared: bool = False,
    ) -> dict[str, dict[str, str]]:
        """Tags of ``arns``: remembered ones as they are, the others read by ``fetch`` (batched by
        the caller) and remembered (``fresh``: read them all). Copies, unless ``shared``: then the
        remembered dicts themselves, which the caller must not change (a read round's listing keeps
        one record per resource of the account: a copy of every tag dict would double its tags;
        this class never changes a tag dict in place either, a write replaces it)."""
        with self._lock:
            known = {} if fresh else {a: self.tags[a] for a in arns if a in self.tags}
            missing = [a for a in dict.fromkeys(arns) if a not in known]
            gens = {a: self._gen.get(a, self._floor) for a in missing}
        if missing:
            found = fetch(missing)
            with self._lock:
                for arn, tags in found.items():
                    tags = compact(tags)
                    if self._gen.get(arn, self._floor) == gens.get(arn):
                        self.tags[_intern(arn)] = tags
                    known[arn] = tags
        if shared:
            return {a: known[a] for a in arns if a in known}
        return {a: dict(known[a]) for a in arns if a in known}

    def target_groups(self) -> list[tuple[str, dict[str, str], tuple[str, ...] | None]]:
        """(ARN, tags, registered targets or None if not known) of every target group whose tags
        are remembered: what the node sync plans from, without a read (node_sync.py). The tag
        dicts and target tuples are the remembered ones: the caller must not change them."""
        with self._lock:
            return [
                (arn, tags, self.targets.get(arn))
                for arn, tags in self.tags.items()
                if ":targetgroup/" in arn
            ]

    def clock(self) -> int:
        """The write clock now: taken before a read, passed with what it found to
        :meth:`classics_read`, which keeps only what no write has changed since."""
        with self._lock:
            return self._clock

    def written_since(self, key: str, clock: int) -> bool:
        """Whether a write of ``key`` was sent since :meth:`clock` said ``clock`` (or its generation
        was forgotten since: then it cannot be told, and the answer is yes)."""
        with self._lock:
            return self._gen.get(key, self._floor) > clock

    def classics_read(
        self,
        found: Mapping[str, tuple[Mapping[str, str], Sequence[str]]],
        clock: int,
        *,
        looked_for: Iterable[str] | None = None,
    ) -> None:
        """Classic ELBs read (a listing, or a describe by name) since ``clock``: ``found`` holds the
        cluster's own ones (name -> tags, registered instances). Each is kept unless a write of it
        was sent since ``clock``; those read but not found (every remembered one for a complete
        listing, ``looked_for=None``; else the names looked for) are forgotten, on the same
        condition (deleted by someone else, or no longer the cluster's)."""
        with self._lock:
            for name, (tags, instances) in found.items():
                if self._gen.get(name, self._floor) > clock:
                    continue
                kept = self.classic_instances.get(name)
                ids = tuple(sorted(instances))
                if kept != ids:
                    self.classic_instances[_intern(name)] = self._shared(ids)
                if self.classic_tags.get(name) != tags:
                    self.classic_tags[_intern(name)] = compact(dict(tags))
            gone = set(self.classic_tags if looked_for is None else looked_for) - set(found)
            for name in gone:
                if self._gen.get(name, self._floor) <= clock:
                    self.classic_tags.pop(name, None)
                    self.classic_instances.pop(name, None)

    def classic(self, name: str) -> tuple[dict[str, str], tuple[str, ...]] | None:
        """(tags, registered instances) of the cluster's classic ELB ``name``, None if not known.
        The remembered objects themselves: the caller must not change them."""
        with self._lock:
            tags, instances = self.classic_tags.get(name), self.classic_instances.get(name)
            return None if tags is None or instances is None else (tags, instances)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop everything remembered of ``keys`` (a deep check reads them again)."""
        with self._lock:
            for key in keys:
                self._drop(key)

    def generations(self) -> dict[str, int]:
        """A snapshot to pass to :meth:`prune` (taken before the listing starts)."""
        with self._lock:
            return {**self._gen, _EPOCH: self._epoch}

    def prune(self, listed: set[str], *, marker: str, before: Mapping[str, int]) -> None:
        """Drop remembered ARNs containing ``marker`` (``:targetgroup/``, ``:loadbalancer/``) that a
        complete listing of that kind no longer shows (deleted by someone else), except those
        written since ``before`` (a resource created while the listing ran is not in it)."""
        with self._lock:
            if before.get(_EPOCH) != self._epoch:
                return  # generations were emptied since the snapshot: the next listing prunes
            for table in (self.tags, self.lb_attributes, self.listeners, self.tg_attributes, self.targets):
                for key in [k for k in table if marker in k and k not in listed]:
                    if self._gen.get(key) == before.get(key):
                        del table[key]
            for key in [k for k in self._gen if _unlisted(k, marker, listed)]:
                if self._gen[key] == before.get(key):
                    self._forget_generation(key)

    def _bump(self, key: str) -> None:
        """A write of ``key``: its generation is the next value of the clock.

        Memory: a generation matters only to a read that started before the write and has not
        ended; once ``_gen`` holds :data:`GENERATIONS_MAX` of them, it is emptied and the floor
        raised to the clock, so that every key not written since has the current generation. A
        read in flight then sees another generation than it took and is not kept (at worst read
        again; at most the workers' reads in flight, once per ``GENERATIONS_MAX`` writes)."""
        self._clock += 1
        if key not in self._gen and len(self._gen) >= GENERATIONS_MAX:
            self._gen.clear()
            self._floor = self._clock
            self._epoch += 1
            self._clock += 1
        self._gen[_intern(key)] = self._clock

    def _forget_generation(self, key: str) -> None:
        """Drop ``key``'s generation (the resource is gone): reads that started before see the
        floor, raised to at least what they saw, so they are not kept."""
        if (gen := self._gen.pop(key, None)) is not None:
            self._floor = max(self._floor, gen)

    def _drop(self, key: str) -> None:
        for table in (
            self.tags,
            self.lb_attributes,
            self.listeners,
            self.tg_attributes,
            self.targets,
            self.classic_cross_zone,
            self.classic_attributes,
            self.classic_tags,
            self.classic_instances,
        ):
            table.pop(key, None)

    # -- writes (hooked into AWSClients.call) ------------------------------------------------------

    def before_write(self, operation: str, params: Mapping[str, Any]) -> None:
        """A write is about to be sent: what it changes is no longer known until :meth:`after_write`
        sets it from what was written (tags, targets, a new resource) or a later read does."""
        with self._lock:
            for key in _keys(operation, params):
                self._bump(key)
                if operation == "elb:ModifyLoadBalancerAttributes":
                    known = self.classic_attributes.get(key)
                    writing = self._classic_attributes_writing
                    writing[key] = None if key in writing else known
                for table in self._tables_changed_by(operation):
                    table.pop(key, None)
            if operation in ("elbv2:CreateListener", "elbv2:ModifyListener", "elbv2:DeleteListener"):
                self._gen_listeners(params)

    def _tables_changed_by(self, operation: str) -> tuple[dict[str, Any], ...]:
        """The remembered tables a write may change (the rest of what it names stays valid)."""
        if operation in (
            "elbv2:AddTags",
            "elbv2:RemoveTags",
            "elbv2:RegisterTargets",
            "elbv2:DeregisterTargets",
            *_CLASSIC_SET_AFTER,
        ):
            return ()  # set from what was written, after the call
        if operation in _CLASSIC_OTHER_WRITES:
            # A classic ELB's tags and instances stay as they are (the node sync plans from them),
            # and so do its LoadBalancerAttributes: none of these writes changes them.
            return (self.classic_cross_zone,)
        if operation in ("elbv2:ModifyTargetGroup", "elbv2:SetSubnets", "elbv2:SetSecurityGroups"):
            return ()  # what these change is in the listings, never remembered
        if operation == "elbv2:ModifyTargetGroupAttributes":
            return (self.tg_attributes,)
        if operation == "elbv2:ModifyLoadBalancerAttributes":
            return (self.lb_attributes,)
        if operation == "elb:ModifyLoadBalancerAttributes":
            return (self.classic_cross_zone, self.classic_attributes)
        if operation in ("elbv2:CreateListener", "elbv2:ModifyListener", "elbv2:DeleteListener"):
            return ()  # see _gen_listeners
        return (  # deletes, and any write not listed here: forget all of it
            self.tags,
            self.lb_attributes,
            self.listeners,
            self.tg_attributes,
            self.targets,
            self.classic_cross_zone,
            self.classic_attributes,
            self.classic_tags,
            self.classic_instances,
        )

    def after_write(
        self, operation: str, params: Mapping[str, Any], result: Mapping[str, Any] | None
    ) -> None:
        """The write succeeded: remember what it wrote where that is known exactly. A resource just
        created has AWS's default attributes ({} here: the diff reads a missing key as the default),
        no listener and no target."""
        with self._lock:
            for key in _keys(operation, params):
                self._bump(key)
            result = result or {}
            if operation == "elbv2:CreateTargetGroup":
                for tg in result.get("TargetGroups", []):
                    self._created(tg["TargetGroupArn"], params, self.tg_attributes, self.targets)
            elif operation == "elbv2:CreateLoadBalancer":
                for lb in result.get("LoadBalancers", []):
                    self._created(lb["LoadBalancerArn"], params, self.lb_attributes, self.listeners)
            elif operation == "elbv2:CreateListener":
                lb = params.get("LoadBalancerArn", "")
                if lb in self.listeners:
                    self._bump(lb)
                    self.listeners[lb] = (
                        *self.listeners[lb],
                        *(compact(trim_listener(li)) for li in result.get("Listeners", [])),
                    )
            elif operation == "elbv2:AddTags":
                for arn in params.get("ResourceArns", []):
                    if arn in self.tags:
                        self.tags[arn] = {**self.tags[arn], **_tag_dict(params.get("Tags"))}
            elif operation in _DELETES:
                for key in _keys(operation, params):
                    self._forget_generation(key)
            elif operation == "elbv2:RemoveTags":
                for arn in params.get("ResourceArns", []):
                    if arn in self.tags:
                        gone = set(params.get("TagKeys", []))
                        self.tags[arn] = {k: v for k, v in self.tags[arn].items() if k not in gone}
            elif operation in ("elbv2:RegisterTargets", "elbv2:DeregisterTargets"):
                arn = params.get("TargetGroupArn", "")
                if arn in self.targets:
                    ids = {t["Id"] for t in params.get("Targets", [])}
                    now = set(self.targets[arn])
                    now = now | ids if operation == "elbv2:RegisterTargets" else now - ids
                    self.targets[arn] = self._shared(tuple(sorted(now)))
            elif operation.startswith("elb:"):
                self._classic_written(operation, params)

    def _classic_written(self, operation: str, params: Mapping[str, Any]) -> None:
        """A classic ELB write that succeeded (the lock held): its tags and instances as written,
        where they were known (a new ELB: its create call's tags and no instance)."""
        if operation == "elb:CreateLoadBalancer":
            name = _intern(str(params.get("LoadBalancerName", "")))
            self.classic_tags[name] = _tag_dict(params.get("Tags"))
            self.classic_instances[name] = self._shared(())
            # AWS's defaults for an ELB made through the API (no cross-zone, no access log, no
            # draining, 60 s idle timeout): {} reads as them (desired.observed_classic_attributes),
            # so a resync after the create need not describe them (issue 14, ask 4).
            self.classic_attributes[name] = self._shared({})
        elif operation == "elb:ModifyLoadBalancerAttributes":
            name = str(params.get("LoadBalancerName", ""))
            known = self._classic_attributes_writing.pop(name, None)
            merged = _merge_classic_attributes(known, params.get("LoadBalancerAttributes"))
            if merged is not None:
                self.classic_attributes[_intern(name)] = self._shared(merged)
        elif operation in (
            "elb:RegisterInstancesWithLoadBalancer",
            "elb:DeregisterInstancesFromLoadBalancer",
        ):
            name = str(params.get("LoadBalancerName", ""))
            if name in self.classic_instances:
                ids = {i["InstanceId"] for i in params.get("Instances", [])}
                now = set(self.classic_instances[name])
                now = now | ids if operation == "elb:RegisterInstancesWithLoadBalancer" else now - ids
                self.classic_instances[name] = self._shared(tuple(sorted(now)))
        elif operation in ("elb:AddTags", "elb:RemoveTags"):
            for name in params.get("LoadBalancerNames", []):
                if name in self.classic_tags:
                    if operation == "elb:AddTags":
                        self.classic_tags[name] = {**self.classic_tags[name], **_tag_dict(params.get("Tags"))}
                    else:
                        gone = {t["Key"] for t in params.get("Tags", [])}
                        self.classic_tags[name] = {
                            k: v for k, v in self.classic_tags[name].items() if k not in gone
                        }

    def _created(
        self,
        arn: str,
        params: Mapping[str, Any],
        attributes: dict[str, dict[str, str]],
        children: dict[str, tuple[Any, ...]],
    ) -> None:
        """A load balancer or target group just created (the lock held): its create call's tags,
        AWS's default attributes ({}) and no listener or target yet (``children``)."""
        arn = _intern(arn)
        self._bump(arn)
        self.tags[arn] = _tag_dict(params.get("Tags"))
        attributes[arn] = self._shared({})
        children[arn] = ()

    def write_failed(self, operation: str, params: Mapping[str, Any]) -> None:
        """The write failed or its outcome is unknown: forget everything it may have changed."""
        with self._lock:
            for key in _keys(operation, params):
                self._bump(key)
                self._drop(key)
                if operation == "elb:ModifyLoadBalancerAttributes":
                    self._classic_attributes_writing.pop(key, None)
            if operation.startswith("elbv2:") and "Listener" in operation:
                self._gen_listeners(params)

    def _gen_listeners(self, params: Mapping[str, Any]) -> None:
        """A listener write: the listeners of its load balancer are unknown (CreateListener adds the
        new one back after the call, when they were known)."""
        owners = set()
        if params.get("LoadBalancerArn"):
            owners.add(params["LoadBalancerArn"])
        li = params.get("ListenerArn")
        if li:
            owners |= {k for k, v in self.listeners.items() if any(x.get("ListenerArn") == li for x in v)}
        for lb in owners:
            self._bump(lb)
            if "ListenerArn" in params:
                self.listeners.pop(lb, None)


#: The fields of a listener that a plan compares (observe._listener): the rest is not kept.
_LISTENER_FIELDS = ("ListenerArn", "Port", "Protocol", "Certificates", "SslPolicy", "AlpnPolicy")


def trim_listener(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A listener as remembered: the compared fields and its forward action's target group.

    Memory (10,000 listeners are remembered at 10,000 Services): the target group's ARN is interned,
    so it is the string the target group's own entries are keyed by, not a copy per listener; an
    empty ``AlpnPolicy`` (every non-TLS listener's) is not kept, as its reader
    (observe.py ``_listener``) reads a missing one the same."""
    out = {k: raw[k] for k in _LISTENER_FIELDS if k in raw and (k != "AlpnPolicy" or raw[k])}
    out["DefaultActions"] = [
        {
            "Type": "forward",
            "TargetGroupArn": _intern(arn) if isinstance(arn := a.get("TargetGroupArn"), str) else arn,
        }
        for a in raw.get("DefaultActions", [])
        if a.get("Type") == "forward"
    ]
    if out.get("Certificates"):
        out["Certificates"] = [{"CertificateArn": out["Certificates"][0].get("CertificateArn")}]
    return out


def _keys(operation: str, params: Mapping[str, Any]) -> list[str]:
    if not operation.startswith(("elbv2:", "elb:")):
        return []
    out: list[str] = []
    for name in _KEY_PARAMS:
        value = params.get(name)
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, list):
            out.extend(v for v in value if isinstance(v, str))
    names = params.get("LoadBalancerNames")
    if isinstance(names, list):
        out.extend(n for n in names if isinstance(n, str))
    return out


def _merge_classic_attributes(known: Mapping[str, Any] | None, written: Any) -> dict[str, Any] | None:
    """A classic ELB's attributes after ModifyLoadBalancerAttributes wrote ``written`` over
    ``known``: each structure given (AccessLog, ConnectionDraining, ...) takes the fields given and
    keeps the others, as AWS does (a disabled draining keeps its timeout). None when either is not
    known exactly (the next read tells)."""
    if known is None or not isinstance(written, Mapping):
        return None
    out = dict(known)
    for key, value in written.items():
        if not isinstance(value, Mapping):
            return None  # (AdditionalAttributes, a list: lbprov never writes it)
        out[key] = {**(out.get(key) or {}), **value}
    return out


def _tag_dict(tags: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return compact({t["Key"]: t.get("Value", "") for t in tags or []})


def _intern(value: str) -> str:
    """ARNs are longer than :func:`compact` interns, but one is a key of several tables, each
    filled from a different answer: interned, they share one string."""
    return sys.intern(value) if type(value) is str else value


def listener_owner(arn: str) -> str | None:
    """The load balancer ARN of a listener ARN (``...:listener/net/NAME/LB-ID/LISTENER-ID`` belongs
    to ``...:loadbalancer/net/NAME/LB-ID``), None for any other ARN."""
    head, sep, rest = arn.partition(":listener/")
    if not sep or "/" not in rest:
        return None
    return f"{head}:loadbalancer/{rest.rsplit('/', 1)[0]}"


def _unlisted(key: str, marker: str, listed: set[str]) -> bool:
    """Whether a complete listing of ``marker``'s kind shows ``key`` gone: its own ARN, or for a
    listener, its load balancer's (listeners are not listed account-wide; their generations go
    with their load balancer)."""
    if marker in key:
        return key not in listed
    if marker == ":loadbalancer/" and (owner := listener_owner(key)) is not None:
        return owner not in listed
    return False
