"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``.

Written by hand next to the routes (``http.routes``) and checked
against the running server by ``tests/integration/test_http_api.py``, which
validates every response body it gets against the schema given here for
that path, method and status (``default`` covers the error statuses every
operation can return: 400, 403, 405, 408, 413, 431, 503).
"""

from __future__ import annotations

import json

from .. import __version__


def _json(schema_ref: str, description: str) -> dict[str, object]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}},
    }


_ERROR = _json("Error", "An error: `{\"error\": message, ...}`")
_KEY_NOT_FOUND = _json("KeyNotFound", "No such key (or it expired)")
_PREFLIGHT = {"description": "CORS preflight / allowed methods (`Allow` header); no body"}
# A SCAN cursor, or "<scan cursor>-<keys of its first bucket already listed>",
# or (a prefix listing served from the sorted key index) "k<hex of the last key>".
_CURSOR_PATTERN = "^([0-9]+(-[0-9]+)?|k([0-9a-f]{2})*)$"
# Where a /range page ends: "k" and the hex of the last key listed.
_KEY_CURSOR_PATTERN = "^k([0-9a-f]{2})*$"

_KEY_PARAMETER = {
    "name": "key",
    "in": "path",
    "required": True,
    "description": "The key, percent-decoded (`a%2Fb` is the key `a/b`; any byte may be encoded).",
    "schema": {"type": "string", "minLength": 1},
}


def _query(name: str, description: str, schema: dict[str, object]) -> dict[str, object]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def _text_get(description: str, media_type: str, schema: dict[str, object]) -> dict[str, object]:
    return {
        "get": {
            "summary": description,
            "responses": {
                "200": {"description": description, "content": {media_type: {"schema": schema}}},
                "default": _ERROR,
            },
        },
        "options": {"summary": "Allowed methods", "responses": {"204": _PREFLIGHT}},
    }


OPENAPI: dict[str, object] = {
    "openapi": "3.1.0",
    "info": {
        "title": "trio_kv HTTP API",
        "version": __version__,
        "description": (
            "The key-value store over HTTP/1.1 with JSON values, plus metrics and health checks. "
            "Values stored over HTTP are the compact JSON text of the request body; a value set over "
            "another protocol that is not valid JSON is returned as a JSON string. CORS is opt-in: "
            "responses carry `Access-Control-*` headers only for the origins listed in "
            "`--http-cors-origins` (`*`: every origin, on every response)."
        ),
    },
    "paths": {
        "/key/{key}": {
            "parameters": [_KEY_PARAMETER],
            "get": {
                "summary": "Read a key",
                "responses": {"200": _json("KeyValue", "The key and its value"), "404": _KEY_NOT_FOUND, "default": _ERROR},
            },
            "put": {
                "summary": "Store a JSON value",
                "parameters": [
                    _query("ttl", "Expire the key after this many seconds", {"type": "integer", "minimum": 1}),
                ],
                "requestBody": {
                    "required": True,
                    "description": "Any JSON value (object, array, string, number, true, false, null)",
                    "content": {"application/json": {"schema": {}}},
                },
                "responses": {
                    "200": _json("Stored", "Stored"),
                    "400": _json("Error", "Invalid JSON, or a bad ttl"),
                    "413": _json("Error", "Body larger than --http-max-body-bytes"),
                    "default": _ERROR,
                },
            },
            "delete": {
                "summary": "Delete a key",
                "responses": {"200": _json("Deleted", "Deleted"), "404": _KEY_NOT_FOUND, "default": _ERROR},
            },
            "options": {"summary": "Allowed methods", "responses": {"204": _PREFLIGHT}},
        },
        "/keys": {
            "get": {
                "summary": "List keys, one page at a time (SCAN)",
                "parameters": [
                    _query("pattern", "Glob (Redis syntax: * ? [a-z] \\x)", {"type": "string"}),
                    _query("prefix", "Only keys starting with this", {"type": "string"}),
                    _query("limit", "Most keys on the page (default 1000)", {"type": "integer", "minimum": 1, "maximum": 10000}),
                    _query("cursor", "The cursor of the previous page (start: 0 or absent)", {"type": "string", "pattern": _CURSOR_PATTERN}),
                ],
                "responses": {"200": _json("KeyList", "One page of keys"), "default": _ERROR},
            },
            "options": {"summary": "Allowed methods", "responses": {"204": _PREFLIGHT}},
        },
        "/range": {
            "get": {
                "summary": "Keys and values in byte order of the keys, one page at a time (KRANGE over the sorted key index)",
                "parameters": [
                    _query("start", "First key (inclusive); absent or empty: from the first key", {"type": "string"}),
                    _query("end", "Last key (exclusive); absent or empty: to the last key", {"type": "string"}),
                    _query("limit", "Most items on the page (default 1000)", {"type": "integer", "minimum": 1, "maximum": 10000}),
                    _query(
                        "cursor", "The cursor of the previous page (the page starts after its key; start is then ignored)",
                        {"type": "string", "pattern": _KEY_CURSOR_PATTERN},
                    ),
                ],
                "responses": {
                    "200": _json("RangePage", "One page of keys and values"),
                    "400": _json("Error", "A bad limit or cursor, or the sorted key index is off (--sorted-index no)"),
                    "default": _ERROR,
                },
            },
            "options": {"summary": "Allowed methods", "responses": {"204": _PREFLIGHT}},
        },
        "/metrics": _text_get(
            "Prometheus metrics (text exposition format 0.0.4)", "text/plain; version=0.0.4", {"type": "string"}
        ),
        "/healthz": _text_get("Alive", "application/json", {"$ref": "#/components/schemas/Health"}),
        "/readyz": {
            "get": {
                "summary": "Ready: recovery finished, accepting clients and writes",
                "responses": {
                    "200": _json("Readiness", "Ready"),
                    "503": _json("Readiness", "Not ready (loading, shutting down)"),
                    "default": _ERROR,
                },
            },
            "options": {"summary": "Allowed methods", "responses": {"204": _PREFLIGHT}},
        },
        "/openapi.json": _text_get("This document", "application/json", {"type": "object"}),
    },
    "components": {
        "schemas": {
            "KeyValue": {
                "type": "object",
                "required": ["key", "value"],
                "properties": {"key": {"type": "string"}, "value": {}},
                "additionalProperties": False,
            },
            "Stored": {
                "type": "object",
                "required": ["success", "key", "value"],
                "properties": {"success": {"const": True}, "key": {"type": "string"}, "value": {}},
                "additionalProperties": False,
            },
            "Deleted": {
                "type": "object",
                "required": ["success", "key"],
                "properties": {"success": {"const": True}, "key": {"type": "string"}},
                "additionalProperties": False,
            },
            "KeyNotFound": {
                "type": "object",
                "required": ["error", "key"],
                "properties": {"error": {"const": "Key not found"}, "key": {"type": "string"}},
                "additionalProperties": False,
            },
            "KeyList": {
                "type": "object",
                "required": ["totalKeys", "keys", "cursor"],
                "properties": {
                    "totalKeys": {"type": "integer", "minimum": 0, "description": "Keys in the whole store (DBSIZE)"},
                    "keys": {"type": "array", "items": {"type": "string"}, "description": "At most `limit` keys"},
                    "cursor": {
                        "type": ["string", "null"],
                        "pattern": _CURSOR_PATTERN,
                        "description": "Pass as ?cursor= for the next page; null on the last page",
                    },
                },
                "additionalProperties": False,
            },
            "RangePage": {
                "type": "object",
                "required": ["items", "cursor"],
                "properties": {
                    "items": {
                        "type": "array",
                        "description": "At most `limit` items, in byte order of the keys",
                        "items": {
                            "type": "object",
                            "required": ["key", "value"],
                            "properties": {
                                "key": {"type": "string"},
                                "value": {"description": "As GET /key/{key}; null for a value that is not a string (a hash)"},
                            },
                            "additionalProperties": False,
                        },
                    },
                    "cursor": {
                        "type": ["string", "null"],
                        "pattern": _KEY_CURSOR_PATTERN,
                        "description": "Pass as ?cursor= (with the same end) for the next page; null on the last page",
                    },
                },
                "additionalProperties": False,
            },
            "Health": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"const": "ok"}},
                "additionalProperties": False,
            },
            "Readiness": {
                "type": "object",
                "required": ["status"],
                "properties": {"status": {"enum": ["ready", "not ready"]}, "reason": {"type": "string"}},
                "additionalProperties": False,
            },
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {"error": {"type": "string"}},
            },
        }
    },
}

OPENAPI_JSON = json.dumps(OPENAPI, separators=(",", ":")).encode()
