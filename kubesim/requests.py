"""Reading requests and writing answers the way kube-apiserver does: bodies (JSON, YAML,
protobuf) within the size limit, query parameters, `Status` errors and `Warning` headers."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from kubesim import errors
from kubesim.errors import ApiError
from kubesim.objects import WriteOptions
from kubesim.resources import ResourceType

MAX_BODY = 3 * 1024 * 1024
"""kube-apiserver's request body limit (3 MiB)."""
PROTOBUF = "application/vnd.kubernetes.protobuf"


def json_response(
    body: Any, *, status: int = 200, warnings: list[str] | None = None
) -> web.Response:
    response = web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )
    for w in warnings or []:
        response.headers.add("Warning", f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"')
    return response


def status_response(e: ApiError) -> web.Response:
    response = json_response(e.status(), status=e.code)
    for k, v in e.headers.items():
        response.headers[k] = v
    return response


def success(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {
        "name": obj["metadata"]["name"],
        "kind": rt.plural,
        "uid": obj["metadata"].get("uid"),
    }
    if rt.group:
        details["group"] = rt.group
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def flag(request: web.Request, name: str) -> bool:
    """A boolean query parameter, parsed as Go's strconv.ParseBool does."""
    value = request.query.get(name, "")
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("", "0", "f", "F", "FALSE", "false", "False"):
        return False
    raise errors.bad_request(f"invalid boolean value for {name}: {value!r}")


def wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


async def read_raw(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"Request entity too large: limit is {MAX_BODY}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_BODY:
            raise ApiError(413, f"Request entity too large: limit is {MAX_BODY}")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_body(request: web.Request) -> Any:
    raw = await read_raw(request)
    ctype = request.content_type
    if ctype == PROTOBUF:
        return decode_protobuf(raw)
    if "protobuf" in ctype or "cbor" in ctype:
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml",
        )
    if ctype in ("application/yaml", "application/x-yaml", "text/yaml"):
        return errors.load_yaml(raw, "error converting YAML to JSON")
    try:
        return json.loads(raw)
    except ValueError as e:
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from e


def decode_protobuf(raw: bytes) -> dict[str, Any]:
    from kubesim import protobuf

    try:
        decoded: dict[str, Any] = protobuf.decode(raw)
        return decoded
    except protobuf.ProtobufError as e:
        raise errors.bad_request(f"unable to decode protobuf body: {e}") from e


async def delete_options(request: web.Request) -> dict[str, Any]:
    raw = await read_raw(request) if request.can_read_body else b""
    options: dict[str, Any] = {}
    if raw and request.content_type == PROTOBUF:
        options = decode_protobuf(raw)
    elif raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError as e:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {e}") from e
        if isinstance(parsed, dict):
            options = parsed
    q = request.query
    if q.get("propagationPolicy"):
        options["propagationPolicy"] = q["propagationPolicy"]
    if options.get("orphanDependents") is True and "propagationPolicy" not in options:
        options["propagationPolicy"] = "Orphan"
    return options


def dry_run(request: web.Request, options: dict[str, Any] | None = None) -> bool:
    values = request.query.getall("dryRun", [])
    if options and options.get("dryRun"):
        values = [*values, *options["dryRun"]]
    for v in values:
        if v != "All":
            raise errors.bad_request(f'dryRun: Unsupported value: "{v}": supported values: "All"')
    return bool(values)


def write_options(request: web.Request) -> WriteOptions:
    q = request.query
    validation = q.get("fieldValidation", "Warn") or "Warn"
    if validation not in ("Ignore", "Warn", "Strict"):
        raise errors.bad_request(
            f'fieldValidation: Unsupported value: "{validation}": supported values: "Ignore", '
            '"Strict", "Warn"'
        )
    manager = (
        q.get("fieldManager")
        or request.headers.get("User-Agent", "unknown").split("/")[0]
        or "unknown"
    )
    force = flag(request, "force")
    return WriteOptions(
        manager=manager, field_validation=validation, dry_run=dry_run(request), force=force
    )
