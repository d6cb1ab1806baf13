"""Manifest loading for ``lbprov plan -f``: files, directories, stdin, multi-doc YAML, Lists, errors."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from lbprov import manifests
from lbprov.manifests import ManifestError


def svc(name: str, **meta: object) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, **meta},
        "spec": {"type": "LoadBalancer"},
    }


def test_multi_document_yaml_with_lists_and_empty_documents(tmp_path: Path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text(
        yaml.safe_dump(svc("one"))
        + "---\n"
        + yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [svc("two"), {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}],
            }
        )
        + "---\n"
        + yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}})
        + "---\n"
    )
    found = manifests.load([str(f)])
    assert [s["metadata"]["name"] for s in found.services] == ["one", "two"]
    assert [n["metadata"]["name"] for n in found.nodes] == ["n1"]
    assert found.skipped == ["Deployment/web"]


def test_kubectl_get_list_items_without_kind_take_it_from_the_list(tmp_path: Path) -> None:
    f = tmp_path / "svcs.json"
    f.write_text(
        '{"apiVersion": "v1", "kind": "ServiceList", "items": [{"metadata": {"name": "a"}, "spec": {}}]}'
    )
    found = manifests.load([str(f)])
    assert found.services[0]["kind"] == "Service" and found.services[0]["metadata"]["name"] == "a"


def test_directory_is_read_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.yml").write_text(yaml.safe_dump(svc("b")))
    (tmp_path / "sub" / "a.json").write_text(
        '{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}}'
    )
    (tmp_path / "README.md").write_text("not a manifest")
    found = manifests.load([str(tmp_path)])
    assert [s["metadata"]["name"] for s in found.services] == ["b", "c"]


def test_stdin() -> None:
    found = manifests.load(["-"], stdin=io.StringIO(yaml.safe_dump(svc("x"))))
    assert found.services[0]["metadata"]["name"] == "x"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("kind: [unclosed", "not valid YAML/JSON at line 1"),
        ("- a\n- b\n", "expected a Kubernetes object (a mapping with apiVersion and kind), got list"),
        ("just a string\n", "got str"),
        ("apiVersion: v1\nmetadata: {name: x}\n", "not a Kubernetes object: it has no 'kind'"),
        ("apiVersion: v1\nkind: Service\nmetadata: {}\n", "a Service without metadata.name"),
        ("apiVersion: v1\nkind: List\nitems: [3]\n", "item 0: expected a Kubernetes object"),
    ],
)
def test_bad_documents_name_the_file_and_the_problem(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    with pytest.raises(ManifestError, match=r"bad\.yaml") as info:
        manifests.load([str(f)])
    assert message in str(info.value)


def test_second_document_is_named(tmp_path: Path) -> None:
    f = tmp_path / "m.yaml"
    f.write_text(yaml.safe_dump(svc("ok")) + "---\n- nope\n")
    with pytest.raises(ManifestError, match=r"m.yaml document 2: expected a Kubernetes object"):
        manifests.load([str(f)])


def test_missing_file_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file or directory"):
        manifests.load([str(tmp_path / "nope.yaml")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="holds no"):
        manifests.load([str(tmp_path / "empty")])


def test_defaults_namespace_and_placeholder_uid_but_keep_real_ones() -> None:
    real = svc("real", namespace="prod", uid="1234")
    made = manifests.with_defaults([svc("web"), real], namespace=None)
    assert made[0]["metadata"]["namespace"] == "default"
    assert made[0]["metadata"]["uid"] == manifests.placeholder_uid("default", "web")
    assert manifests.has_placeholder_uid(made[0])
    assert made[1]["metadata"]["uid"] == "1234" and not manifests.has_placeholder_uid(made[1])
    assert manifests.with_defaults([svc("web")], namespace="shop")[0]["metadata"]["namespace"] == "shop"
    assert manifests.placeholder_uid("a", "b") != manifests.placeholder_uid("a", "c")


def test_missing_node_ports_message() -> None:
    s = {"spec": {"ports": [{"port": 80, "nodePort": 30080}, {"port": 81}], "externalTrafficPolicy": "Local"}}
    why = manifests.missing_node_ports(s)
    assert why is not None and why.startswith("spec.ports[1].nodePort, spec.healthCheckNodePort not set")
    assert manifests.missing_node_ports({"spec": {"ports": [{"port": 80, "nodePort": 1}]}}) is None
