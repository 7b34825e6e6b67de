"""One table of REST routes: it registers the handlers and generates the OpenAPI document, so the two
cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str = "string"  # OpenAPI scalar type
    description: str = ""
    required: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    auth: bool = False
    query: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None  # JSON schema of a JSON body
    multipart: bool = False
    responses: dict[int, str] = field(default_factory=dict)


# "{name}" or "{name:regex}", where the regex may itself hold "{m,n}" repetitions.
_PATH_PARAM = re.compile(r"\{(\w+)(?::(?:[^{}]|\{[^{}]*\})+)?\}")


def openapi_path(path: str) -> str:
    """aiohttp's ``/api/items/{item_id:\\d+}`` as OpenAPI's ``/api/items/{item_id}``."""
    return _PATH_PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def register(app: web.Application, routes: list[Route]) -> None:
    for r in routes:
        app.router.add_route(r.method, r.path, r.handler)


ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
        "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}},
}


def openapi(routes: list[Route], *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "tags": [r.tag], "operationId": r.handler.__name__}
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer" if name.endswith("_id") else "string"}}
            for name in _PATH_PARAM.findall(r.path)
        ]
        params += [{"name": p.name, "in": "query", "required": p.required, "description": p.description,
                    "schema": {"type": p.type}} for p in r.query]
        if params:
            op["parameters"] = params
        if r.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": r.body}}}
        elif r.multipart:
            op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "properties": {"photo": {"type": "array", "items": {
                    "type": "string", "format": "binary"}}}}}}}
        responses: dict[str, Any] = {str(code): {"description": text} for code, text in
                                     (r.responses or {200: "OK"}).items()}
        responses["default"] = {"description": "Error", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
        op["responses"] = responses
        if r.auth:
            op["security"] = [{"session": []}, {"bearer": []}]
        paths.setdefault(openapi_path(r.path), {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"securitySchemes": {
            "session": {"type": "apiKey", "in": "cookie", "name": "billi_session"},
            "bearer": {"type": "http", "scheme": "bearer"},
        }},
    }
