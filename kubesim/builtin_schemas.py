"""OpenAPI v3 schemas of the built-in kinds the emulator serves.

They cover the fields Kubernetes defines for these kinds, so that unknown fields are pruned
(or rejected with `fieldValidation=Strict`) and wrong types are refused, as a real server's
typed decoding would do.  They are also what `/openapi/v3` publishes.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer", "format": "int32"}
_BOOL: Schema = {"type": "boolean"}
_TIME: Schema = {"type": "string", "format": "date-time"}
_STR_MAP: Schema = {"type": "object", "additionalProperties": {"type": "string"}}
_STR_LIST: Schema = {"type": "array", "items": {"type": "string"}}
_ANY_OBJECT: Schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def _kind(properties: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    schema: Schema = {
        "type": "object",
        "properties": {
            "apiVersion": _STR,
            "kind": _STR,
            "metadata": {"type": "object"},
            **properties,
        },
    }
    if required:
        schema["required"] = list(required)
    return schema


_OBJECT_REFERENCE: Schema = {
    "type": "object",
    "properties": dict.fromkeys(
        ("apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion", "uid"), _STR
    ),
}

_POLICY_RULE: Schema = {
    "type": "object",
    "required": ["verbs"],
    "properties": {
        "apiGroups": _STR_LIST,
        "resources": _STR_LIST,
        "resourceNames": _STR_LIST,
        "nonResourceURLs": _STR_LIST,
        "verbs": _STR_LIST,
    },
}

_SUBJECT: Schema = {
    "type": "object",
    "required": ["kind", "name"],
    "properties": {"apiGroup": _STR, "kind": _STR, "name": _STR, "namespace": _STR},
}

_ROLE_REF: Schema = {
    "type": "object",
    "required": ["apiGroup", "kind", "name"],
    "properties": {"apiGroup": _STR, "kind": _STR, "name": _STR},
}

_INGRESS_PATH: Schema = {
    "type": "object",
    "required": ["pathType", "backend"],
    "properties": {
        "path": _STR,
        "pathType": {"type": "string", "enum": ["Exact", "Prefix", "ImplementationSpecific"]},
        "backend": _ANY_OBJECT,
    },
}

SCHEMAS: dict[tuple[str, str], Schema] = {
    ("", "namespaces"): _kind(
        {
            "spec": {"type": "object", "properties": {"finalizers": _STR_LIST}},
            "status": {
                "type": "object",
                "properties": {
                    "phase": _STR,
                    "conditions": {"type": "array", "items": _ANY_OBJECT},
                },
            },
        }
    ),
    ("", "configmaps"): _kind(
        {
            "data": _STR_MAP,
            "binaryData": {
                "type": "object",
                "additionalProperties": {"type": "string", "format": "byte"},
            },
            "immutable": _BOOL,
        }
    ),
    ("", "secrets"): _kind(
        {
            "data": {
                "type": "object",
                "additionalProperties": {"type": "string", "format": "byte"},
            },
            "stringData": _STR_MAP,
            "type": _STR,
            "immutable": _BOOL,
        }
    ),
    ("", "serviceaccounts"): _kind(
        {
            "secrets": {"type": "array", "items": _OBJECT_REFERENCE},
            "imagePullSecrets": {
                "type": "array",
                "items": {"type": "object", "properties": {"name": _STR}},
            },
            "automountServiceAccountToken": _BOOL,
        }
    ),
    ("", "events"): _kind(
        {
            "involvedObject": _OBJECT_REFERENCE,
            "reason": _STR,
            "message": _STR,
            "source": {"type": "object", "properties": {"component": _STR, "host": _STR}},
            "firstTimestamp": _TIME,
            "lastTimestamp": _TIME,
            "eventTime": {"type": "string", "nullable": True},
            "count": _INT,
            "type": _STR,
            "action": _STR,
            "related": _OBJECT_REFERENCE,
            "reportingComponent": _STR,
            "reportingInstance": _STR,
            "series": _ANY_OBJECT,
        },
        ("involvedObject",),
    ),
    ("coordination.k8s.io", "leases"): _kind(
        {
            "spec": {
                "type": "object",
                "properties": {
                    "holderIdentity": {"type": "string", "nullable": True},
                    "leaseDurationSeconds": {
                        "type": "integer",
                        "format": "int32",
                        "nullable": True,
                    },
                    "acquireTime": {"type": "string", "nullable": True},
                    "renewTime": {"type": "string", "nullable": True},
                    "leaseTransitions": {"type": "integer", "format": "int32", "nullable": True},
                    "strategy": {"type": "string", "nullable": True},
                    "preferredHolder": {"type": "string", "nullable": True},
                },
            }
        }
    ),
    ("networking.k8s.io", "ingresses"): _kind(
        {
            "spec": {
                "type": "object",
                "properties": {
                    "ingressClassName": _STR,
                    "defaultBackend": _ANY_OBJECT,
                    "tls": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"hosts": _STR_LIST, "secretName": _STR},
                        },
                    },
                    "rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "host": _STR,
                                "http": {
                                    "type": "object",
                                    "required": ["paths"],
                                    "properties": {
                                        "paths": {"type": "array", "items": _INGRESS_PATH}
                                    },
                                },
                            },
                        },
                    },
                },
            },
            "status": _ANY_OBJECT,
        }
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"): _kind(
        {"spec": _ANY_OBJECT, "status": _ANY_OBJECT}, ("spec",)
    ),
    # Kinds kept for what installs them (Helm charts); their specs are stored as sent.
    ("", "services"): _kind({"spec": _ANY_OBJECT, "status": _ANY_OBJECT}),
    ("apps", "deployments"): _kind({"spec": _ANY_OBJECT, "status": _ANY_OBJECT}, ("spec",)),
    ("policy", "poddisruptionbudgets"): _kind({"spec": _ANY_OBJECT, "status": _ANY_OBJECT}),
    ("networking.k8s.io", "networkpolicies"): _kind({"spec": _ANY_OBJECT}),
    ("rbac.authorization.k8s.io", "roles"): _kind(
        {"rules": {"type": "array", "items": _POLICY_RULE}}
    ),
    ("rbac.authorization.k8s.io", "clusterroles"): _kind(
        {"rules": {"type": "array", "items": _POLICY_RULE}, "aggregationRule": _ANY_OBJECT}
    ),
    ("rbac.authorization.k8s.io", "rolebindings"): _kind(
        {"subjects": {"type": "array", "items": _SUBJECT}, "roleRef": _ROLE_REF}, ("roleRef",)
    ),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _kind(
        {"subjects": {"type": "array", "items": _SUBJECT}, "roleRef": _ROLE_REF}, ("roleRef",)
    ),
}
