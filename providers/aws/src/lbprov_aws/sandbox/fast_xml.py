"""moto's XML writer, without its per-element overhead: ``xmltodict.unparse`` for the shapes moto emits.

Why: every query-protocol answer of moto (EC2, ELBv2, ELB) is a dict that moto's serializer hands to
``xmltodict.unparse``, which walks it through SAX's ``XMLGenerator``: a keyword-heavy ``_emit`` call,
an ``AttributesImpl`` and a name validation (a generator over every character) per element. A CPU
profile of the scale bench's emulator (300 creates and one added node) put ``unparse`` at 16% of
moto's CPU (cProfile overstates call-heavy code; without it, a hot write's whole serialization is
0.03-0.49 ms of a 1.4-2.1 ms request). :func:`unparse` writes the same text into one list: the same
elements, attributes, escaping (``saxutils.escape``/``quoteattr``), empty-element form (``<a/>``
when nothing was written inside, with ``short_empty_elements``) and document prolog, with each
element name validated once per process by xmltodict's own ``_validate_name``.

What it does not handle it leaves to xmltodict, before writing anything: pretty printing, any option
other than ``full_document``/``short_empty_elements``/``encoding``, comments, namespace dicts
(``@xmlns`` given a dict), an iterable value other than a list or tuple (a generator would be
consumed), a name xmltodict refuses, several roots. Then the whole input goes to
``xmltodict.unparse``, which answers or raises as it always does.

tests/test_sandbox_fast_xml.py compares the text with xmltodict's for the answers of a sandbox run
and for seeded random documents; ``at_scale.install`` wires it in (``LBPROV_SANDBOX_STOCK_MOTO=1``
keeps moto's own writer).
"""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape, quoteattr

import xmltodict  # type: ignore[import-untyped]

_CDATA = "#text"
_ATTR = "@"
_COMMENT = "#comment"
_HANDLED = frozenset({"full_document", "short_empty_elements", "pretty", "encoding"})
#: Names xmltodict's ``_validate_name`` accepted (the same few hundred names recur in every answer).
_VALID: set[str] = set()


class _Unhandled(Exception):
    """The input needs xmltodict itself (see the module docstring); nothing is written yet."""


def _valid(name: Any) -> str:
    if name in _VALID:
        return name  # type: ignore[no-any-return]
    if not isinstance(name, str) or name == _COMMENT:
        raise _Unhandled
    try:
        xmltodict._validate_name(name, "element")  # the rules are the same for attributes
    except ValueError:
        raise _Unhandled from None
    _VALID.add(name)
    return name


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return xmltodict._convert_value_to_string(value)  # type: ignore[no-any-return]


class _Writer:
    """``XMLGenerator`` with ``short_empty_elements``: the start tag is closed by the next write."""

    __slots__ = ("out", "pending", "short")

    def __init__(self, short: bool) -> None:
        self.out: list[str] = []
        self.short = short
        self.pending = False

    def emit(self, key: Any, value: Any, depth: int, full_document: bool) -> None:
        """xmltodict's ``_emit`` with its default options (no preprocessor, namespaces, pretty)."""
        name = _valid(key)
        if isinstance(value, (list, tuple)):
            items: Any = value
        elif isinstance(value, (str, bytes, bytearray, memoryview, dict)) or not hasattr(value, "__iter__"):
            items = (value,)
        else:
            raise _Unhandled  # a set, a generator...: xmltodict's iteration, not consumed here
        out = self.out
        for index, item in enumerate(items):
            if full_document and depth == 0 and index > 0:
                raise _Unhandled  # xmltodict: "document with multiple roots"
            if item is None:
                item = {}
            elif isinstance(item, str):
                item = {_CDATA: item}
            elif not isinstance(item, dict):
                item = {_CDATA: _text(item)}
            cdata = None
            attrs: list[str] = []
            children: list[tuple[Any, Any]] = []
            for ik, iv in item.items():
                if ik == _CDATA:
                    cdata = None if iv is None else _text(iv)
                elif isinstance(ik, str) and ik.startswith(_ATTR):
                    if ik == "@xmlns" and isinstance(iv, dict):
                        raise _Unhandled
                    attr = _valid(ik[1:])
                    attrs.append(f" {attr}={quoteattr('' if iv is None else _text(iv))}")
                elif not (isinstance(iv, list) and not iv):
                    children.append((ik, iv))
            if self.pending:
                out.append(">")
            out.append("<" + name)
            if attrs:
                out.extend(attrs)
            if self.short:
                self.pending = True
            else:
                out.append(">")
            for child_key, child_value in children:
                self.emit(child_key, child_value, depth + 1, full_document)
            if cdata:
                if self.pending:
                    out.append(">")
                    self.pending = False
                out.append(escape(cdata))
            if self.pending:
                out.append("/>")
                self.pending = False
            else:
                out.append(f"</{name}>")


def fast_unparse(input_dict: Any, **kwargs: Any) -> str | None:
    """The text ``xmltodict.unparse(input_dict, **kwargs)`` returns, or None for what it must do itself."""
    encoding = kwargs.get("encoding", "utf-8")
    if kwargs.get("pretty") or not _HANDLED.issuperset(kwargs) or not isinstance(encoding, str):
        return None
    if encoding.lower().replace("-", "").replace("_", "") != "utf8":
        return None  # bytes values are decoded with the document's encoding: xmltodict's own work
    if not isinstance(input_dict, dict):
        return None
    full_document = kwargs.get("full_document", True)
    writer = _Writer(bool(kwargs.get("short_empty_elements", False)))
    try:
        if full_document:
            if len(input_dict) != 1:
                raise _Unhandled  # xmltodict: "Document must have exactly one root."
            writer.out.append(f'<?xml version="1.0" encoding="{encoding}"?>\n')
        for key, value in input_dict.items():
            writer.emit(key, value, 0, full_document)
    except _Unhandled:
        return None
    return "".join(writer.out)


def unparse(input_dict: Any, output: Any = None, **kwargs: Any) -> Any:
    """``xmltodict.unparse`` (same arguments, same answer): :func:`fast_unparse` when it can."""
    text = None if output is not None else fast_unparse(input_dict, **kwargs)
    return xmltodict.unparse(input_dict, output, **kwargs) if text is None else text


class FastXmlToDict:
    """Stands for the ``xmltodict`` module in ``moto.core.serialize``: :func:`unparse`, the rest as is."""

    unparse = staticmethod(unparse)

    def __getattr__(self, name: str) -> Any:
        return getattr(xmltodict, name)
