"""Validation and bookkeeping of `metadata`, shared by every kind."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

SERVER_FIELDS = (
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
)
"""Metadata the server owns: ignored in client-sent objects, preserved across updates."""


def now_rfc3339(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def dns_subdomain_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 253:
        errs.append("must be no more than 253 characters")
    if not _DNS_SUBDOMAIN.match(value):
        errs.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', "
            "and must start and end with an alphanumeric character (e.g. 'example.com', regex "
            "used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return errs


def dns_label_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _DNS_LABEL.match(value):
        errs.append(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or "
            "'-', and must "
            "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
            "used for "
            "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
        )
    return errs


def qualified_name_errors(key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    errs = []
    if prefix:
        errs += ["prefix part " + e for e in dns_subdomain_errors(prefix)]
    if not name or len(name) > 63:
        errs.append(
            "name part must be no more than 63 characters"
            if name
            else "name part must be non-empty"
        )
    elif not _QUALIFIED_NAME.match(name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
            "and end with "
            "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation "
            "is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return errs


def label_value_errors(value: str) -> list[str]:
    errs = []
    if len(value) > 63:
        errs.append("must be no more than 63 characters")
    if not _LABEL_VALUE.match(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', "
            "'_' or '.', and "
            "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value', "
            " or '12345', "
            "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        )
    return errs


def metadata_errors(meta: Mapping[str, Any], *, name_is_label: bool) -> list[tuple[str, str, str]]:
    """Problems with a client-sent metadata block, as (field, reason, message) triples."""
    out: list[tuple[str, str, str]] = []
    name = meta.get("name")
    if isinstance(name, str) and name:
        for e in (dns_label_errors if name_is_label else dns_subdomain_errors)(name):
            out.append(
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'metadata.name: Invalid value: "{name}": {e}',
                )
            )
    for kind in ("labels", "annotations"):
        values = meta.get(kind)
        if values is None:
            continue
        if not isinstance(values, Mapping):
            out.append(
                (
                    f"metadata.{kind}",
                    "FieldValueTypeInvalid",
                    f"metadata.{kind}: Invalid value: must be a map",
                )
            )
            continue
        for key, value in values.items():
            for e in qualified_name_errors(str(key)):
                out.append(
                    (
                        f"metadata.{kind}",
                        "FieldValueInvalid",
                        f'metadata.{kind}: Invalid value: "{key}": {e}',
                    )
                )
            if not isinstance(value, str):
                out.append(
                    (
                        f"metadata.{kind}.{key}",
                        "FieldValueTypeInvalid",
                        f"metadata.{kind}.{key}: Invalid value: must be a string",
                    )
                )
            elif kind == "labels":
                for e in label_value_errors(value):
                    out.append(
                        (
                            "metadata.labels",
                            "FieldValueInvalid",
                            f'metadata.labels: Invalid value: "{value}": {e}',
                        )
                    )
    annotations = meta.get("annotations")
    if isinstance(annotations, Mapping):
        size = sum(len(str(k)) + len(str(v)) for k, v in annotations.items())
        if size > 256 * 1024:
            out.append(
                (
                    "metadata.annotations",
                    "FieldValueTooLong",
                    "metadata.annotations: Too long: must have at most 262144 bytes",
                )
            )
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
    ):
        out.append(
            (
                "metadata.finalizers",
                "FieldValueTypeInvalid",
                "metadata.finalizers: Invalid value: must be a list of strings",
            )
        )
    owners = meta.get("ownerReferences")
    if owners is not None:
        if not isinstance(owners, list):
            out.append(
                (
                    "metadata.ownerReferences",
                    "FieldValueTypeInvalid",
                    "metadata.ownerReferences: Invalid value: must be a list",
                )
            )
        else:
            controllers = 0
            for i, ref in enumerate(owners):
                if not isinstance(ref, Mapping):
                    out.append(
                        (
                            f"metadata.ownerReferences[{i}]",
                            "FieldValueTypeInvalid",
                            f"metadata.ownerReferences[{i}]: Invalid value: must be an object",
                        )
                    )
                    continue
                for required in ("apiVersion", "kind", "name", "uid"):
                    if not ref.get(required):
                        out.append(
                            (
                                f"metadata.ownerReferences[{i}].{required}",
                                "FieldValueRequired",
                                f"metadata.ownerReferences[{i}].{required}: Required value",
                            )
                        )
                if ref.get("controller"):
                    controllers += 1
            if controllers > 1:
                out.append(
                    (
                        "metadata.ownerReferences",
                        "FieldValueInvalid",
                        "metadata.ownerReferences: Invalid value: only one reference can have "
                        "Controller set to true",
                    )
                )
    return out
