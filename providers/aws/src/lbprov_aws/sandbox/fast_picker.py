"""moto's attribute picker with its per-member work done once: which attribute names to try, which
response transformer applies.

Why: moto's serializer asks ``ResponseSerializer.get_value`` for every member of every shape of an
answer (about 40 per answer at 300 creates). Each call builds an ``AttributePickerContext`` (with the
member's path joined into a string), instantiates six alias providers to list the attribute names
to try (``XFormedAttributePicker.get_possible_keys``: each alias and its ``xform_name``), then
tests the path against every response transformer of the service with ``str.endswith``. A CPU
profile of the scale bench's emulator put that at 15% of moto's CPU (cProfile overstates it; the
README's sandbox section has the figures without the profiler).

:func:`get_value` gives the same value with two caches:

* **the names to try**: what the alias providers answer depends on the member's name, its shape
  (name, type, serialization name), the shape's parent structure (name, members) and the object's
  class name -- except ``ExplicitAlias``, which reads the object's ``Meta.serialization_aliases`` and
  is asked on every call as moto does. The rest is computed by moto's own providers on the first
  call for (name, shape, parent, class) and kept with strong references to those objects, so their
  ids stay theirs. If a provider raises, that call is moto's own (nothing is kept).
* **the transformer**: the first key of ``RESPONSE_KEY_PATH_TO_TRANSFORMER`` the member's path ends
  with, per path, for that dict at its current length. moto only ever assigns into these dicts
  (``_include_in_response``/``_exclude_from_response``); an assignment to an existing key keeps the
  order of the keys, a new key changes the length. The function is read from the dict on every call.

Only the picker moto builds for every answer (``XFormedAttributePicker`` over
``DEFAULT_ALIAS_PROVIDERS``, as of moto 5.2) takes this path; any other is moto's own.
tests/test_sandbox_fast_picker.py compares every value of a Service lifecycle with moto's.
"""

from __future__ import annotations

from typing import Any

from botocore import xform_name  # type: ignore[import-untyped]  # what moto.core.serialize uses
from moto.core import serialize
from moto.core.utils import get_value as pick

_KEYS: dict[tuple[str, int, int, type], tuple[Any, ...]] = {}
_TRANSFORM: dict[tuple[int, int, str], tuple[Any, str | None]] = {}
_MISSING = object()
#: moto's own ``ResponseSerializer.get_value`` (set by :func:`install`).
ORIGINAL: dict[str, Any] = {}


def _rest_of_keys(obj: Any, key: str, shape: Any) -> tuple[str, ...] | None:
    """The names moto's alias providers after ``ExplicitAlias`` give, in order; None if one raises."""
    parent = getattr(shape, "parent", _MISSING)
    cache_key = (key, id(shape), id(parent), obj.__class__)
    found = _KEYS.get(cache_key)
    if found is not None:
        return found[0]  # type: ignore[no-any-return]
    context = serialize.AttributePickerContext(obj=obj, key=key, shape=shape)
    names: list[str] = []
    try:
        for provider_cls in serialize.DEFAULT_ALIAS_PROVIDERS[1:]:
            provider = provider_cls(context)  # type: ignore[abstract]  # the concrete providers
            if provider.has_alias(key):
                alias = provider.get_alias(key)
                names.extend((alias, xform_name(alias)))
    except Exception:  # a provider's own error: moto's path raises it (or not) as it always does
        return None
    rest = tuple(names)
    _KEYS[cache_key] = (rest, shape, parent, obj.__class__)  # the objects keep their ids
    return rest


def _transformer(transformers: dict[str, Any], key_path: str) -> str | None:
    """The first key of ``transformers`` that ``key_path`` ends with (moto's loop), per dict state."""
    cache_key = (id(transformers), len(transformers), key_path)
    found = _TRANSFORM.get(cache_key)
    if found is not None and found[0] is transformers:
        return found[1]
    match = next((path for path in transformers if key_path.endswith(path)), None)
    _TRANSFORM[cache_key] = (transformers, match)
    return match


def get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
    """``ResponseSerializer.get_value``: the same value, without re-deriving names and transformer."""
    picker = self._value_picker
    if type(picker) is not serialize.XFormedAttributePicker or picker.alias_providers is not _DEFAULTS[0]:
        return ORIGINAL["get_value"](self, value, key, shape)
    rest = _rest_of_keys(value, key, shape)
    if rest is None:
        return ORIGINAL["get_value"](self, value, key, shape)
    # ExplicitAlias, as moto asks it on every call
    if (
        hasattr(value, "Meta")
        and hasattr(value.Meta, "serialization_aliases")
        and key in value.Meta.serialization_aliases
    ):
        alias = value.Meta.serialization_aliases[key]
        names: tuple[str, ...] = (alias, xform_name(alias), *rest)
    else:
        names = rest
    result = _MISSING
    for name in names:
        result = pick(value, name, _MISSING)
        if result is not _MISSING:
            break
    if result is _MISSING:
        result = None
    transformers = picker.response_transformers
    if transformers:
        path = _transformer(transformers, ".".join(self.path) + "." + key)
        if path is not None:
            result = transformers[path](result)
    return result


#: ``DEFAULT_ALIAS_PROVIDERS`` as :func:`install` found it (the list object pickers default to).
_DEFAULTS: list[Any] = []
#: The providers this module's cache is exact for (moto 5.2's list, in its order).
_EXPECTED = (
    "ExplicitAlias",
    "ShapeNameAlias",
    "NoAlias",
    "ShapePrefixAlias",
    "ClassPrefixAlias",
    "ModelAlias",
)


def install() -> bool:
    """Patch ``ResponseSerializer.get_value`` if moto's providers are the ones this cache knows."""
    providers = serialize.DEFAULT_ALIAS_PROVIDERS
    if tuple(p.__name__ for p in providers) != _EXPECTED:
        return False
    if not ORIGINAL:
        ORIGINAL["get_value"] = serialize.ResponseSerializer.get_value
        _DEFAULTS.append(providers)
        serialize.ResponseSerializer.get_value = get_value  # type: ignore[method-assign]
    return True
