"""How the fields of a kind merge under server-side apply: list types, structs, maps.

structured-merge-diff (the engine behind kube-apiserver's server-side apply) needs three facts
about every node of an object, all taken from the kind's OpenAPI schema:

- a list is ``atomic`` (replaced whole, owned as one field), a ``set`` of scalars (items owned
  one by one, ``v:<json>``) or a ``map`` keyed by some item fields (``k:{...}``);
- a map is a *struct* (its keys are declared fields), a *granular map* (arbitrary keys, each
  key itself an owned member, as for ``labels``) or *atomic*;
- ``metadata`` is always ``ObjectMeta``, whatever the CRD schema says: labels and annotations
  are maps, finalizers a set, ownerReferences a map keyed by ``uid``.

:class:`Shape` answers those questions while a walker descends an object, so that no path has
to be rebuilt and looked up per node; :func:`type_info_from_schema` builds shapes from a CRD
``openAPIV3Schema`` (or from nothing, for the built-in kinds, whose lists are all atomic here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class ListType:
    """How a list merges: ``atomic`` (replace), ``set`` (union of scalars) or ``map`` (by
    ``keys``)."""

    kind: Literal["atomic", "set", "map"]
    keys: tuple[str, ...] = ()


TypeInfo = Callable[[tuple[str, ...]], ListType]
"""Path of field names from the object root (list indices omitted) -> how the list there merges."""

ATOMIC = ListType("atomic")

# Server-owned metadata, never in a field set (kube-apiserver strips exactly these, plus the
# deletion fields the emulator sets outside any field manager, as the real registry does).
UNTRACKED_METADATA = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "managedFields",
        "selfLink",
        "clusterName",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    }
)


class Shape:
    """What the schema says about one node of an object.

    ``untracked`` keys are skipped by field sets and comparisons; ``unowned`` keys are descended
    into but never owned themselves (the root's ``metadata``).
    """

    __slots__ = ("atomic_map", "is_list", "list_type", "unowned", "untracked")

    def __init__(
        self, list_type: ListType = ATOMIC, *, atomic_map: bool = False, is_list: bool = False
    ) -> None:
        self.list_type = list_type
        self.atomic_map = atomic_map
        self.is_list = is_list
        self.untracked: frozenset[str] = frozenset()
        self.unowned: frozenset[str] = frozenset()

    def field(self, name: str) -> tuple[Shape, bool]:
        """The shape of key ``name`` of this map, and whether it is a declared struct field."""
        return _LOOSE, False

    def items(self) -> Shape:
        """The shape of this list's items."""
        return _LOOSE


class _Loose(Shape):
    """Untyped data (``x-kubernetes-preserve-unknown-fields``): granular maps, atomic lists."""

    __slots__ = ()


class _Struct(Shape):
    """A built-in kind without schema: every key a declared field, every list atomic."""

    __slots__ = ()

    def field(self, name: str) -> tuple[Shape, bool]:
        return _STRUCT, True

    def items(self) -> Shape:
        return _STRUCT


_STRUCT = _Struct()
_LOOSE = _Loose()


class _Fixed(Shape):
    """A node whose children are spelled out (ObjectMeta and its lists)."""

    __slots__ = ("_fields", "_items", "_other")

    def __init__(
        self,
        list_type: ListType = ATOMIC,
        *,
        fields: Mapping[str, Shape] | None = None,
        other: tuple[Shape, bool] = (_STRUCT, True),
        items: Shape | None = None,
    ) -> None:
        super().__init__(list_type, is_list=items is not None)
        self._fields = dict(fields or {})
        self._other = other
        self._items = items or _STRUCT

    def field(self, name: str) -> tuple[Shape, bool]:
        child = self._fields.get(name)
        return (child, True) if child is not None else self._other

    def items(self) -> Shape:
        return self._items


_STRING_MAP = _Fixed(other=(_STRUCT, False))
METADATA = _Fixed(
    fields={
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": _Fixed(ListType("set"), items=_STRUCT),
        "ownerReferences": _Fixed(ListType("map", ("uid",)), items=_STRUCT),
        "managedFields": _Fixed(ATOMIC, items=_STRUCT),
    }
)
METADATA.untracked = UNTRACKED_METADATA


class _Root(Shape):
    """An object's root: ``metadata`` is ObjectMeta; ``apiVersion``/``kind`` are not owned."""

    __slots__ = ("_inner",)

    def __init__(self, inner: Shape) -> None:
        super().__init__()
        self._inner = inner
        self.untracked = frozenset({"apiVersion", "kind"})
        self.unowned = frozenset({"metadata"})

    def field(self, name: str) -> tuple[Shape, bool]:
        if name == "metadata":
            return METADATA, True
        return self._inner.field(name)


class _SchemaNode(Shape):
    """One node of a structural OpenAPI v3 schema; children are built once and cached."""

    __slots__ = ("_children", "_items_shape", "_node")

    def __init__(self, node: Mapping[str, Any]) -> None:
        list_type = ATOMIC
        if node.get("x-kubernetes-list-type") == "set":
            list_type = ListType("set")
        elif node.get("x-kubernetes-list-type") == "map":
            list_type = ListType("map", tuple(node.get("x-kubernetes-list-map-keys") or ()))
        super().__init__(
            list_type,
            atomic_map=node.get("x-kubernetes-map-type") == "atomic",
            is_list=node.get("type") == "array",
        )
        self._node = node
        self._children: dict[str, tuple[Shape, bool]] = {}
        self._items_shape: Shape | None = None

    def field(self, name: str) -> tuple[Shape, bool]:
        known = self._children.get(name)
        if known is not None:
            return known
        props = self._node.get("properties")
        extra = self._node.get("additionalProperties")
        if isinstance(props, Mapping) and isinstance(props.get(name), Mapping):
            known = (_SchemaNode(props[name]), True)
            self._children[name] = known
        elif isinstance(extra, Mapping):
            # One shape serves every key of a map; cached under a key no field can have.
            known = self._children.get("\0")
            if known is None:
                known = self._children["\0"] = (_SchemaNode(extra), False)
        else:
            known = (_LOOSE, False)
        return known

    def items(self) -> Shape:
        if self._items_shape is None:
            items = self._node.get("items")
            self._items_shape = _SchemaNode(items) if isinstance(items, Mapping) else _LOOSE
        return self._items_shape


class SchemaTypeInfo:
    """A :data:`TypeInfo` built from a schema; SSA walks its :attr:`root` shape directly."""

    __slots__ = ("root",)

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.root: Shape = _Root(_SchemaNode(schema) if schema is not None else _STRUCT)

    def __call__(self, names: tuple[str, ...]) -> ListType:
        return _walk(self.root, names).list_type


def _walk(shape: Shape, names: tuple[str, ...]) -> Shape:
    for name in names:
        if shape.is_list:
            shape = shape.items()
        shape = shape.field(name)[0]
    return shape


class _PathShape(Shape):
    """Shapes for a plain :data:`TypeInfo` callable: lists are asked about by path."""

    __slots__ = ("_info", "_names")

    def __init__(self, info: TypeInfo, names: tuple[str, ...]) -> None:
        super().__init__(info(names), is_list=True)
        self._info = info
        self._names = names

    def field(self, name: str) -> tuple[Shape, bool]:
        return _PathShape(self._info, (*self._names, name)), True

    def items(self) -> Shape:
        return self


class _PathRoot(_Root):
    __slots__ = ("_info",)

    def __init__(self, info: TypeInfo) -> None:
        super().__init__(_STRUCT)
        self._info = info

    def field(self, name: str) -> tuple[Shape, bool]:
        if name == "metadata":
            return METADATA, True
        return _PathShape(self._info, (name,)), True


def type_info_from_schema(schema: Mapping[str, Any] | None) -> TypeInfo:
    """How a kind merges, from its CRD ``openAPIV3Schema`` (``None``: a built-in kind).

    CRD lists are atomic unless marked ``x-kubernetes-list-type: set|map``; maps marked
    ``x-kubernetes-map-type: atomic`` are replaced whole.  ``metadata`` is built in.
    """
    return SchemaTypeInfo(schema)


def root_shape(info: TypeInfo) -> Shape:
    """The shape walkers start from, for any :data:`TypeInfo`."""
    if isinstance(info, SchemaTypeInfo):
        return info.root
    return _PathRoot(info)
