"""JSON merge patch (RFC 7386), JSON patch (RFC 6902) and strategic merge patch."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from kubesim.patching import (
    REJECTED,
    PatchError,
    json_merge_patch,
    json_patch,
    strategic_merge_patch,
)

# ----------------------------------------------------------------- RFC 7386

RFC7386_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_APPENDIX_A)
def test_json_merge_patch_rfc7386_examples(target: Any, patch: Any, expected: Any) -> None:
    before = copy.deepcopy((target, patch))
    assert json_merge_patch(target, patch) == expected
    assert (target, patch) == before


def test_json_merge_patch_shares_what_it_does_not_touch() -> None:
    target = {"spec": {"a": 1}, "status": {"big": list(range(100))}}
    result = json_merge_patch(target, {"spec": {"a": 2}})
    assert result == {"spec": {"a": 2}, "status": {"big": list(range(100))}}
    assert result["status"] is target["status"] and target["spec"] == {"a": 1}


# ----------------------------------------------------------------- RFC 6902

RFC6902_APPENDIX_A: list[tuple[str, Any, Any, Any]] = [
    (
        "A.1 add object member",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
    ),
    (
        "A.2 add array element",
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
    ),
    (
        "A.3 remove object member",
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
    ),
    (
        "A.4 remove array element",
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
    ),
    (
        "A.5 replace value",
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
    ),
    (
        "A.6 move value",
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
    ),
    (
        "A.7 move array element",
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
    ),
    (
        "A.8 test success",
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [
            {"op": "test", "path": "/baz", "value": "qux"},
            {"op": "test", "path": "/foo/1", "value": 2},
        ],
        {"baz": "qux", "foo": ["a", 2, "c"]},
    ),
    (
        "A.10 add nested member",
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
    ),
    (
        "A.11 ignore unrecognized members",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
    ),
    (
        "A.14 ~ escape ordering",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
    ),
    (
        "A.16 add array value",
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
    ),
    ("whole document", {"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
    ("empty key", {"": 1}, [{"op": "replace", "path": "/", "value": 2}], {"": 2}),
    (
        "copy",
        {"a": {"b": [1]}},
        [{"op": "copy", "from": "/a", "path": "/c"}, {"op": "add", "path": "/c/b/-", "value": 2}],
        {"a": {"b": [1]}, "c": {"b": [1, 2]}},
    ),
    ("numbers compare by value", {"n": 1}, [{"op": "test", "path": "/n", "value": 1.0}], {"n": 1}),
]


@pytest.mark.parametrize(
    ("target", "ops", "expected"),
    [c[1:] for c in RFC6902_APPENDIX_A],
    ids=[c[0] for c in RFC6902_APPENDIX_A],
)
def test_json_patch_rfc6902_examples(target: Any, ops: Any, expected: Any) -> None:
    before = copy.deepcopy((target, ops))
    assert json_patch(target, ops) == expected
    assert (target, ops) == before


FAILING: list[tuple[str, Any, Any]] = [
    ("A.9 test error", {"baz": "qux"}, [{"op": "test", "path": "/baz", "value": "bar"}]),
    (
        "A.12 add to nonexistent target",
        {"foo": "bar"},
        [{"op": "add", "path": "/baz/bat", "value": "qux"}],
    ),
    (
        "A.15 string is not number",
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": "10"}],
    ),
    ("true is not 1", {"a": 1}, [{"op": "test", "path": "/a", "value": True}]),
    ("remove missing", {"a": 1}, [{"op": "remove", "path": "/b"}]),
    ("replace missing", {"a": 1}, [{"op": "replace", "path": "/b", "value": 2}]),
    ("index past the end", {"a": [1]}, [{"op": "add", "path": "/a/2", "value": 2}]),
    ("leading zero index", {"a": [1, 2]}, [{"op": "remove", "path": "/a/01"}]),
    ("dash outside add", {"a": [1]}, [{"op": "replace", "path": "/a/-", "value": 2}]),
    ("move into itself", {"a": {"b": {}}}, [{"op": "move", "from": "/a", "path": "/a/b/c"}]),
    ("missing from", {"a": 1}, [{"op": "copy", "from": "/x", "path": "/b"}]),
    ("missing value", {"a": 1}, [{"op": "add", "path": "/b"}]),
    ("unknown op", {"a": 1}, [{"op": "frobnicate", "path": "/a"}]),
    ("pointer without slash", {"a": 1}, [{"op": "remove", "path": "a"}]),
    ("path not a string", {"a": 1}, [{"op": "move", "from": "/a", "path": 1}]),
    (
        "later op fails",
        {"a": 1},
        [{"op": "add", "path": "/b", "value": 2}, {"op": "remove", "path": "/c"}],
    ),
]


@pytest.mark.parametrize(("target", "ops"), [c[1:] for c in FAILING], ids=[c[0] for c in FAILING])
def test_json_patch_that_does_not_apply_is_rejected_like_kube_apiserver(
    target: Any, ops: Any
) -> None:
    before = copy.deepcopy(target)
    with pytest.raises(PatchError) as caught:
        json_patch(target, ops)
    assert caught.value.code == 422
    assert str(caught.value) == REJECTED
    assert caught.value.detail != REJECTED
    assert target == before


@pytest.mark.parametrize("ops", [{"op": "add"}, "add", [1], [["op"]]])
def test_malformed_json_patch_is_a_bad_request(ops: Any) -> None:
    with pytest.raises(PatchError) as caught:
        json_patch({}, ops)
    assert caught.value.code == 400


def test_json_patch_copies_only_the_changed_path() -> None:
    target: dict[str, Any] = {"spec": {"list": [1, 2], "other": {"x": 1}}, "status": {"y": 2}}
    result = json_patch(
        target,
        [
            {"op": "add", "path": "/spec/list/0", "value": 0},
            {"op": "replace", "path": "/spec/list/2", "value": 3},
        ],
    )
    assert result["spec"]["list"] == [0, 1, 3] and target["spec"]["list"] == [1, 2]
    assert (
        result["status"] is target["status"] and result["spec"]["other"] is target["spec"]["other"]
    )


# ----------------------------------------------------------------- strategic merge patch

POD_KEYS = {
    ("spec", "containers"): "name",
    ("spec", "containers", "env"): "name",
    ("spec", "containers", "ports"): "containerPort",
}


def smp(target: Any, patch: Any, keys: dict[tuple[str, ...], str] | None = None) -> Any:
    before = copy.deepcopy((target, patch))
    result = strategic_merge_patch(
        target, patch, merge_key=(POD_KEYS if keys is None else keys).get
    )
    assert (target, patch) == before
    assert "$" not in json.dumps(result)
    return result


def pod(*containers: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", **meta},
        "spec": {"containers": list(containers)},
    }


def test_maps_merge_and_null_deletes() -> None:
    live = {"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"k": "v"}}
    assert smp(live, {"metadata": {"labels": {"a": None, "c": "3"}}, "data": None}) == {
        "metadata": {"labels": {"b": "2", "c": "3"}}
    }


def test_lists_with_a_merge_key_merge_by_it_new_items_first() -> None:
    live = pod({"name": "app", "image": "v1"}, {"name": "sidecar", "image": "s1"})
    result = smp(
        live,
        {"spec": {"containers": [{"name": "app", "image": "v2"}, {"name": "new", "image": "n1"}]}},
    )
    # Patched items in patch order, live-only ones after the patched items they followed.
    assert result["spec"]["containers"] == [
        {"name": "app", "image": "v2"},
        {"name": "new", "image": "n1"},
        {"name": "sidecar", "image": "s1"},
    ]
    added = smp(live, {"spec": {"containers": [{"name": "new", "image": "n1"}]}})
    assert [c["name"] for c in added["spec"]["containers"]] == ["new", "app", "sidecar"]


def test_lists_without_a_merge_key_are_replaced() -> None:
    live = {"spec": {"args": ["a", "b"], "containers": [{"name": "x"}]}}
    assert smp(live, {"spec": {"args": ["c"]}})["spec"]["args"] == ["c"]


def test_object_meta_lists_merge_on_every_kind() -> None:
    live = {
        "metadata": {"finalizers": ["a", "b"], "ownerReferences": [{"uid": "1", "name": "one"}]}
    }
    result = smp(
        live,
        {
            "metadata": {
                "finalizers": ["c", "a"],
                "$deleteFromPrimitiveList/finalizers": ["b"],
                "ownerReferences": [{"uid": "2", "name": "two"}],
            }
        },
        keys={},
    )
    assert result["metadata"]["finalizers"] == ["c", "a"]
    assert result["metadata"]["ownerReferences"] == [
        {"uid": "2", "name": "two"},
        {"uid": "1", "name": "one"},
    ]


def test_patch_directives_in_list_items_and_maps() -> None:
    live = pod(
        {"name": "app", "image": "v1", "env": [{"name": "A", "value": "1"}]}, {"name": "old"}
    )
    deleted = smp(live, {"spec": {"containers": [{"name": "old", "$patch": "delete"}]}})
    assert [c["name"] for c in deleted["spec"]["containers"]] == ["app"]
    replaced = smp(live, {"spec": {"containers": [{"name": "only"}, {"$patch": "replace"}]}})
    assert replaced["spec"]["containers"] == [{"name": "only"}]
    merged = smp(
        live, {"spec": {"containers": [{"name": "app", "$patch": "merge", "image": "v2"}]}}
    )
    assert merged["spec"]["containers"][0] == {
        "name": "app",
        "image": "v2",
        "env": [{"name": "A", "value": "1"}],
    }
    map_replaced = smp(live, {"metadata": {"$patch": "replace", "name": "q"}})
    assert map_replaced["metadata"] == {"name": "q"}
    map_deleted = smp(
        {"spec": {"strategy": {"rollingUpdate": {"maxSurge": 1}}}},
        {"spec": {"strategy": {"rollingUpdate": {"$patch": "delete"}}}},
    )
    assert map_deleted == {"spec": {"strategy": {}}}


def test_retain_keys_clears_the_other_members_of_a_union() -> None:
    live = {"spec": {"volume": {"name": "v", "emptyDir": {}, "other": 1}}}
    patch = {"spec": {"volume": {"$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}}}
    assert smp(live, patch) == {"spec": {"volume": {"name": "v", "hostPath": {"path": "/x"}}}}
    with pytest.raises(PatchError) as caught:
        smp(live, {"spec": {"volume": {"$retainKeys": ["name"], "hostPath": {}}}})
    assert (caught.value.code, str(caught.value)) == (400, "invalid patch format of retainKeys")


def test_kubectl_client_side_apply_patch_with_set_element_order() -> None:
    live = pod(
        {
            "name": "app",
            "image": "v1",
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "value": "2"},
                {"name": "X", "value": "server"},
            ],
        },
        {"name": "injected", "image": "mesh"},
        annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"},
    )
    # What kubectl apply sends after the config changed image, dropped env A and added env C.
    patch = {
        "metadata": {
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": '{"new":1}'}
        },
        "spec": {
            "$setElementOrder/containers": [{"name": "app"}],
            "containers": [
                {
                    "$setElementOrder/env": [{"name": "B"}, {"name": "C"}],
                    "env": [{"name": "C", "value": "3"}, {"$patch": "delete", "name": "A"}],
                    "image": "v2",
                    "name": "app",
                }
            ],
        },
    }
    result = smp(live, patch)
    app, injected = result["spec"]["containers"]
    assert app == {
        "name": "app",
        "image": "v2",
        "env": [
            {"name": "B", "value": "2"},
            {"name": "C", "value": "3"},
            {"name": "X", "value": "server"},
        ],
    }
    assert injected == {"name": "injected", "image": "mesh"}
    assert (
        result["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        == '{"new":1}'
    )


def test_set_element_order_reorders_without_other_changes() -> None:
    live = {"metadata": {"finalizers": ["a", "b", "c"]}}
    assert smp(live, {"metadata": {"$setElementOrder/finalizers": ["c", "a", "b"]}}, keys={}) == {
        "metadata": {"finalizers": ["c", "a", "b"]}
    }
    with pytest.raises(PatchError, match="doesn't match \\$setElementOrder list"):
        smp(
            live,
            {"metadata": {"$setElementOrder/finalizers": ["a", "b"], "finalizers": ["b", "a"]}},
            keys={},
        )


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"spec": {"containers": [{"image": "no-name"}]}}, 422),
        ({"spec": {"$patch": "frobnicate"}}, 422),
        ({"spec": {"$deleteFromPrimitiveList/args": "a"}}, 400),
        ({"spec": {"$setElementOrder/containers": {"name": "a"}}}, 400),
        (["not", "an", "object"], 400),
    ],
)
def test_strategic_merge_patch_errors(patch: Any, code: int) -> None:
    with pytest.raises(PatchError) as caught:
        strategic_merge_patch(pod({"name": "a"}), patch, merge_key=POD_KEYS.get)
    assert caught.value.code == code
