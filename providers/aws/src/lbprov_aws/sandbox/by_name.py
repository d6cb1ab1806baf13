"""moto's load balancers and target groups by ARN, with an index by name kept beside them.

Why: the strict layer asks "is there a load balancer / target group of this name?" on every
``CreateLoadBalancer`` and ``CreateTargetGroup`` (AWS's name rules and its "at most once"
idempotence, strict.py), and looks the new one up by name after the create; each asked it with a
pass over every balancer or group of the region. moto keeps them in an ``OrderedDict`` by ARN, so
those passes grew with the load balancers the sandbox holds: in a 1,000-Service create, the server's
CPU per ``CreateLoadBalancer`` went from 2.2 ms over the first 250 to 3.5 ms over the last 250.

:class:`ByName` is that ``OrderedDict`` (same keys, values and order; moto's code reads and writes it
as before) which also keeps, per name, the ARNs holding that name in the dict's order. Names are
fixed once a resource exists (neither AWS nor moto renames a load balancer or a target group), and
an object stored under a key is read for its name when it is stored. :func:`first` / :func:`last`
answer what a pass in the dict's order answers (the first or last value whose ``name`` is the
given one); on any other mapping (a backend made before :func:`install`, not one of ours) they make
that pass.

Two of moto's own create paths pass over every target group: ``create_target_group`` for a
namesake, ``create_listener`` (``_validate_actions``) for the ARNs its actions forward to. Rather
than copy those methods, :func:`narrowed` makes ``values()`` of one :class:`ByName`, *in the calling
thread and for the length of the call*, yield only the values such a pass can stop at (the
namesakes; the forwarded ARNs' groups): the same outcome, and every other thread (moto answers reads
beside a create) still sees every value.

tests/test_sandbox_by_name.py compares every answer with the pass, through moto's own writes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping, ValuesView
from contextlib import contextmanager
from typing import Any

_MISSING = object()
_INSTALLED: dict[str, bool] = {}
#: Per thread: (the ByName, the values its ``values()`` yields) while :func:`narrowed` holds.
_NARROWED = threading.local()


class ByName(OrderedDict[str, Any]):
    """An ``OrderedDict`` of named objects that also indexes its keys by each value's ``name``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: name -> the keys holding a value of that name, in the dict's order
        self.named: dict[Any, dict[str, None]] = {}
        super().__init__(*args, **kwargs)

    def _unindex(self, key: str, value: Any) -> None:
        name = getattr(value, "name", None)
        keys = self.named.get(name)
        if keys is not None:
            keys.pop(key, None)
            if not keys:
                del self.named[name]

    def __setitem__(self, key: str, value: Any) -> None:
        old = self.get(key, _MISSING)
        if old is not _MISSING:
            if getattr(old, "name", None) == getattr(value, "name", None):
                super().__setitem__(key, value)  # same place in the dict and in the index
                return
            self._unindex(key, old)
            super().__setitem__(key, value)  # the key keeps its place in the dict: re-sort its name
            self._index_in_order(getattr(value, "name", None), key)
            return
        super().__setitem__(key, value)
        self.named.setdefault(getattr(value, "name", None), {})[key] = None

    def _index_in_order(self, name: Any, key: str) -> None:
        keys = self.named.setdefault(name, {})
        keys[key] = None
        if len(keys) > 1:
            self.named[name] = {k: None for k in self if k in keys}

    def __delitem__(self, key: str) -> None:
        value = self[key]
        super().__delitem__(key)
        self._unindex(key, value)

    def pop(self, key: str, default: Any = _MISSING) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def popitem(self, last: bool = True) -> tuple[str, Any]:
        key, value = super().popitem(last)
        self._unindex(key, value)
        return key, value

    def clear(self) -> None:
        super().clear()
        self.named.clear()

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def values(self) -> ValuesView[Any]:  # type: ignore[override]
        narrowed = getattr(_NARROWED, "held", None)
        if narrowed is not None and narrowed[0] is self:
            return narrowed[1]  # type: ignore[no-any-return]
        return super().values()

    def move_to_end(self, key: str, last: bool = True) -> None:
        super().move_to_end(key, last)
        self._index_in_order(getattr(self[key], "name", None), key)


def _named(objects: Mapping[str, Any], name: str) -> list[Any]:
    """The values of that name, in order. moto's server threads read while another writes (creates
    run one at a time, reads beside them): ``list()`` of a dict copies it without yielding the GIL,
    and a key whose value has just been deleted is skipped, as a pass over a copy would not see it."""
    if isinstance(objects, ByName):
        keys = objects.named.get(name)
        if not keys:
            return []
        found = [objects.get(k, _MISSING) for k in list(keys)]
        return [obj for obj in found if obj is not _MISSING]
    return [obj for obj in list(objects.values()) if obj.name == name]


@contextmanager
def narrowed(objects: Mapping[str, Any], *, name: str | None = None, keys: Any = ()) -> Iterator[None]:
    """For the calling thread, until the block ends: ``objects.values()`` yields only the values
    named ``name`` (when given) or stored under one of ``keys``, in the dict's order. Nothing
    changes for another mapping than a :class:`ByName`, or on another thread."""
    if not isinstance(objects, ByName):
        yield
        return
    if name is not None:
        only = _named(objects, name)
    else:
        present = {k for k in keys if k in objects}
        # one key (a listener's forward action) needs no order; several: the dict's, by a pass
        ordered = list(present) if len(present) <= 1 else [k for k in list(objects) if k in present]
        found = [objects.get(k, _MISSING) for k in ordered]
        only = [v for v in found if v is not _MISSING]
    previous = getattr(_NARROWED, "held", None)
    _NARROWED.held = (objects, only)
    try:
        yield
    finally:
        _NARROWED.held = previous


def first(objects: Mapping[str, Any], name: str) -> Any:
    """The first value of ``objects`` (in its order) whose ``name`` is ``name``, or None."""
    found = _named(objects, name)
    return found[0] if found else None


def last(objects: Mapping[str, Any], name: str) -> Any:
    """The last value of ``objects`` (in its order) whose ``name`` is ``name``, or None."""
    found = _named(objects, name)
    return found[-1] if found else None


def install() -> None:
    """Make every ELBv2 backend created from now on (and on each reset) keep its load balancers
    and target groups in :class:`ByName` dicts."""
    if _INSTALLED.get("done"):
        return
    from moto.elbv2.models import ELBv2Backend

    original = ELBv2Backend.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.load_balancers = ByName(self.load_balancers)
        self.target_groups = ByName(self.target_groups)

    ELBv2Backend.__init__ = __init__  # type: ignore[method-assign]
    _INSTALLED["done"] = True
