"""Field and enum checking from the Compute API's own message descriptors.

The real API rejects a body with an unknown field ("Invalid JSON payload received. Unknown name")
and an enum field with a value outside its enum. Rather than hand-write field lists that drift from
the API, the emulator reads them from google-cloud-compute's protobuf descriptors, which are
generated from the API's discovery document.
"""

from __future__ import annotations

from typing import Any

from google.cloud import compute_v1
from google.protobuf.descriptor import Descriptor, FieldDescriptor  # type: ignore[import-untyped]

from lbprov_gcp.sandbox.errors import ApiError, invalid

RESOURCE_TYPES: dict[str, Descriptor] = {
    "forwardingRules": compute_v1.ForwardingRule.pb().DESCRIPTOR,
    "backendServices": compute_v1.BackendService.pb().DESCRIPTOR,
    "healthChecks": compute_v1.HealthCheck.pb().DESCRIPTOR,
    "addresses": compute_v1.Address.pb().DESCRIPTOR,
    "firewalls": compute_v1.Firewall.pb().DESCRIPTOR,
    "targetPools": compute_v1.TargetPool.pb().DESCRIPTOR,
    "instanceGroups": compute_v1.InstanceGroup.pb().DESCRIPTOR,
    "instanceGroupsAddInstancesRequest": compute_v1.InstanceGroupsAddInstancesRequest.pb().DESCRIPTOR,
    "instanceGroupsRemoveInstancesRequest": compute_v1.InstanceGroupsRemoveInstancesRequest.pb().DESCRIPTOR,
    "instanceGroupsListInstancesRequest": compute_v1.InstanceGroupsListInstancesRequest.pb().DESCRIPTOR,
    "regionSetLabelsRequest": compute_v1.RegionSetLabelsRequest.pb().DESCRIPTOR,
}


def _enum_for(desc: Descriptor, json_name: str) -> list[str] | None:
    """The allowed values of a string field documented as an enum (``IPProtocol`` -> ``IPProtocolEnum``)."""
    wanted = json_name[:1].upper() + json_name[1:]
    for enum in desc.enum_types:
        if enum.name in (wanted, wanted + "Enum"):
            return [v.name for v in enum.values if not v.name.startswith("UNDEFINED_")]
    return None


def _repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)  # protobuf >= 5; older ones only have ``label``
    if flag is not None:
        return bool(flag)
    return bool(field.label == FieldDescriptor.LABEL_REPEATED)


def check_fields(body: Any, desc: Descriptor, where: str = "resource") -> None:
    """Raise 400 for an unknown field, a wrongly typed value or an enum value the API does not know."""
    if not isinstance(body, dict):
        raise ApiError(400, "invalid", f"Invalid JSON payload received. '{where}' must be an object")
    fields = {f.json_name: f for f in desc.fields}
    for key, value in body.items():
        field = fields.get(key)
        if field is None:
            raise ApiError(
                400,
                "invalid",
                f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field.",
            )
        path = f"{where}.{key}"
        repeated = _repeated(field)
        if repeated and not (field.message_type and field.message_type.GetOptions().map_entry):
            if not isinstance(value, list):
                raise invalid(path, "expected a list")
            items = value
        else:
            items = [value]
        for i, item in enumerate(items):
            item_path = f"{path}[{i}]" if repeated else path
            _check_value(item, field, desc, key, item_path)


def _check_value(item: Any, field: FieldDescriptor, desc: Descriptor, key: str, path: str) -> None:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            if not isinstance(item, dict):
                raise invalid(path, "expected a map")
            return
        check_fields(item, field.message_type, path)
    elif field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(item, str):
            raise invalid(path, f"expected a string, got {item!r}")
        allowed = _enum_for(desc, key)
        if allowed is not None and item not in allowed:
            raise invalid(path, f"'{item}' is not one of {', '.join(allowed)}")
    elif field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(item, bool):
            raise invalid(path, f"expected a boolean, got {item!r}")
    elif field.cpp_type in (
        FieldDescriptor.CPPTYPE_INT32,
        FieldDescriptor.CPPTYPE_INT64,
        FieldDescriptor.CPPTYPE_UINT32,
        FieldDescriptor.CPPTYPE_UINT64,
    ):
        try:
            int(item)
        except (TypeError, ValueError):
            raise invalid(path, f"expected an integer, got {item!r}") from None
