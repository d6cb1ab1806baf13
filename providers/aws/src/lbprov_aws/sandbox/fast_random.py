"""moto's random identifiers drawn without two Python calls per character, from the same stream.

Why: every answer of moto carries a 52-character request ID (``get_random_string(52)``), and each
created resource an ID or ARN suffix (``get_random_hex``): about 87 characters per request of the
scale bench's create, each one ``Random.choice`` -> ``_randbelow`` -> ``getrandbits`` (a profile of
the bench's emulator counted 190,000 ``choice`` calls for 2,180 requests). Measured with
``timeit`` on the loaded bench machine: a request ID took 39 us with moto's method and 7.7 us with
this one; a 16-character hex suffix (ARNs; moto's pool of 16 rejects half its 5-bit draws and
calls ``str()`` per character) 83 us and 8.8 us: about 0.1 ms of a create request's 1.5-2 ms.

:func:`install` replaces ``MotoRandom.get_random_string`` and ``get_random_hex`` with loops that
call ``getrandbits`` as ``choice`` does: for a pool of n characters, ``k = n.bit_length()`` bits per
draw, drawn again while the value is n or more (CPython's ``_randbelow_with_getrandbits``, which
``Random`` uses for a subclass that does not override ``random()``, as ``MotoRandom`` does not). So
the characters, and the generator's state after them, are those moto's own methods give (and
EC2's ``random_resource_id``, which draws the same pool, goes through ``get_random_hex``): a seeded
moto (``/moto-api/seed``) still makes the same identifiers. If ``MotoRandom`` ever draws through
another ``_randbelow``, nothing is patched.

tests/test_sandbox_fast_random.py compares both methods' output and the generator's state after
them with moto's, from the same seeds. ``LBPROV_SANDBOX_STOCK_MOTO=1`` keeps moto's own methods.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from typing import Any

#: moto's own methods (set by :func:`install`), for the tests that compare.
ORIGINAL: dict[str, Any] = {}
_LETTERS = string.ascii_letters
_LETTERS_DIGITS = string.ascii_letters + string.digits


def get_random_string(
    self: Any, length: int = 20, include_digits: bool = True, lower_case: bool = False
) -> str:
    """``MotoRandom.get_random_string``: ``length`` characters of the pool, as ``choice`` draws them."""
    pool = _LETTERS_DIGITS if include_digits else _LETTERS
    text = _draw(self.getrandbits, pool, length)
    return text.lower() if lower_case else text


def _draw(getrandbits: Any, pool: Sequence[str], length: int) -> str:
    """``length`` items of ``pool`` joined, each as ``random.choice`` draws one: ``getrandbits`` of
    the pool size's bit length, drawn again while out of range."""
    size = len(pool)
    bits = size.bit_length()
    out = []
    for _ in range(length):
        r = getrandbits(bits)
        while r >= size:
            r = getrandbits(bits)
        out.append(pool[r])
    return "".join(out)


def _hex_maker(hex_chars: list[Any]) -> Any:
    names = [str(c) for c in hex_chars]  # moto joins str() of each (its pool mixes ints and letters)

    def get_random_hex(self: Any, length: int = 8) -> str:
        """``MotoRandom.get_random_hex``: ``length`` of moto's hex characters, as ``choice`` draws them."""
        return _draw(self.getrandbits, names, length)

    return get_random_hex


def install() -> bool:
    """Patch ``MotoRandom`` (once per process) if it draws as this module assumes."""
    from moto.moto_api._internal.moto_random import HEX_CHARS, MotoRandom

    if ORIGINAL:
        return True
    if (
        MotoRandom._randbelow is not random.Random._randbelow_with_getrandbits  # type: ignore[attr-defined]
        or MotoRandom.choice is not random.Random.choice
    ):
        return False
    ORIGINAL.update(get_random_string=MotoRandom.get_random_string, get_random_hex=MotoRandom.get_random_hex)
    MotoRandom.get_random_string = get_random_string  # type: ignore[method-assign]
    MotoRandom.get_random_hex = _hex_maker(HEX_CHARS)  # type: ignore[method-assign]
    _install_ec2_ids()
    return True


def _install_ec2_ids() -> None:
    """EC2's IDs (``sg-``, ``sgr-``, ``i-``... ``random_resource_id``) draw ``choice`` over
    ``'0'..'9', 'a'..'f'`` from moto's generator: the pool of ``get_random_hex`` in the same order,
    so ``get_random_hex(size)`` on that generator gives the same characters from the same state."""
    from moto.ec2 import utils
    from moto.moto_api._internal import mock_random as source  # what ec2/utils.py draws from
    from moto.moto_api._internal.moto_random import HEX_CHARS

    if [str(c) for c in HEX_CHARS] != list(utils.HEX_CHARS):
        return
    ORIGINAL["random_resource_id"] = utils.random_resource_id

    def random_resource_id(size: int = 8) -> str:
        return str(source.get_random_hex(size))

    utils.random_resource_id = random_resource_id
