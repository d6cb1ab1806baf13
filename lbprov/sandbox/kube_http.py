"""The request head of the sandbox API server, parsed without the :mod:`email` package.

``http.server`` parses every request's header block with ``email.parser`` (a feed parser built for
MIME messages: it builds a ``Message``, scans for multipart, and every ``headers.get()`` walks and
lower-cases all the headers again). For the API server that was a tenth of its CPU per request.
:func:`parse_request` does what ``BaseHTTPRequestHandler.parse_request`` does (Python 3.11) --
the request line and its version checks, the 431 answers for a header line over 64 KiB or more
than 100 headers, ``Connection`` and ``Expect: 100-continue`` -- with the header fields read as
RFC 9112 section 5 defines them (``name ":" OWS value OWS``; an obsolete folded line continues
the previous value; the first of repeated fields is the one ``get`` returns, as with ``email``).
"""

from __future__ import annotations

from collections.abc import Iterator
from http import HTTPStatus
from typing import Any, Protocol

#: The standard library's limits (``http.client._MAXLINE`` and ``_MAXHEADERS``).
MAX_LINE = 65536
MAX_HEADERS = 100


class Headers:
    """Request header fields, looked up case-insensitively (the first of repeated fields wins)."""

    __slots__ = ("_fields", "_raw")

    def __init__(self, raw: list[tuple[str, str]]) -> None:
        self._raw = raw
        self._fields: dict[str, str] = {}
        for name, value in raw:
            self._fields.setdefault(name.lower(), value)

    def get(self, name: str, default: Any = None) -> Any:
        return self._fields.get(name.lower(), default)

    def __getitem__(self, name: str) -> str | None:
        return self._fields.get(name.lower())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._fields

    def get_all(self, name: str, failobj: Any = None) -> list[str] | Any:
        found = [v for k, v in self._raw if k.lower() == name.lower()]
        return found or failobj

    def items(self) -> list[tuple[str, str]]:
        return list(self._raw)

    def keys(self) -> list[str]:
        return [k for k, _ in self._raw]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._raw)

    def __str__(self) -> str:
        return "".join(f"{k}: {v}\r\n" for k, v in self._raw) + "\r\n"


class HeaderTooLarge(Exception):
    """A header line over :data:`MAX_LINE` bytes, or more than :data:`MAX_HEADERS` fields."""

    def __init__(self, brief: str, detail: str) -> None:
        super().__init__(detail)
        self.brief = brief


class BadHeader(Exception):
    """A header line that is not ``name ":" value`` with a token for a name: RFC 9112 section 5.1
    ("No whitespace is allowed between the field name and colon ... a server MUST reject ... with
    a response status code of 400"), a line without a colon, or a folded line with no field before."""


def read_headers(rfile: Any) -> Headers:
    """The header fields up to the blank line that ends the head (or the end of the stream)."""
    raw: list[tuple[str, str]] = []
    lines = 0
    while True:
        line = rfile.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise HeaderTooLarge("Line too long", f"got more than {MAX_LINE} bytes when reading header line")
        lines += 1
        if lines > MAX_HEADERS:
            raise HeaderTooLarge("Too many headers", f"got more than {MAX_HEADERS} headers")
        if line in (b"\r\n", b"\n", b""):
            return Headers(raw)
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t"):  # obs-fold: a continuation of the previous field's value
            if not raw:
                raise BadHeader(f"a folded header line with no field before it: {text[:80]!r}")
            name, value = raw[-1]
            raw[-1] = (name, f"{value} {text.strip()}".strip())
            continue
        name, sep, value = text.partition(":")
        if not sep or not name or name != name.strip() or " " in name or "\t" in name:
            raise BadHeader(f"malformed header field: {text[:80]!r}")
        raw.append((name, value.strip(" \t")))


class _RequestHandler(Protocol):
    raw_requestline: bytes
    requestline: str
    command: Any
    path: str
    request_version: str
    default_request_version: str
    protocol_version: str
    close_connection: bool
    headers: Any
    rfile: Any

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None: ...

    def handle_expect_100(self) -> bool: ...


def parse_request(handler: _RequestHandler) -> bool:
    """``BaseHTTPRequestHandler.parse_request`` (Python 3.11) with :func:`read_headers`: True when
    the request line and head are good; on failure the error response is already sent."""
    handler.command = None
    handler.request_version = version = handler.default_request_version
    handler.close_connection = True
    requestline = str(handler.raw_requestline, "iso-8859-1").rstrip("\r\n")
    handler.requestline = requestline
    words = requestline.split()
    if not words:
        return False
    if len(words) >= 3:
        version = words[-1]
        try:
            if not version.startswith("HTTP/"):
                raise ValueError
            base_version_number = version.split("/", 1)[1]
            parts = base_version_number.split(".")
            if len(parts) != 2 or any(not p.isdigit() or len(p) > 10 for p in parts):
                raise ValueError
            number = int(parts[0]), int(parts[1])
        except (ValueError, IndexError):
            handler.send_error(HTTPStatus.BAD_REQUEST, f"Bad request version ({version!r})")
            return False
        if number >= (1, 1) and handler.protocol_version >= "HTTP/1.1":
            handler.close_connection = False
        if number >= (2, 0):
            handler.send_error(
                HTTPStatus.HTTP_VERSION_NOT_SUPPORTED, f"Invalid HTTP version ({base_version_number})"
            )
            return False
        handler.request_version = version
    if not 2 <= len(words) <= 3:
        handler.send_error(HTTPStatus.BAD_REQUEST, f"Bad request syntax ({requestline!r})")
        return False
    command, path = words[:2]
    if len(words) == 2:
        handler.close_connection = True
        if command != "GET":
            handler.send_error(HTTPStatus.BAD_REQUEST, f"Bad HTTP/0.9 request type ({command!r})")
            return False
    handler.command, handler.path = command, path
    if handler.path.startswith("//"):  # gh-87389: no open redirect through a scheme-less URI
        handler.path = "/" + handler.path.lstrip("/")
    try:
        handler.headers = read_headers(handler.rfile)
    except HeaderTooLarge as err:
        handler.send_error(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, err.brief, str(err))
        return False
    except BadHeader as err:
        handler.send_error(HTTPStatus.BAD_REQUEST, "Bad header", str(err))
        return False
    conntype = (handler.headers.get("Connection") or "").lower()
    if conntype == "close":
        handler.close_connection = True
    elif conntype == "keep-alive" and handler.protocol_version >= "HTTP/1.1":
        handler.close_connection = False
    expect = (handler.headers.get("Expect") or "").lower()
    if (
        expect == "100-continue"
        and handler.protocol_version >= "HTTP/1.1"
        and handler.request_version >= "HTTP/1.1"
    ):
        return handler.handle_expect_100()
    return True
