"""The OpenAPI 3 document of /api/v1; a test checks it against the routes actually served."""

from __future__ import annotations

from typing import Any

from aiohttp import web

routes = web.RouteTableDef()

_ERROR = {"$ref": "#/components/schemas/Error"}
_ENV = {"$ref": "#/components/schemas/Environment"}


def _responses(ok: dict[str, Any], *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = dict(ok)
    for code in (401, *codes):
        out[str(code)] = {
            "description": "error",
            "content": {"application/json": {"schema": _ERROR}},
        }
    return out


def _ok(schema: dict[str, Any], code: str = "200") -> dict[str, Any]:
    return {code: {"description": "OK", "content": {"application/json": {"schema": schema}}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_ENV_PARAM = {
    "name": "env",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 40},
}
_APP_PARAM = {
    "name": "app",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 20},
}
_WRITE = (400, 403, 404, 409, 413, 415, 422, 503)

DOCUMENT: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "Kollie API",
        "version": "1",
        "description": "Ephemeral test environments on Kubernetes with Flux.",
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "message"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"}},
            },
            "AppStatus": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "prefix": {"type": "string", "nullable": True},
                    "state": {
                        "type": "string",
                        "enum": ["Ready", "Progressing", "Failed", "Suspended", "Deleting"],
                    },
                    "ready": {"type": "boolean", "nullable": True},
                    "reason": {"type": "string"},
                    "message": {"type": "string"},
                    "imageTag": {"type": "string", "nullable": True},
                    "imageDigest": {"type": "string", "nullable": True},
                    "revision": {"type": "string", "nullable": True},
                    "urls": {"type": "array", "items": {"type": "string"}},
                    "lastTransitionTime": {"type": "string", "nullable": True},
                    "conditions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "object": {"type": "string"},
                                "type": {"type": "string"},
                                "status": {"type": "string"},
                                "reason": {"type": "string"},
                                "message": {"type": "string"},
                                "lastTransitionTime": {"type": "string", "nullable": True},
                            },
                        },
                    },
                    "diagnosis": {
                        "allOf": [{"$ref": "#/components/schemas/Diagnosis"}],
                        "nullable": True,
                        "description": "Why the app is not Ready (null when it is).",
                    },
                },
            },
            "Diagnosis": {
                "type": "object",
                "required": ["summary", "cause", "steps", "commands"],
                "properties": {
                    "summary": {
                        "type": "string",
                        "description": "The first link that explains the app's state, in words.",
                    },
                    "cause": {
                        "type": "object",
                        "required": ["kind", "namespace", "name", "reason", "message"],
                        "properties": {
                            "kind": {
                                "type": "string",
                                "enum": [
                                    "ImageRepository",
                                    "ImagePolicy",
                                    "GitRepository",
                                    "Kustomization",
                                    "HelmRelease",
                                    "Environment",
                                ],
                            },
                            "namespace": {"type": "string"},
                            "name": {"type": "string"},
                            "reason": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                    "steps": {
                        "type": "array",
                        "description": "The chain as far as it was followed, in order.",
                        "items": {
                            "type": "object",
                            "required": ["kind", "namespace", "name", "ok", "summary"],
                            "properties": {
                                "kind": {"type": "string"},
                                "namespace": {"type": "string"},
                                "name": {"type": "string"},
                                "ok": {
                                    "type": "boolean",
                                    "nullable": True,
                                    "description": "null: under way, or unknown to Kollie",
                                },
                                "summary": {"type": "string"},
                            },
                        },
                    },
                    "commands": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "flux and kubectl commands to look further.",
                    },
                },
            },
            "Environment": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "owner": {"type": "string", "nullable": True},
                    "createdAt": {"type": "string", "format": "date-time"},
                    "uptime": {
                        "type": "object",
                        "properties": {
                            "since": {"type": "string"},
                            "until": {"type": "string"},
                            "schedule": {"type": "string"},
                        },
                    },
                    "ready": {"type": "boolean"},
                    "keep": {"type": "boolean"},
                    "expiresAt": {"type": "string", "format": "date-time", "nullable": True},
                    "apps": {"type": "array", "items": {"$ref": "#/components/schemas/AppStatus"}},
                },
            },
            "EnvironmentRequest": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "apps": {
                        "type": "object",
                        "additionalProperties": {
                            "type": "object",
                            "properties": {"prefix": {"type": "string"}},
                        },
                    },
                    "bundle": {"type": "string"},
                    "uptime": {
                        "type": "object",
                        "properties": {
                            "hours": {"type": "number"},
                            "until": {"type": "string"},
                            "schedule": {"type": "string"},
                        },
                    },
                },
            },
            "AddApp": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": {"type": "string"}, "prefix": {"type": "string"}},
            },
            "Extend": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "hours": {"type": "number"},
                    "days": {"type": "number"},
                    "until": {"type": "string", "format": "date-time"},
                },
            },
            "List": {"type": "object", "properties": {"items": {"type": "array", "items": {}}}},
        },
    },
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/apps": {
            "get": {
                "summary": "The catalog's apps",
                "responses": _responses(_ok({"$ref": "#/components/schemas/List"})),
            }
        },
        "/api/v1/bundles": {
            "get": {
                "summary": "The catalog's bundles",
                "responses": _responses(_ok({"$ref": "#/components/schemas/List"})),
            }
        },
        "/api/v1/environments": {
            "get": {
                "summary": "All environments with per-app status",
                "responses": _responses(_ok({"$ref": "#/components/schemas/List"})),
            }
        },
        "/api/v1/environments/{env}": {
            "parameters": [_ENV_PARAM],
            "get": {
                "summary": "One environment; with wait=ready, block until every app is Ready",
                "parameters": [
                    {
                        "name": "wait",
                        "in": "query",
                        "schema": {"type": "string", "enum": ["ready"]},
                    },
                    {
                        "name": "timeout",
                        "in": "query",
                        "description": "seconds, at most KOLLIE_LIMIT_WAIT_SECONDS (default 3600)",
                        "schema": {"type": "number", "maximum": 3600},
                    },
                ],
                "responses": _responses(_ok(_ENV), 404, 408, 422, 429),
            },
            "put": {
                "summary": "Create or update an environment (idempotent)",
                "requestBody": _body({"$ref": "#/components/schemas/EnvironmentRequest"}),
                "responses": _responses({**_ok(_ENV), **_ok(_ENV, "201")}, *_WRITE, 429),
            },
            "delete": {
                "summary": "Delete an environment",
                "responses": _responses(_ok(_ERROR, "202"), 403, 404, 503),
            },
        },
        "/api/v1/environments/{env}/apps": {
            "parameters": [_ENV_PARAM],
            "post": {
                "summary": "Add an app or change its prefix",
                "requestBody": _body({"$ref": "#/components/schemas/AddApp"}),
                "responses": _responses(_ok(_ENV), *_WRITE),
            },
        },
        "/api/v1/environments/{env}/apps/{app}": {
            "parameters": [_ENV_PARAM, _APP_PARAM],
            "delete": {
                "summary": "Remove an app",
                "responses": _responses(_ok(_ENV), 403, 404, 409, 503),
            },
        },
        "/api/v1/environments/{env}/history": {
            "parameters": [_ENV_PARAM],
            "get": {
                "summary": "The audit trail: who changed what, how, newest first",
                "responses": _responses(_ok({"$ref": "#/components/schemas/List"}), 404),
            },
        },
        "/api/v1/environments/{env}/keep": {
            "parameters": [_ENV_PARAM],
            "put": {
                "summary": (
                    "Pin (or unpin) an environment so expiry never deletes it; owner or admin"
                ),
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["keep"],
                        "properties": {"keep": {"type": "boolean"}},
                    }
                ),
                "responses": _responses(_ok(_ENV), *_WRITE),
            },
        },
        "/api/v1/environments/{env}/uptime": {
            "parameters": [_ENV_PARAM],
            "put": {
                "summary": "Switch to a weekly schedule or to an end time",
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {
                            "schedule": {"type": "string"},
                            "until": {"type": "string"},
                            "hours": {"type": "number"},
                        },
                    }
                ),
                "responses": _responses(_ok(_ENV), *_WRITE),
            },
        },
        "/api/v1/environments/{env}/flux-branch": {
            "parameters": [_ENV_PARAM],
            "put": {
                "summary": (
                    "Build the apps from another branch of the Flux repository (null: the default)"
                ),
                "requestBody": _body(
                    {
                        "type": "object",
                        "required": ["branch"],
                        "properties": {"branch": {"type": "string", "nullable": True}},
                    }
                ),
                "responses": _responses(_ok(_ENV), *_WRITE),
            },
        },
        "/api/v1/environments/{env}/extend": {
            "parameters": [_ENV_PARAM],
            "post": {
                "summary": "Extend the uptime window",
                "requestBody": _body({"$ref": "#/components/schemas/Extend"}),
                "responses": _responses(_ok(_ENV), *_WRITE),
            },
        },
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": {"description": "OK"}},
            }
        },
    },
}


@routes.get("/api/v1/openapi.json", name="openapi")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)
