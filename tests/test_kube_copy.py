"""lbprov.sandbox.kube_copy.clone: a deep copy of API objects (marshal), deepcopy for anything else."""

from __future__ import annotations

import datetime

from lbprov.sandbox.kube_copy import clone


def test_clone_is_a_deep_copy_that_keeps_values_and_key_order() -> None:
    obj = {
        "metadata": {"name": "web", "labels": {"b": "2", "a": "1"}, "finalizers": ["x/y"]},
        "spec": {"ports": [{"port": 80, "nodePort": 30080}], "ratio": 0.5, "on": True, "none": None},
    }
    copied = clone(obj)
    assert copied == obj and list(copied["metadata"]["labels"]) == ["b", "a"]
    copied["metadata"]["labels"]["c"] = "3"
    copied["spec"]["ports"][0]["port"] = 81
    copied["metadata"]["finalizers"].append("z")
    assert obj["metadata"]["labels"] == {"b": "2", "a": "1"}
    assert obj["spec"]["ports"][0]["port"] == 80 and obj["metadata"]["finalizers"] == ["x/y"]


def test_clone_falls_back_to_deepcopy_for_what_is_not_json_data() -> None:
    stamp = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    obj = {"when": stamp, "items": [{"a": 1}]}
    copied = clone(obj)
    assert copied == obj and copied["items"][0] is not obj["items"][0]
