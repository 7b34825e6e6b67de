"""One table of REST routes: it registers the handlers and generates the OpenAPI document, so the two
cannot drift apart.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    type: str = "string"  # OpenAPI scalar type
    description: str = ""
    required: bool = False
    bounds: tuple[float, float] | None = None  # the least and greatest value the server accepts


class Access(Enum):
    """Who may use a route (or a chat event), said once beside it so a test can hold every handler to it.

    The resource is the one the path's id names; a refused caller learns nothing about it (401 with no session,
    403 or 404 with one).
    """

    ANYONE = "anyone"  # no session needed: public pages and data, log-in, sign-up, links carrying their own ticket
    PERSON = "person"  # any logged-in person (wish an item, ask about it)
    SELF = "self"  # the logged-in person's own things; the path names no one else's
    OWNER = "owner"  # the owner of the item (and its photos) in the path
    PARTY = "party"  # one of the two people of the contract in the path
    MEMBER = "member"  # a member of the chat room in the path
    AUTHOR = "author"  # whoever wrote the review in the path
    REVIEWED = "reviewed"  # whom the review in the path is about (their one reply)
    OPERATOR = "operator"  # whoever runs the service (metrics)

    @property
    def needs_login(self) -> bool:
        return self not in (Access.ANYONE, Access.OPERATOR)


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    access: Access = field(kw_only=True)  # required: no route without a declared policy
    query: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None  # JSON schema of a JSON body
    multipart: bool = False
    responses: dict[int, str] = field(default_factory=dict)

    @property
    def auth(self) -> bool:
        """Whether a session is needed at all (the rest of the policy is the handler's and the market's to keep)."""
        return self.access.needs_login

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)


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


def _bounds(bounds: tuple[float, float] | None) -> dict[str, float]:
    return {"minimum": bounds[0], "maximum": bounds[1]} if bounds else {}


def openapi(routes: list[Route], *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in routes:
        op: dict[str, Any] = {"summary": r.summary, "tags": [r.tag], "operationId": r.handler.__name__,
                              "x-access": r.access.value}
        params: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "integer" if name.endswith("_id") else "string"}}
            for name in r.path_params
        ]
        params += [{"name": p.name, "in": "query", "required": p.required, "description": p.description,
                    "schema": {"type": p.type, **_bounds(p.bounds)}} for p in r.query]
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
