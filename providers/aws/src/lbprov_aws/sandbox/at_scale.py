"""moto at 10,000 load balancers: the sandbox's fixes of moto's per-request scans over all resources.

Why: the scale bench needs a cloud that holds 10,000 converged NLBs (one security group, target group
and listener each) and answers as fast as it answers at 100. Sampling moto at 640 Services
(``py-spy``; the bench's emulator spent 4x the controller's CPU) found where its cost per request grows
with the number of resources:

* EC2 tags: every EC2 resource's ``tag_set`` (what ``DescribeSecurityGroups``, ``DescribeInstances``
  etc. render for each item) runs ``TagBackend.describe_tags`` with a ``resource-id`` regex over
  *every* tag of the region, so listing N security groups with 6 tags each costs 6 N² regex matches
  (5 s at 643 groups, about 20 minutes at 10,000). :func:`_ec2_tags_of` reads the resource's own
  entry of the same store instead: the same list, in the same order, for an exact ID (which is what
  moto's filter matches: ``fnmatch.translate`` of an ID without wildcards is an anchored literal).
* ``DescribeSecurityGroups`` with a ``group-name`` filter (the provider's check for a foreign
  namesake, once per Service created) runs every filter on every group of the region;
  :func:`_describe_security_groups` first keeps the groups of that name when the names are literal
  (no ``*``/``?``; moto's ``aws_api_matches`` is then an anchored equality), then applies every filter
  as moto does: the same groups in the same order.
* ``DescribeLoadBalancers`` by name or ARN loops over every load balancer per requested name, calling
  ``activate()`` on each; :func:`_describe_load_balancers` finds them by ARN (the dict's key) or one
  pass by name, with moto's answers and errors unchanged (including its quirk that a missing name
  after a found one is not an error; TOOLING.md).
* ``DescribeTargetGroups`` ignores ``PageSize`` and ``Marker`` and returns every target group in one
  response (10,000 at once, and the client parses them at once: not the memory profile of a real
  controller). AWS pages it: "PageSize: the maximum number of results to return with this call.
  Valid Range: Minimum value of 1. Maximum value of 400." and "NextMarker: If there are additional
  results, this is the marker for the next set of results" (Elastic Load Balancing API Reference,
  DescribeTargetGroups). :func:`_describe_target_groups` pages when ``PageSize`` is given (the
  provider always gives 400); without it, as before, everything (AWS's default page size is not
  documented; the strict layer refuses a PageSize outside 1..400 from botocore's model).
* ``DescribeSecurityGroups`` ignores ``MaxResults``/``NextToken`` and answers every group at once
  (10,000 frontend groups: a response of about 20 MB that the client parses in one piece). AWS:
  "MaxResults: The maximum number of items to return for this request. To get the next page of
  items, make another request with the token returned in the output. This value can be between 5
  and 1000. If this parameter is not specified, then all items are returned." (Amazon EC2 API
  Reference, DescribeSecurityGroups). :func:`_describe_security_groups_paged` pages by group ID
  when ``MaxResults`` is given (the strict layer refuses values outside 5..1000 from botocore's
  model); without it, every group as before.

* Passes over every load balancer, target group or security group on each create (a 1,000-Service
  create's server CPU per ``CreateTargetGroup`` went from 1.9 ms over the first 250 Services to
  2.9 ms over the last 250; ``CreateListener`` 1.6 to 2.4, ``CreateSecurityGroup`` 1.9 to 2.5):
  moto's ``create_target_group`` looks for a namesake, its ``_validate_actions`` lists every target
  group's ARN, ``get_security_group_from_name`` walks the VPC's groups and
  ``get_security_group_from_id`` copies and walks every group of the region. The load balancers
  and target groups (``ELBv2Backend``) and each VPC's security groups are kept in
  :class:`by_name.ByName` dicts (indexed by name); :func:`_get_security_group_from_name` asks the
  index, :func:`_get_security_group_from_id` the VPCs' dicts by key, and the two ELBv2 methods run
  with their pass narrowed to what it can find (:func:`by_name.narrowed`). The strict layer's own
  name checks use the same index.

Per-request costs that do not grow with the resources but are paid on every request (a CPU
profile of the bench's emulator, ``BENCH_EMULATOR_PROFILE``, 300 creates: 63 s of CPU, profiled):

* ``DomainDispatcherApplication.get_backend_for_host`` asks ``moto.backends.list_of_moto_modules()``
  twice per request, which lists moto's package directory and ``stat``s each of its ~200 entries
  (13% of the emulator's CPU, under the dispatcher's process-wide lock). The directory does not
  change while the server runs, so :func:`_moto_modules` answers moto's own listing, made once.
* ``BaseResponse.call_action`` runs ``inspect.getmembers`` over the response class (hundreds of
  methods) on every request to learn whether the action is one of its methods (7%):
  :func:`_method_names_from_class` keeps moto's answer per class. The classes' methods are fixed
  once :func:`install` has run (it patches before the server starts).
* ``InstanceBackend.get_instance_by_id`` (``RegisterTargets`` asks it per target) goes through
  ``all_reservations()``, which shallow-copies every reservation of the region per lookup (5%):
  :func:`_get_instance_by_id` walks the same reservations in the same order without the copies
  (the lookup only reads ``reservation.instances``, the list the copy shares).

:func:`install` patches moto's classes once per process (idempotent); ``MotoSandbox`` calls it, so
every test and demo runs on these paths. tests/test_sandbox_at_scale.py checks each against moto's
own answers and the paging against its reference.

Per-request costs of moto's response path (the generic serializer), cut by
:func:`install_fast_responses` (``LBPROV_SANDBOX_STOCK_MOTO=1`` leaves moto's own response path,
e.g. to compare a figure with stock moto; the answers are the same; tests/test_sandbox_fast_*.py):

* ``xmltodict.unparse`` (16% of moto's CPU at 300 creates, in a cProfile) is :mod:`fast_xml`'s
  writer, the same text for what moto's serializer passes, xmltodict itself for anything else.
* ``ResponseSerializer.get_value`` (15% in that profile: alias providers and transformer paths per
  member) keeps what it derives per member (:mod:`fast_picker`).
* moto's query parser asks, per structure member, whether any parameter starts with its prefix by
  a pass over every parameter (:mod:`fast_parse`: a binary search of the sorted names).
* moto's random request IDs and resource IDs are drawn a character at a time through
  ``Random.choice`` (:mod:`fast_random`: the same draws from the same stream, without the calls).

The HTTP server (keep-alive instead of a connection per request) is in server.py, under the same
switch.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections import defaultdict
from typing import Any

from lbprov_aws.sandbox import by_name

_INSTALLED: dict[str, bool] = {}
#: moto's own methods, kept for the tests that compare answers.
ORIGINAL: dict[str, Any] = {}


def _ec2_tags_of(self: Any) -> list[dict[str, str]]:
    """``TaggedEC2Resource.get_tags``: this resource's tags from moto's tag store, by its ID."""
    from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

    rid = getattr(self, "id", None)
    if not rid:
        return []
    own = self.ec2_backend.tags.get(rid)  # .get: the store is a defaultdict, reading must not add
    if not own:
        return []
    kind = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
    return [{"resource_id": rid, "key": k, "value": v, "resource_type": kind} for k, v in own.items()]


_LITERAL = re.compile(r"^[A-Za-z0-9_\-]+$")


def _describe_security_groups(
    self: Any, group_ids: Any = None, groupnames: Any = None, filters: Any = None
) -> list[Any]:
    """``SecurityGroupBackend.describe_security_groups``: by literal name first, then moto's filters."""
    names = (filters or {}).get("group-name")
    if group_ids or groupnames or not names or not all(_LITERAL.match(str(v)) for v in names):
        return list(ORIGINAL["describe_security_groups"](self, group_ids, groupnames, filters))
    wanted = set(names)
    return [
        group
        for groups in list(self.groups.values())
        for group in list(groups.values())
        if group.name in wanted and group.matches_filters(filters)
    ]


def _describe_security_groups_paged(self: Any) -> Any:
    """``SecurityGroups.describe_security_groups`` (EC2 responses) with AWS's ``MaxResults`` paging."""
    from moto.core.responses import ActionResult

    groups = self.ec2_backend.describe_security_groups(
        group_ids=self._get_param("GroupIds", []),
        groupnames=self._get_param("GroupNames", []),
        filters=self._filters_from_querystring(),
    )
    size = self._get_int_param("MaxResults")
    if not size:
        return ActionResult({"SecurityGroups": groups})
    groups = sorted(groups, key=lambda g: g.id)  # a stable order for the token
    token = self._get_param("NextToken")
    start = bisect_right([g.id for g in groups], token) if token else 0
    page = groups[start : start + size]
    result: dict[str, Any] = {"SecurityGroups": page}
    if start + size < len(groups):
        result["NextToken"] = page[-1].id
    return ActionResult(result)


def _describe_load_balancers(self: Any, arns: list[str] | None, names: list[str] | None) -> list[Any]:
    """``ELBv2Backend.describe_load_balancers`` without a pass over every balancer per name."""
    from moto.elbv2.exceptions import LoadBalancerNotFoundError

    if not arns and not names:
        balancers = list(self.load_balancers.values())
        for balancer in balancers:
            balancer.activate()
        return balancers
    matched: list[Any] = []
    found: Any = None  # moto's loop keeps the last match across names (its quirk, kept)
    for arn in arns or []:
        found = self.load_balancers.get(arn, found)
        if found is None:
            raise LoadBalancerNotFoundError()
        if found not in matched:
            matched.append(found)
    for name in names or []:
        # the last one of that name wins, as in moto's loop (by_name.py's index, or a pass over a
        # copy: a CreateLoadBalancer on another server thread must not change the dict under it)
        named = by_name.last(self.load_balancers, name)
        found = found if named is None else named
        if found is None:
            raise LoadBalancerNotFoundError()
        if found not in matched:
            matched.append(found)
    for balancer in matched:
        balancer.activate()
    return matched


def _get_security_group_from_id(self: Any, group_id: str) -> Any:
    """``SecurityGroupBackend.get_security_group_from_id`` without copying and walking every group
    of the region: moto stores each group under its own ID in its VPC's dict (``create_security_group``
    and a network interface's group: ``groups[vpc_id][group_id] = group`` with ``group.id ==
    group_id``), so the VPCs' dicts, asked in moto's order, give the group its pass finds."""
    for groups in list(self.groups.values()):
        group = groups.get(group_id)
        if group is not None and group.id == group_id:
            return group
    return None


def _security_groups_init(self: Any) -> None:
    """``SecurityGroupBackend.__init__`` with each VPC's groups in a :class:`by_name.ByName` (the
    same dict by group ID, indexed by name for :func:`_get_security_group_from_name`)."""
    ORIGINAL["security_groups_init"](self)
    self.groups = defaultdict(by_name.ByName, {vpc: by_name.ByName(g) for vpc, g in self.groups.items()})


def _get_security_group_from_name(self: Any, name: str, vpc_id: str | None = None) -> Any:
    """``SecurityGroupBackend.get_security_group_from_name`` (``CreateSecurityGroup`` asks it for a
    namesake in the VPC) by the name index instead of a pass over the VPC's groups: the same VPCs
    in the same order, the first group of that name in each."""
    if vpc_id:
        return by_name.first(self.groups[vpc_id], name)  # moto's self.groups[vpc_id]: adds the VPC's dict
    for vpc in list(self.groups):
        group = by_name.first(self.groups[vpc], name)
        if group is not None:
            return group
    return None


def _create_target_group(self: Any, name: str, **kwargs: Any) -> Any:
    """``ELBv2Backend.create_target_group``, whose pass over every target group for a namesake
    (``DuplicateTargetGroupName``) sees only the namesakes (:func:`by_name.narrowed`)."""
    with by_name.narrowed(self.target_groups, name=name):
        return ORIGINAL["create_target_group"](self, name, **kwargs)


def _validate_actions(self: Any, actions: list[Any]) -> None:
    """``ELBv2Backend._validate_actions`` (``CreateListener``, ``ModifyListener``, rules), whose list
    of every target group's ARN is asked only for the ARNs the forward actions name: it sees only
    those groups (moto keys each target group by its ARN). If reading the actions fails, moto's own
    method runs as is and raises its own error."""
    try:
        forwarded = [
            arn
            for action in actions
            if action.type == "forward"
            for arn in self._get_target_group_arns_from(action_data=action.data)
        ]
    except Exception:
        return ORIGINAL["validate_actions"](self, actions)  # type: ignore[no-any-return]
    with by_name.narrowed(self.target_groups, keys=forwarded):
        return ORIGINAL["validate_actions"](self, actions)  # type: ignore[no-any-return]


def _describe_target_groups(self: Any) -> Any:
    """``ELBV2Response.describe_target_groups`` with AWS's paging (``PageSize``, ``NextMarker``)."""
    from moto.core.responses import ActionResult

    groups = list(
        self.elbv2_backend.describe_target_groups(
            self._get_param("LoadBalancerArn"),
            self._get_param("TargetGroupArns", []),
            self._get_param("Names", []),
        )
    )  # sorted by name (moto's order); names are unique in a region
    page_size = self._get_int_param("PageSize")
    if not page_size:
        return ActionResult({"TargetGroups": groups})
    marker = self._get_param("Marker")
    start = bisect_right([g.name for g in groups], marker) if marker else 0
    page = groups[start : start + page_size]
    result: dict[str, Any] = {"TargetGroups": page}
    if start + page_size < len(groups):
        result["NextMarker"] = page[-1].name
    return ActionResult(result)


def _moto_modules_once() -> Any:
    """``moto.backends.list_of_moto_modules`` replaced by its answer, computed once."""
    modules = tuple(ORIGINAL["list_of_moto_modules"]())

    def _moto_modules() -> tuple[str, ...]:
        return modules

    return _moto_modules


_METHOD_NAMES: dict[type, list[str]] = {}


def _method_names_from_class(clazz: Any) -> list[str]:
    """``moto.core.utils.method_names_from_class``, once per class (callers only test membership)."""
    found = _METHOD_NAMES.get(clazz)
    if found is None:
        found = _METHOD_NAMES[clazz] = list(ORIGINAL["method_names_from_class"](clazz))
    return found


def _get_instance_by_id(self: Any, instance_id: str) -> Any:
    """``InstanceBackend.get_instance_by_id`` without a copy of every reservation per lookup."""
    for reservation in list(self.reservations.values()):
        for instance in reservation.instances:
            if instance.id == instance_id:
                return instance
    return None


def install() -> None:
    """Patch moto's classes (once per process)."""
    if _INSTALLED.get("done"):
        return
    from moto import backends
    from moto.core import responses, utils
    from moto.ec2.models.core import TaggedEC2Resource
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.models.security_groups import SecurityGroupBackend
    from moto.ec2.responses.security_groups import SecurityGroups
    from moto.elbv2.models import ELBv2Backend
    from moto.elbv2.responses import ELBV2Response

    ORIGINAL.update(
        get_tags=TaggedEC2Resource.get_tags,
        describe_security_groups=SecurityGroupBackend.describe_security_groups,
        describe_security_groups_response=SecurityGroups.describe_security_groups,
        describe_load_balancers=ELBv2Backend.describe_load_balancers,
        describe_target_groups=ELBV2Response.describe_target_groups,
        list_of_moto_modules=backends.list_of_moto_modules,
        method_names_from_class=utils.method_names_from_class,
        get_instance_by_id=InstanceBackend.get_instance_by_id,
        get_security_group_from_id=SecurityGroupBackend.get_security_group_from_id,
        get_security_group_from_name=SecurityGroupBackend.get_security_group_from_name,
        security_groups_init=SecurityGroupBackend.__init__,
        create_target_group=ELBv2Backend.create_target_group,
        validate_actions=ELBv2Backend._validate_actions,
    )
    TaggedEC2Resource.get_tags = _ec2_tags_of  # type: ignore[method-assign]
    SecurityGroupBackend.describe_security_groups = _describe_security_groups  # type: ignore[method-assign]
    SecurityGroups.describe_security_groups = _describe_security_groups_paged  # type: ignore[method-assign]
    ELBv2Backend.describe_load_balancers = _describe_load_balancers  # type: ignore[method-assign]
    ELBV2Response.describe_target_groups = _describe_target_groups  # type: ignore[method-assign]
    backends.list_of_moto_modules = _moto_modules_once()
    responses.method_names_from_class = _method_names_from_class  # type: ignore[attr-defined]  # (imported by name there)
    InstanceBackend.get_instance_by_id = _get_instance_by_id  # type: ignore[method-assign]
    SecurityGroupBackend.get_security_group_from_id = _get_security_group_from_id  # type: ignore[method-assign]
    SecurityGroupBackend.get_security_group_from_name = _get_security_group_from_name  # type: ignore[method-assign]
    SecurityGroupBackend.__init__ = _security_groups_init  # type: ignore[method-assign]
    ELBv2Backend.create_target_group = _create_target_group  # type: ignore[method-assign]
    ELBv2Backend._validate_actions = _validate_actions  # type: ignore[method-assign]
    by_name.install()
    if os.environ.get("LBPROV_SANDBOX_STOCK_MOTO", "") not in ("1", "true"):
        install_fast_responses()
    _INSTALLED["done"] = True


def install_fast_responses() -> None:
    """moto's response path without its generic overheads (the module docstring's second list)."""
    from moto.core import serialize

    from lbprov_aws.sandbox import fast_parse, fast_picker, fast_random
    from lbprov_aws.sandbox.fast_xml import FastXmlToDict

    ORIGINAL.setdefault("xmltodict", serialize.xmltodict)  # type: ignore[attr-defined]
    serialize.xmltodict = FastXmlToDict()  # type: ignore[attr-defined]
    fast_picker.install()
    fast_parse.install()
    fast_random.install()
