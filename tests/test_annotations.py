"""Shared annotation readers: the errors name the annotation and the accepted values."""

from __future__ import annotations

import pytest

from lbprov.annotations import annotation_field, get_bool, get_int, get_pairs
from lbprov.model import InvalidService

KEY = "example.com/knob"


def test_bool_follows_go_parse_bool_with_default() -> None:
    assert get_bool({KEY: "True"}, KEY, False) is True
    assert get_bool({KEY: " 0 "}, KEY, True) is False
    assert get_bool({}, KEY, True) is True
    with pytest.raises(InvalidService, match="accepted values: true, false") as info:
        get_bool({KEY: "yes"}, KEY, False)
    assert info.value.field == annotation_field(KEY) == f"metadata.annotations[{KEY}]"


@pytest.mark.parametrize("raw", ["1_000", "+5", "5.0", "", "ten"])
def test_int_rejects_what_is_not_a_plain_integer(raw: str) -> None:
    with pytest.raises(InvalidService, match="not an integer; accepted values: an integer 4-100"):
        get_int({KEY: raw}, KEY, 4, 100)


def test_int_range_and_absence() -> None:
    assert get_int({KEY: "30"}, KEY, 4, 100, unit="minutes") == 30
    assert get_int({}, KEY, 4, 100) is None
    with pytest.raises(
        InvalidService, match=r"-1 is out of range; accepted values: an integer 4-100 \(minutes\)"
    ):
        get_int({KEY: "-1"}, KEY, 4, 100, unit="minutes")


def test_pairs_are_sorted_trimmed_and_last_wins() -> None:
    assert get_pairs({KEY: " b=2, a=1,,a=3 , c="}, KEY) == (("a", "3"), ("b", "2"), ("c", ""))
    assert get_pairs({}, KEY) == ()


@pytest.mark.parametrize(("raw", "words"), [("novalue", "is not key=value"), ("=v", "has an empty key")])
def test_pairs_errors_name_the_item(raw: str, words: str) -> None:
    with pytest.raises(InvalidService, match=words):
        get_pairs({KEY: raw}, KEY, "team=web")
