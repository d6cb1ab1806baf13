"""Compute Engine errors in Google's JSON error shape.

The SDK (google-api-core) maps the HTTP status to an exception class (404 -> ``NotFound``, 409 ->
``Conflict``, 412 -> ``PreconditionFailed``, 429 -> ``TooManyRequests``) and keeps ``errors[].reason``,
so the emulator must answer exactly this shape for the provider's error handling to be tested.
"""

from __future__ import annotations

from typing import Any

_STATUS_TEXT = {
    400: "BAD REQUEST",
    403: "FORBIDDEN",
    404: "NOT FOUND",
    409: "CONFLICT",
    412: "PRECONDITION FAILED",
    429: "TOO MANY REQUESTS",
    500: "INTERNAL SERVER ERROR",
    503: "SERVICE UNAVAILABLE",
}


class ApiError(Exception):
    """An error answer: HTTP status, Google's ``reason`` and a human message."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"{code} {reason}: {message}")
        self.code = code
        self.reason = reason
        self.message = message

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"message": self.message, "domain": "global", "reason": self.reason}],
            }
        }

    @property
    def status_text(self) -> str:
        return _STATUS_TEXT.get(self.code, "ERROR")


def not_found(rel: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{rel}' was not found")


def already_exists(rel: str) -> ApiError:
    return ApiError(409, "alreadyExists", f"The resource '{rel}' already exists")


def invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid", f"Invalid value for field '{field}': {message}")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "badRequest", message)


def in_use(kind: str, rel: str, user: str) -> ApiError:
    return ApiError(
        400,
        "resourceInUseByAnotherResource",
        f"The {kind} resource '{rel}' is already being used by '{user}'",
    )


def condition_not_met(message: str) -> ApiError:
    return ApiError(412, "conditionNotMet", message)
