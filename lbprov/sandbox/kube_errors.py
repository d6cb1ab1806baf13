"""Kubernetes ``Status`` errors for the sandbox API server.

The real API server answers every failure with a ``Status`` object whose ``reason`` and ``code``
clients branch on (the Python client raises ``ApiException(status=...)``, kubectl prints
``message``). Keeping the shapes identical is what makes the sandbox useful for testing clients.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed request, rendered as a ``metav1.Status``."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, name: str, group: str = "") -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{_qualified(resource, group)} "{name}" not found',
        details={"name": name, "group": group, "kind": resource}
        if group
        else {"name": name, "kind": resource},
    )


def already_exists(resource: str, name: str, group: str = "") -> ApiError:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return ApiError(
        409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists', details=details
    )


def conflict(resource: str, name: str, group: str = "", why: str | None = None) -> ApiError:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
        details=details,
    )


class Cause:
    """One field error of a 422 Invalid (``metav1.StatusCause``)."""

    def __init__(self, field: str, reason: str, message: str) -> None:
        self.field = field
        self.reason = reason  # FieldValueInvalid, FieldValueRequired, FieldValueForbidden, ...
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.message, "field": self.field}


def invalid_value(field: str, value: Any, detail: str) -> Cause:
    shown = f'"{value}"' if isinstance(value, str) else _go_repr(value)
    return Cause(field, "FieldValueInvalid", f"Invalid value: {shown}: {detail}")


def required(field: str, detail: str = "") -> Cause:
    return Cause(field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field, "FieldValueForbidden", f"Forbidden: {detail}")


def duplicate(field: str, value: Any) -> Cause:
    shown = f'"{value}"' if isinstance(value, str) else _go_repr(value)
    return Cause(field, "FieldValueDuplicate", f"Duplicate value: {shown}")


def not_supported(field: str, value: Any, supported: list[str]) -> Cause:
    values = ", ".join(f'"{s}"' for s in supported)
    return Cause(field, "FieldValueNotSupported", f'Unsupported value: "{value}": supported values: {values}')


def _go_repr(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def invalid(kind: str, name: str, causes: list[Cause], group: str = "") -> ApiError:
    shown = "; ".join(f"{c.field}: {c.message}" for c in causes)
    if len(causes) > 1:
        shown = "[" + ", ".join(f"{c.field}: {c.message}" for c in causes) + "]"
    details: dict[str, Any] = {"name": name, "kind": kind, "causes": [c.as_dict() for c in causes]}
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {shown}', details=details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed(
    message: str = "the server does not allow this method on the requested resource",
) -> ApiError:
    return ApiError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type!r})",
    )


def expired(message: str) -> ApiError:
    return ApiError(410, "Expired", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden_request(message: str) -> ApiError:
    return ApiError(403, "Forbidden", message)
