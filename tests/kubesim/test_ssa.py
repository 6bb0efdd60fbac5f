"""Server-side apply and managedFields, against kube-apiserver's (structured-merge-diff)
behaviour."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesim import ssa
from kubesim.ssa import ApplyConflict, ListType

CRDS = Path(__file__).resolve().parents[2] / "kubesim" / "crds"
KS_VERSION = "kustomize.toolkit.fluxcd.io/v1"
T0, T1, T2, T3 = (f"2025-01-01T00:00:0{i}Z" for i in range(4))
BUILTIN = ssa.type_info_from_schema(None)


def _crd_schema(name: str) -> dict[str, Any]:
    crd = yaml.safe_load((CRDS / name).read_text())
    schema: dict[str, Any] = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")[
        "schema"
    ]["openAPIV3Schema"]
    return schema


KUSTOMIZATION = ssa.type_info_from_schema(
    _crd_schema("kustomize.toolkit.fluxcd.io_kustomizations.yaml")
)


def configmap(data: dict[str, str], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "env", "namespace": "kollie", **meta},
        "data": data,
    }


def kustomization(tag: str = "main-abc1234-1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": KS_VERSION,
        "kind": "Kustomization",
        "metadata": {
            "name": "pr-1-web",
            "namespace": "kollie",
            "labels": {"app.kubernetes.io/managed-by": "kollie", "kollie.io/environment": "pr-1"},
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "pr-1",
                    "uid": "u-1",
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "interval": "5m",
            "path": "./apps/web",
            "prune": True,
            "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            "postBuild": {"substitute": {"environment": "pr-1", "image_tag": tag}},
            **spec,
        },
    }


def apply_cm(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str = "kollie",
    now: str = T0,
    force: bool = False,
) -> dict[str, Any]:
    return ssa.apply(
        live, config, manager=manager, force=force, type_info=BUILTIN, api_version="v1", now=now
    )


def apply_ks(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    manager: str = "kollie",
    now: str = T0,
    force: bool = False,
) -> dict[str, Any]:
    return ssa.apply(
        live,
        config,
        manager=manager,
        force=force,
        type_info=KUSTOMIZATION,
        api_version=KS_VERSION,
        now=now,
    )


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    manager: str,
    now: str = T1,
    *,
    info: ssa.TypeInfo = BUILTIN,
    version: str = "v1",
    subresource: str | None = None,
) -> dict[str, Any]:
    return ssa.record_update(
        old,
        new,
        manager=manager,
        type_info=info,
        api_version=version,
        now=now,
        subresource=subresource,
    )


def managers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])]


def fields(obj: dict[str, Any], manager: str, operation: str = "Apply") -> dict[str, Any]:
    entry = next(
        e
        for e in obj["metadata"]["managedFields"]
        if (e["manager"], e["operation"]) == (manager, operation)
    )
    result: dict[str, Any] = entry["fieldsV1"]
    return result


def test_apply_creates_the_object_owned_by_the_applier() -> None:
    obj = apply_cm(None, configmap({"b": "2", "a": "1"}, labels={"tier": "front"}))
    assert obj["data"] == {"b": "2", "a": "1"}
    assert obj["metadata"]["labels"] == {"tier": "front"}
    [entry] = obj["metadata"]["managedFields"]
    assert entry == {
        "manager": "kollie",
        "operation": "Apply",
        "apiVersion": "v1",
        "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:tier": {}}}},
    }
    # Serialised as the server writes it: fields sorted, name/namespace/apiVersion/kind untracked.
    assert (
        json.dumps(entry["fieldsV1"])
        == '{"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {"f:tier": {}}}}'
    )


def test_reapplying_the_same_configuration_changes_nothing() -> None:
    first = apply_cm(None, configmap({"a": "1"}))
    again = apply_cm(first, configmap({"a": "1"}), now=T1)
    # Not even the entry's time: the server only moves it when the object changed.
    assert again == first
    changed = apply_cm(first, configmap({"a": "2"}), now=T2)
    assert changed["metadata"]["managedFields"][0]["time"] == T2


def test_apply_removes_the_fields_it_no_longer_sets() -> None:
    first = apply_cm(None, configmap({"a": "1", "b": "2"}, labels={"tier": "front"}))
    second = apply_cm(first, configmap({"a": "1"}), now=T1)
    assert second["data"] == {"a": "1"}
    assert "labels" not in second["metadata"]  # a map emptied by the removal goes too
    assert fields(second, "kollie") == {"f:data": {"f:a": {}}}


def test_a_dropped_field_another_manager_also_applies_stays() -> None:
    obj = apply_cm(None, configmap({"a": "1", "b": "2"}))
    obj = apply_cm(obj, configmap({"b": "2"}), manager="other", now=T1)
    assert fields(obj, "other") == {"f:data": {"f:b": {}}}
    assert fields(obj, "kollie") == {
        "f:data": {"f:a": {}, "f:b": {}}
    }  # shared, same value: no conflict
    obj = apply_cm(obj, configmap({"a": "1"}), now=T2)
    assert obj["data"] == {"a": "1", "b": "2"}
    assert fields(obj, "kollie") == {"f:data": {"f:a": {}}}


def test_a_dropped_field_an_updater_changed_stays() -> None:
    obj = apply_cm(None, configmap({"a": "1", "b": "2"}))
    obj = update(obj, {**obj, "data": {"a": "1", "b": "edited"}}, "kubectl-edit")
    assert managers(obj) == [("kollie", "Apply"), ("kubectl-edit", "Update")]
    assert fields(obj, "kollie") == {"f:data": {"f:a": {}}}  # the edit took .data.b
    obj = apply_cm(obj, configmap({"a": "1"}), now=T2)
    assert obj["data"] == {"a": "1", "b": "edited"}


def test_conflict_with_an_updater_names_it_with_its_api_version() -> None:
    obj = apply_cm(None, configmap({"key": "1"}))
    obj = update(obj, {**obj, "data": {"key": "edited"}}, "kubectl-client-side-apply")
    with pytest.raises(ApplyConflict) as caught:
        apply_cm(obj, configmap({"key": "2"}), now=T2)
    error = caught.value
    assert error.conflicts == [("kubectl-client-side-apply", ".data.key")]
    assert error.status_message("v1") == (
        "Apply failed with 1 conflict: "
        'conflict with "kubectl-client-side-apply" using v1: .data.key'
    )
    assert error.causes() == [
        {
            "reason": "FieldManagerConflict",
            "field": ".data.key",
            "message": 'conflict with "kubectl-client-side-apply" using v1',
        }
    ]


def test_several_conflicts_are_grouped_by_manager() -> None:
    obj = apply_cm(None, configmap({"a": "1", "b": "1", "c": "1"}), manager="zeta")
    obj = apply_cm(obj, configmap({"c": "1"}), manager="alpha", now=T1)
    with pytest.raises(ApplyConflict) as caught:
        apply_cm(obj, configmap({"a": "2", "b": "2", "c": "2"}), manager="kollie", now=T2)
    # Apply managers are named without a version; managers in order, each one's fields in order.
    assert caught.value.status_message("v1") == (
        'Apply failed with 4 conflicts: conflicts with "alpha":\n- .data.c\n'
        'conflicts with "zeta":\n- .data.a\n- .data.b\n- .data.c'
    )
    assert [c["message"] for c in caught.value.causes()] == ['conflict with "alpha"'] + [
        'conflict with "zeta"'
    ] * 3


def test_force_takes_the_field_from_its_owner() -> None:
    obj = apply_cm(None, configmap({"a": "1", "b": "1"}), manager="first")
    obj = apply_cm(obj, configmap({"a": "2"}), manager="second", now=T1, force=True)
    assert obj["data"] == {"a": "2", "b": "1"}
    assert fields(obj, "first") == {"f:data": {"f:b": {}}}
    assert fields(obj, "second") == {"f:data": {"f:a": {}}}
    obj = apply_cm(obj, configmap({"b": "3"}), manager="second", now=T2, force=True)
    assert managers(obj) == [("second", "Apply")]  # a manager left with nothing disappears
    assert obj["data"] == {"b": "3"}  # and what "second" stopped applying is pruned


def test_an_update_after_apply_makes_the_next_apply_conflict() -> None:
    obj = apply_ks(None, kustomization())
    edited = copy.deepcopy(obj)
    edited["spec"]["interval"] = "1m"
    obj = update(obj, edited, "kubectl-edit", info=KUSTOMIZATION, version=KS_VERSION)
    with pytest.raises(ApplyConflict) as caught:
        apply_ks(obj, kustomization(), now=T2)
    assert caught.value.status_message(KS_VERSION) == (
        "Apply failed with 1 conflict: "
        f'conflict with "kubectl-edit" using {KS_VERSION}: .spec.interval'
    )
    # The same value again is no conflict: the field becomes shared.
    same = apply_ks(obj, kustomization(interval="1m"), now=T2)
    assert same["spec"]["interval"] == "1m"


def test_record_update_on_create_owns_new_maps_as_members() -> None:
    created = update(
        None,
        configmap({"k": "v"}, labels={"a": "b"}, uid="x", resourceVersion="1"),
        "kubectl-create",
    )
    [entry] = created["metadata"]["managedFields"]
    assert entry["operation"] == "Update" and entry["time"] == T1
    assert entry["fieldsV1"] == {
        "f:data": {".": {}, "f:k": {}},
        "f:metadata": {"f:labels": {".": {}, "f:a": {}}},
    }
    assert list(entry["fieldsV1"]["f:data"]) == [".", "f:k"]


def test_record_update_without_change_keeps_managed_fields() -> None:
    obj = apply_cm(None, configmap({"a": "1"}))
    same = update(obj, {**obj, "metadata": {**obj["metadata"], "resourceVersion": "9"}}, "someone")
    assert same["metadata"]["managedFields"] == obj["metadata"]["managedFields"]


def test_an_update_that_removes_a_field_takes_it_from_its_owner() -> None:
    obj = apply_cm(None, configmap({"a": "1", "b": "2"}))
    obj = update(obj, {**obj, "data": {"a": "1"}}, "remover")
    assert fields(obj, "kollie") == {"f:data": {"f:a": {}}}
    assert managers(obj) == [("kollie", "Apply")]  # the remover changed nothing it could own


def test_update_entries_are_per_api_version_and_subresource_and_ordered() -> None:
    obj = apply_ks(None, kustomization())
    status = update(
        obj,
        {**obj, "status": {"observedGeneration": 1}},
        "kustomize-controller",
        T3,
        info=KUSTOMIZATION,
        version=KS_VERSION,
        subresource="status",
    )
    spec = update(
        status,
        {**status, "spec": {**status["spec"], "suspend": True}},
        "kustomize-controller",
        T2,
        info=KUSTOMIZATION,
        version=KS_VERSION,
    )
    entries = spec["metadata"]["managedFields"]
    # Apply first, then updates by time; the /status entry is its own.
    assert [(e["manager"], e["operation"], e.get("subresource")) for e in entries] == [
        ("kollie", "Apply", None),
        ("kustomize-controller", "Update", None),
        ("kustomize-controller", "Update", "status"),
    ]
    assert entries[2]["fieldsV1"] == {"f:status": {".": {}, "f:observedGeneration": {}}}
    other_version = update(
        spec,
        {**spec, "spec": {**spec["spec"], "timeout": "1m"}},
        "kustomize-controller",
        T3,
        info=KUSTOMIZATION,
        version="kustomize.toolkit.fluxcd.io/v1beta2",
    )
    # Same time: by manager, then apiVersion, then subresource.
    assert [
        (e["apiVersion"], e.get("subresource"))
        for e in other_version["metadata"]["managedFields"][1:]
    ] == [(KS_VERSION, None), (KS_VERSION, "status"), ("kustomize.toolkit.fluxcd.io/v1beta2", None)]
    taken = update(
        other_version,
        {**other_version, "spec": {**other_version["spec"], "suspend": False}},
        "ctl",
        T3,
        info=KUSTOMIZATION,
        version=KS_VERSION,
    )
    # The v1 updater lost its only field: its entry is gone.
    assert [(e["manager"], e["apiVersion"]) for e in taken["metadata"]["managedFields"]][1:] == [
        ("ctl", KS_VERSION),
        ("kustomize-controller", KS_VERSION),
        ("kustomize-controller", "kustomize.toolkit.fluxcd.io/v1beta2"),
    ]


def test_apply_to_status_owns_no_spec() -> None:
    obj = apply_ks(None, kustomization())
    status = ssa.apply(
        obj,
        {**kustomization(), "status": {"observedGeneration": 1}},
        manager="ctl",
        force=False,
        type_info=KUSTOMIZATION,
        api_version=KS_VERSION,
        now=T1,
        subresource="status",
    )
    entry = next(e for e in status["metadata"]["managedFields"] if e["manager"] == "ctl")
    assert entry["subresource"] == "status"
    assert "f:spec" not in entry["fieldsV1"]
    assert entry["fieldsV1"]["f:status"] == {"f:observedGeneration": {}}


def test_owner_references_merge_by_uid() -> None:
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "one", "uid": "u-1"}
    obj = apply_cm(None, configmap({}, ownerReferences=[ref]))
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "two", "uid": "u-2"}
    obj = apply_cm(obj, configmap({}, ownerReferences=[other]), manager="gc-test", now=T1)
    assert [r["uid"] for r in obj["metadata"]["ownerReferences"]] == ["u-1", "u-2"]
    assert fields(obj, "gc-test")["f:metadata"]["f:ownerReferences"] == {
        'k:{"uid":"u-2"}': {".": {}, "f:apiVersion": {}, "f:kind": {}, "f:name": {}, "f:uid": {}}
    }
    with pytest.raises(ApplyConflict) as caught:
        apply_cm(obj, configmap({}, ownerReferences=[{**other, "name": "renamed"}]), now=T2)
    assert caught.value.conflicts == [("gc-test", '.metadata.ownerReferences[uid="u-2"].name')]
    dropped = apply_cm(obj, configmap({}), now=T2)
    assert [r["uid"] for r in dropped["metadata"]["ownerReferences"]] == ["u-2"]


def test_finalizers_are_a_set() -> None:
    obj = apply_cm(None, configmap({}, finalizers=["a.example/x"]))
    obj = apply_cm(
        obj, configmap({}, finalizers=["b.example/y", "a.example/x"]), manager="other", now=T1
    )
    assert obj["metadata"]["finalizers"] == ["b.example/y", "a.example/x"]
    assert fields(obj, "other")["f:metadata"]["f:finalizers"] == {
        'v:"a.example/x"': {},
        'v:"b.example/y"': {},
    }
    obj = apply_cm(obj, configmap({}, finalizers=[]), manager="other", now=T2)
    assert obj["metadata"]["finalizers"] == ["a.example/x"]  # still applied by kollie


def test_list_order_follows_the_configuration_around_live_items() -> None:
    obj = apply_cm(None, configmap({}, finalizers=["a", "b", "c"]), manager="one")
    obj = apply_cm(obj, configmap({}, finalizers=["new", "c", "a"]), manager="two", now=T1)
    # Live-only "b" keeps its place; configured items keep configuration order.
    assert obj["metadata"]["finalizers"] == ["b", "new", "c", "a"]


def test_depends_on_is_atomic_in_the_kustomization_crd() -> None:
    assert KUSTOMIZATION(("spec", "dependsOn")) == ListType("atomic")
    assert KUSTOMIZATION(("metadata", "ownerReferences")) == ListType("map", ("uid",))
    obj = apply_ks(None, kustomization(dependsOn=[{"name": "infra"}]))
    assert fields(obj, "kollie")["f:spec"]["f:dependsOn"] == {}
    with pytest.raises(ApplyConflict):
        apply_ks(obj, kustomization(dependsOn=[{"name": "db"}]), manager="other", now=T1)
    forced = apply_ks(
        obj, kustomization(dependsOn=[{"name": "db"}]), manager="other", now=T1, force=True
    )
    assert forced["spec"]["dependsOn"] == [{"name": "db"}]  # replaced whole, not merged


def test_substitutions_are_owned_key_by_key() -> None:
    obj = apply_ks(None, kustomization(tag="t1"))
    assert fields(obj, "kollie")["f:spec"]["f:postBuild"] == {
        "f:substitute": {"f:environment": {}, "f:image_tag": {}}
    }
    patched = copy.deepcopy(obj)
    patched["spec"]["postBuild"]["substitute"]["image_tag"] = "t2"
    obj = update(obj, patched, "image-follower", info=KUSTOMIZATION, version=KS_VERSION)
    config = kustomization()
    del config["spec"]["postBuild"]["substitute"]["image_tag"]
    obj = apply_ks(obj, config, now=T2)
    assert obj["spec"]["postBuild"]["substitute"] == {"environment": "pr-1", "image_tag": "t2"}


def test_list_maps_from_the_schema_merge_by_sorted_keys() -> None:
    info = ssa.type_info_from_schema(
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "ports": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["protocol", "port"],
                            "items": {
                                "type": "object",
                                "properties": {
                                    "port": {"type": "integer"},
                                    "protocol": {"type": "string"},
                                    "name": {"type": "string"},
                                },
                            },
                        },
                        "selector": {
                            "type": "object",
                            "x-kubernetes-map-type": "atomic",
                            "additionalProperties": {"type": "string"},
                        },
                    },
                }
            },
        }
    )

    def config(ports: list[dict[str, Any]], selector: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "x/v1",
            "kind": "X",
            "metadata": {"name": "x"},
            "spec": {"ports": ports, "selector": selector},
        }

    obj = ssa.apply(
        None,
        config([{"port": 80, "protocol": "TCP", "name": "http"}], {"a": "1"}),
        manager="m",
        force=False,
        type_info=info,
        api_version="x/v1",
        now=T0,
    )
    assert fields(obj, "m")["f:spec"] == {
        "f:ports": {
            'k:{"port":80,"protocol":"TCP"}': {
                ".": {},
                "f:name": {},
                "f:port": {},
                "f:protocol": {},
            }
        },
        "f:selector": {},
    }
    obj = ssa.apply(
        obj,
        config([{"port": 443, "protocol": "TCP"}], {"b": "2"}),
        manager="n",
        force=True,
        type_info=info,
        api_version="x/v1",
        now=T1,
    )
    assert [p["port"] for p in obj["spec"]["ports"]] == [80, 443]
    assert obj["spec"]["selector"] == {"b": "2"}  # atomic map: replaced whole
    assert "f:selector" not in fields(obj, "m")["f:spec"]


def test_plain_type_info_callables_work() -> None:
    def info(path: tuple[str, ...]) -> ListType:
        return ListType("map", ("name",)) if path == ("spec", "items") else ListType("atomic")

    def config(*names: str) -> dict[str, Any]:
        return {
            "apiVersion": "x/v1",
            "kind": "X",
            "metadata": {"name": "x"},
            "spec": {"items": [{"name": n} for n in names]},
        }

    obj = ssa.apply(
        None, config("a"), manager="m", force=False, type_info=info, api_version="x/v1", now=T0
    )
    obj = ssa.apply(
        obj, config("b"), manager="n", force=False, type_info=info, api_version="x/v1", now=T1
    )
    assert obj["spec"]["items"] == [{"name": "a"}, {"name": "b"}]


def test_null_in_a_configuration_removes_the_field() -> None:
    obj = apply_ks(None, kustomization(suspend=True))
    obj = apply_ks(obj, kustomization(suspend=None), now=T1)
    assert "suspend" not in obj["spec"]


def test_inputs_are_never_modified() -> None:
    live = apply_ks(None, kustomization())
    config = kustomization(tag="other", interval="1m")
    frozen = copy.deepcopy((live, config))
    result = apply_ks(live, config, now=T1)
    updated = update(
        result, {**result, "status": {"ready": True}}, "ctl", info=KUSTOMIZATION, version=KS_VERSION
    )
    assert (live, config) == frozen
    assert updated["metadata"] is not result["metadata"] and result["spec"]["interval"] == "1m"


def test_two_thousand_applies_end_with_the_last() -> None:
    """(Their speed is measured in bench/emulator.py, against a same-run floor.)"""
    live = apply_ks(None, kustomization())
    for i in range(2000):
        live = apply_ks(live, kustomization(tag=f"main-abc1234-{i}"), now=T1)
        if i % 4 == 0:
            status = {**live, "status": {"observedGeneration": i}}
            live = update(
                live,
                status,
                "kustomize-controller",
                info=KUSTOMIZATION,
                version=KS_VERSION,
                subresource="status",
            )
    assert live["spec"]["postBuild"]["substitute"]["image_tag"] == "main-abc1234-1999"
