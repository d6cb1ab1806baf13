"""moto's random identifiers drawn by the sandbox (sandbox/fast_random.py): the same characters as
moto's own methods from the same seed, and the generator left in the same state."""

from __future__ import annotations

import pytest
from lbprov_aws.sandbox import at_scale, fast_random
from moto.moto_api._internal.moto_random import MotoRandom


@pytest.mark.parametrize("seed", [0, 14, 2026])
def test_the_identifiers_and_the_stream_are_moto_s(seed: int) -> None:
    at_scale.install()
    assert fast_random.ORIGINAL, "MotoRandom draws through choice/_randbelow_with_getrandbits"
    ours, theirs = MotoRandom(seed), MotoRandom(seed)
    calls = [
        ("get_random_string", {"length": 52}),
        ("get_random_hex", {"length": 16}),
        ("get_random_string", {}),
        ("get_random_string", {"length": 7, "include_digits": False}),
        ("get_random_string", {"length": 9, "lower_case": True}),
        ("get_random_hex", {}),
        ("get_random_hex", {"length": 0}),
        ("get_random_string", {"length": 1}),
    ]
    for _ in range(50):
        for name, kwargs in calls:
            mine = getattr(ours, name)(**kwargs)
            own = fast_random.ORIGINAL[name](theirs, **kwargs)
            assert mine == own, (name, kwargs)
        assert ours.getstate() == theirs.getstate()  # the same draws were made
    assert ours.random() == theirs.random()


def test_ec2_ids_are_moto_s() -> None:
    at_scale.install()
    from moto.ec2 import utils
    from moto.moto_api._internal import mock_random

    assert "random_resource_id" in fast_random.ORIGINAL
    for size in (8, 17, 4, 0):
        mock_random.seed(size)
        mine = [utils.random_id("sg", size), utils.random_resource_id(size)]
        state = mock_random.getstate()
        mock_random.seed(size)
        own = [
            f"sg-{fast_random.ORIGINAL['random_resource_id'](size)}",
            fast_random.ORIGINAL["random_resource_id"](size),
        ]
        assert mine == own and mock_random.getstate() == state, size
    mock_random.seed()  # back to an unseeded generator for the other tests
