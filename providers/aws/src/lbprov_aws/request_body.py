"""Encode a query-protocol request's form body once instead of once per ``AWSRequest.prepare()``.

Why: the EC2 and ELB APIs are query protocols: botocore's serializer leaves the body as a dict of
parameters, and ``AWSRequestPreparer._prepare_body`` url-encodes it every time the request is
prepared. A request is prepared twice: SigV4 hashes the payload (``request.body`` prepares it) and
the endpoint prepares it again to send it. In a CPU profile of the scale bench's controller (300
creates) the two encodings were 12% of the controller's CPU (``urlencode`` and ``quote_plus``, 35
parameters per create on average), half of it spent encoding the same dict a second time.

:func:`encode_form_body` runs first at ``request-created`` (before the signer) and replaces the dict
by botocore's encoding of it: the signature covers, and the wire carries, the same bytes as before,
encoded once.

The encoding itself is ``urlencode``'s (``quote_plus`` of each UTF-8 key and value, ``k=v`` joined
by ``&``), with each quoted string kept: the same parameter names (``Tags.member.3.Key``...) and
many of the same values (the VPC, tag keys, protocols) recur in every request, and ``quote_plus``
was still 8% of the controller's CPU in the bench's profile after the double encoding was gone. A
body with anything but string keys and string or integer values goes to botocore's
``_prepare_body`` as before.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

from botocore.awsrequest import AWSRequestPreparer  # type: ignore[import-untyped]

_PREPARER = AWSRequestPreparer()
#: Quoted forms of recent keys and values; emptied when full (a bound on memory, not an LRU).
_QUOTED: dict[str, str] = {}
QUOTED_MAX = 4096


def _quoted(text: str) -> str:
    found = _QUOTED.get(text)
    if found is None:
        if len(_QUOTED) >= QUOTED_MAX:
            _QUOTED.clear()
        found = _QUOTED[text] = quote_plus(text.encode("utf-8"), safe="")  # urlencode's call
    return found


def form_body(data: dict[Any, Any]) -> str | None:
    """``urlencode([(k.encode(), v.encode()) ...], doseq=True)`` (botocore's ``_prepare_body`` of a
    dict), or None when a key is not a ``str`` or a value neither a ``str`` nor an ``int`` (botocore's
    own code then)."""
    parts = []
    for key, value in data.items():
        if type(value) is int:  # botocore leaves integers as they are; urlencode quotes str(value)
            value = str(value)
        if type(key) is not str or type(value) is not str:
            return None
        parts.append(_quoted(key) + "=" + _quoted(value))
    return "&".join(parts)


def encode_form_body(request: Any, **_: Any) -> None:
    """``request-created`` handler: a dict body becomes its url-encoded form (botocore's)."""
    if isinstance(request.data, dict):
        body = form_body(request.data)
        request.data = _PREPARER._prepare_body(request) if body is None else body


def register(client: Any) -> None:
    """Run :func:`encode_form_body` before any other ``request-created`` handler (the signer)."""
    service_id = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"request-created.{service_id}", encode_form_body)
