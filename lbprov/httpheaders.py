"""A cheaper :func:`http.client.parse_headers` for every HTTP client of the process, same result.

Every response that http.client reads -- and so every one urllib3 reads: the Kubernetes transport,
botocore, the GCE and ARM transports -- has its header block parsed by ``email.parser`` (the
``compat32`` feed parser), a general MIME parser: about 50 Python calls a header line and a
content-type sniff of its own. It was ~8% of the controller's CPU on Azure and ~12% of a profiled
GCP create (issue 14). An API server's or a cloud's header block is nearly always plain
``Name: value`` lines, and for those the feed parser's result is fully determined: the header
pairs in order (the name as sent, the value with its leading blanks and line end stripped), an
empty payload and no defects.

:func:`parse_headers` builds exactly that message directly for such a block, and hands anything
else to the standard library's own parser, unchanged: continuation lines, a line without a colon,
an empty name, a bare CR, a ``From`` line, an unterminated block, a multipart or ``message/*``
content type, or a message class other than :class:`http.client.HTTPMessage`. The lines are read by
http.client's own ``_read_headers``, so the line-length and 100-header limits raise the very same
errors (``LineTooLong``, ``HTTPException``). tests/test_httpheaders.py compares both parsers'
messages attribute by attribute on ordinary and odd header blocks.

:func:`install` puts it in place of ``http.client.parse_headers`` (which ``HTTPResponse.begin``
looks up on each response); the controller does it when it is built.
"""

from __future__ import annotations

import email.parser
import http.client
import re
import threading
from email import policy as email_policy
from typing import IO, Any

#: The standard library's parser, kept for the blocks the fast path does not take (and for tests).
stdlib_parse_headers = http.client.parse_headers

#: One plain header line as the feed parser reads it: a name of the characters its ``headerRE``
#: accepts before the colon (printable ASCII but the colon, at least one), the blanks it strips,
#: and a value without CR or LF (the feed parser splits lines at a bare CR too), then the line end.
_PLAIN_LINE = re.compile(r"([!-9;-~]+):[ \t]*([^\r\n]*)\r?\n")
#: Content types for which the feed parser parses the (empty) body as parts: left to it.
_NESTED_TYPES = ("multipart", "message")
_END_OF_HEADERS = (b"\r\n", b"\n")

_installed = False
_install_lock = threading.Lock()


def parse_headers(fp: IO[bytes], _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> Any:
    """:func:`http.client.parse_headers`, without the feed parser for a block of plain lines."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # the limits and their errors
    message = _plain_message(lines, _class)
    if message is not None:
        return message
    return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))


def _plain_message(lines: list[bytes], cls: type[http.client.HTTPMessage]) -> http.client.HTTPMessage | None:
    """The message the feed parser would make of ``lines``, or None if they are not all plain."""
    if cls is not http.client.HTTPMessage or lines[-1] not in _END_OF_HEADERS:
        return None
    headers: list[tuple[str, str]] = []
    match = _PLAIN_LINE.fullmatch
    for raw in lines[:-1]:
        found = match(raw.decode("iso-8859-1"))
        if found is None:
            return None
        name, value = found.groups()
        if name.lower() == "content-type" and value.lstrip().lower().startswith(_NESTED_TYPES):
            return None
        headers.append((name, value))
    message = cls(policy=email_policy.compat32)
    message._headers = headers  # type: ignore[attr-defined]  # what Message.set_raw appends to
    message.set_payload("")  # the feed parser's payload of a body-less block
    return message


def install() -> None:
    """Make :func:`parse_headers` the process's ``http.client.parse_headers`` (idempotent)."""
    global _installed
    with _install_lock:
        if not _installed:
            http.client.parse_headers = parse_headers  # type: ignore[assignment]
            _installed = True


def uninstall() -> None:
    """Put the standard library's parser back (tests)."""
    global _installed
    with _install_lock:
        http.client.parse_headers = stdlib_parse_headers
        _installed = False
