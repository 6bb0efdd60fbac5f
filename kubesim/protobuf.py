"""Decoding of Kubernetes protobuf request bodies for the built-in kinds kubectl creates.

kubectl sends `application/vnd.kubernetes.protobuf` for objects it builds itself (`kubectl
create namespace|configmap|secret|...`). The emulator answers in JSON (the clients accept it)
but must read these bodies. Field numbers follow the `generated.proto` files of k8s.io/api and
k8s.io/apimachinery.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"


class ProtobufError(Exception):
    """A body that is not a well-formed Kubernetes protobuf message of a known kind."""


# ----------------------------------------------------------------- wire format


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) triples; length-delimited values are bytes."""
    out: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


# ----------------------------------------------------------------- field decoders

Decoder = Callable[[Any], Any]
Message = dict[int, tuple[str, Decoder, bool]]
"""field number -> (JSON name, decoder, repeated)."""


def _str(v: Any) -> str:
    return bytes(v).decode()


def _int(v: Any) -> int:
    return int(v) - (1 << 64) if int(v) >= 1 << 63 else int(v)


def _bool(v: Any) -> bool:
    return bool(v)


def _b64(v: Any) -> str:
    return base64.b64encode(bytes(v)).decode()


def _message(spec: Message) -> Decoder:
    def decode(raw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for number, _, value in _fields(bytes(raw)):
            entry = spec.get(number)
            if entry is None:
                continue
            name, decoder, repeated = entry
            decoded = decoder(value)
            if repeated:
                out.setdefault(name, []).append(decoded)
            elif isinstance(decoded, tuple):  # a map entry
                out.setdefault(name, {})[decoded[0]] = decoded[1]
            else:
                out[name] = decoded
        return out

    return decode


def _map(value_decoder: Decoder) -> Decoder:
    def decode(raw: Any) -> tuple[str, Any]:
        key, value = "", value_decoder(b"")
        for number, _, v in _fields(bytes(raw)):
            if number == 1:
                key = _str(v)
            elif number == 2:
                value = value_decoder(v)
        return (key, value)

    return decode


def _time(raw: Any) -> str:
    parts = {n: v for n, _, v in _fields(bytes(raw))}
    seconds = _int(parts.get(1, 0))
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_time(raw: Any) -> str:
    parts = {n: v for n, _, v in _fields(bytes(raw))}
    seconds, nanos = _int(parts.get(1, 0)), _int(parts.get(2, 0))
    return (
        datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        + f".{nanos // 1000:06d}Z"
    )


def _json_raw(raw: Any) -> Any:
    parts = {n: v for n, _, v in _fields(bytes(raw))}
    return json.loads(bytes(parts.get(1, b"{}")))


_OWNER_REFERENCE = _message(
    {
        1: ("kind", _str, False),
        3: ("name", _str, False),
        4: ("uid", _str, False),
        5: ("apiVersion", _str, False),
        6: ("controller", _bool, False),
        7: ("blockOwnerDeletion", _bool, False),
    }
)
_MANAGED_FIELDS = _message(
    {
        1: ("manager", _str, False),
        2: ("operation", _str, False),
        3: ("apiVersion", _str, False),
        4: ("time", _time, False),
        6: ("fieldsType", _str, False),
        7: ("fieldsV1", _json_raw, False),
        8: ("subresource", _str, False),
    }
)
_OBJECT_META = _message(
    {
        1: ("name", _str, False),
        2: ("generateName", _str, False),
        3: ("namespace", _str, False),
        4: ("selfLink", _str, False),
        5: ("uid", _str, False),
        6: ("resourceVersion", _str, False),
        7: ("generation", _int, False),
        8: ("creationTimestamp", _time, False),
        9: ("deletionTimestamp", _time, False),
        10: ("deletionGracePeriodSeconds", _int, False),
        11: ("labels", _map(_str), False),
        12: ("annotations", _map(_str), False),
        13: ("ownerReferences", _OWNER_REFERENCE, True),
        14: ("finalizers", _str, True),
        17: ("managedFields", _MANAGED_FIELDS, True),
    }
)
_OBJECT_REFERENCE = _message(
    {
        1: ("kind", _str, False),
        2: ("namespace", _str, False),
        3: ("name", _str, False),
        4: ("uid", _str, False),
        5: ("apiVersion", _str, False),
        6: ("resourceVersion", _str, False),
        7: ("fieldPath", _str, False),
    }
)
_POLICY_RULE = _message(
    {
        1: ("verbs", _str, True),
        2: ("apiGroups", _str, True),
        3: ("resources", _str, True),
        4: ("resourceNames", _str, True),
        5: ("nonResourceURLs", _str, True),
    }
)
_SUBJECT = _message(
    {
        1: ("kind", _str, False),
        2: ("apiGroup", _str, False),
        3: ("name", _str, False),
        4: ("namespace", _str, False),
    }
)
_ROLE_REF = _message(
    {1: ("apiGroup", _str, False), 2: ("kind", _str, False), 3: ("name", _str, False)}
)

KINDS: dict[tuple[str, str], Decoder] = {
    ("v1", "Namespace"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: ("spec", _message({1: ("finalizers", _str, True)}), False),
            3: ("status", _message({1: ("phase", _str, False)}), False),
        }
    ),
    ("v1", "ConfigMap"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: ("data", _map(_str), False),
            3: ("binaryData", _map(_b64), False),
            4: ("immutable", _bool, False),
        }
    ),
    ("v1", "Secret"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: ("data", _map(_b64), False),
            3: ("type", _str, False),
            4: ("stringData", _map(_str), False),
            5: ("immutable", _bool, False),
        }
    ),
    ("v1", "ServiceAccount"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: ("secrets", _OBJECT_REFERENCE, True),
            3: ("imagePullSecrets", _message({1: ("name", _str, False)}), True),
            4: ("automountServiceAccountToken", _bool, False),
        }
    ),
    ("v1", "Event"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: ("involvedObject", _OBJECT_REFERENCE, False),
            3: ("reason", _str, False),
            4: ("message", _str, False),
            5: (
                "source",
                _message({1: ("component", _str, False), 2: ("host", _str, False)}),
                False,
            ),
            6: ("firstTimestamp", _time, False),
            7: ("lastTimestamp", _time, False),
            8: ("count", _int, False),
            9: ("type", _str, False),
            10: ("eventTime", _micro_time, False),
            12: ("action", _str, False),
            13: ("related", _OBJECT_REFERENCE, False),
            14: ("reportingComponent", _str, False),
            15: ("reportingInstance", _str, False),
        }
    ),
    ("coordination.k8s.io/v1", "Lease"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: (
                "spec",
                _message(
                    {
                        1: ("holderIdentity", _str, False),
                        2: ("leaseDurationSeconds", _int, False),
                        3: ("acquireTime", _micro_time, False),
                        4: ("renewTime", _micro_time, False),
                        5: ("leaseTransitions", _int, False),
                        6: ("strategy", _str, False),
                        7: ("preferredHolder", _str, False),
                    }
                ),
                False,
            ),
        }
    ),
    ("rbac.authorization.k8s.io/v1", "Role"): _message(
        {1: ("metadata", _OBJECT_META, False), 2: ("rules", _POLICY_RULE, True)}
    ),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): _message(
        {1: ("metadata", _OBJECT_META, False), 2: ("rules", _POLICY_RULE, True)}
    ),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: ("subjects", _SUBJECT, True),
            3: ("roleRef", _ROLE_REF, False),
        }
    ),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): _message(
        {
            1: ("metadata", _OBJECT_META, False),
            2: ("subjects", _SUBJECT, True),
            3: ("roleRef", _ROLE_REF, False),
        }
    ),
}
KINDS[("authentication.k8s.io/v1", "TokenRequest")] = _message(
    {
        1: ("metadata", _OBJECT_META, False),
        2: (
            "spec",
            _message(
                {
                    1: ("audiences", _str, True),
                    4: ("expirationSeconds", _int, False),
                    3: (
                        "boundObjectRef",
                        _message(
                            {
                                1: ("kind", _str, False),
                                2: ("apiVersion", _str, False),
                                3: ("name", _str, False),
                                4: ("uid", _str, False),
                            }
                        ),
                        False,
                    ),
                }
            ),
            False,
        ),
    }
)
KINDS[("authorization.k8s.io/v1", "SelfSubjectAccessReview")] = _message(
    {
        1: ("metadata", _OBJECT_META, False),
        2: (
            "spec",
            _message(
                {
                    1: (
                        "resourceAttributes",
                        _message(
                            {
                                1: ("namespace", _str, False),
                                2: ("verb", _str, False),
                                3: ("group", _str, False),
                                4: ("version", _str, False),
                                5: ("resource", _str, False),
                                6: ("subresource", _str, False),
                                7: ("name", _str, False),
                            }
                        ),
                        False,
                    ),
                    2: (
                        "nonResourceAttributes",
                        _message({1: ("path", _str, False), 2: ("verb", _str, False)}),
                        False,
                    ),
                }
            ),
            False,
        ),
    }
)
_DELETE_OPTIONS = _message(
    {
        1: ("gracePeriodSeconds", _int, False),
        2: (
            "preconditions",
            _message({1: ("uid", _str, False), 2: ("resourceVersion", _str, False)}),
            False,
        ),
        3: ("orphanDependents", _bool, False),
        4: ("propagationPolicy", _str, False),
        5: ("dryRun", _str, True),
    }
)
for _api_version in ("v1", "meta.k8s.io/v1"):
    KINDS[(_api_version, "DeleteOptions")] = _DELETE_OPTIONS


def supported_kinds() -> set[tuple[str, str]]:
    return set(KINDS)


def decode(raw: bytes) -> dict[str, Any]:
    """The JSON-shaped object inside a `k8s\\x00`-prefixed runtime.Unknown envelope."""
    if not raw.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    envelope = {n: v for n, _, v in _fields(raw[len(MAGIC) :])}
    type_meta = {n: v for n, _, v in _fields(bytes(envelope.get(1, b"")))}
    api_version, kind = _str(type_meta.get(1, b"")), _str(type_meta.get(2, b""))
    decoder = KINDS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"no protobuf decoding for {api_version or '?'} {kind or '?'}")
    obj = decoder(envelope.get(2, b""))
    if not isinstance(obj, dict):
        raise ProtobufError("decoded value is not an object")
    return {"apiVersion": api_version, "kind": kind, **obj}
