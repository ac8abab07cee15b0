"""The OpenAPI document, made honest, and ``/docs`` served from the package.

FastAPI's generated document would say less than the server does: the chat route reads its
body by hand (``curl -d`` sends form-urlencoded and must still work), so FastAPI sees no
request body; and every route with a parameter would claim a 422 that this server never
sends (validation errors are OpenAI-format 400s). Here the request models are declared by
reference (:func:`json_body`), the 422s become 400s, and the errors every route can answer
(401, 413, 429, 500, ...) are documented with OpenAI's error shape: the fuzzing test
(``tests/server/test_fuzz.py``) holds the server to this document.

``/docs`` is Swagger UI 5.35.0 (npm ``swagger-ui-dist``, Apache-2.0, vendored under
``static/docs/vendor/swagger-ui`` with its LICENSE and NOTICE): nothing comes from a CDN,
so it works on a machine with no internet.
"""

from __future__ import annotations

from functools import cache
from http import HTTPStatus
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from joulegate._static_files import package_file, static_response
from joulegate.server.protocol import ErrorResponse

__all__ = ["install", "json_body"]

_REF = "#/components/schemas/{model}"
_BODY_MODELS: dict[str, type[BaseModel]] = {}
_ERROR = {"$ref": _REF.format(model="ErrorResponse")}
# Statuses any operation can answer, and those only some can.
_ALWAYS = (400, 401, 429, 500)
_WITH_BODY = (413,)
_HEADERS_429 = {
    "Retry-After": {
        "description": "Seconds until a retry can succeed (absent for a lifetime budget).",
        "schema": {"type": "string"},
    },
    "x-ratelimit-limit-requests": {"schema": {"type": "string"}},
    "x-ratelimit-remaining-requests": {"schema": {"type": "string"}},
    "x-ratelimit-reset-requests": {"schema": {"type": "string"}},
    "x-ratelimit-limit-tokens": {"schema": {"type": "string"}},
    "x-ratelimit-remaining-tokens": {"schema": {"type": "string"}},
    "x-ratelimit-reset-tokens": {"schema": {"type": "string"}},
}


def json_body(model: type[BaseModel], description: str | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route that parses ``model`` from its body itself."""
    _BODY_MODELS[model.__name__] = model
    body: dict[str, Any] = {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}},
    }
    if description:
        body["description"] = description
    return {"requestBody": body}


def install(app: FastAPI) -> None:
    """Replace ``app.openapi`` with the honest document and mount ``/docs``."""
    app.include_router(_docs_router())

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            _add_models(doc, [*_BODY_MODELS.values(), ErrorResponse])
            _document_errors(doc)
            _drop_unused_schemas(doc)
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_models(doc: dict[str, Any], models: list[type[BaseModel]]) -> None:
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=_REF)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in top.get("$defs", {}).items():
        schemas.setdefault(name, schema)


def _error(status: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": HTTPStatus(status).phrase,
        "content": {"application/json": {"schema": _ERROR}},
    }
    if status == 429:
        out["headers"] = _HEADERS_429
    return out


def _document_errors(doc: dict[str, Any]) -> None:
    components = doc.setdefault("components", {})
    components.setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "A joulegate key (`joulegate keys create`); the reports need an "
        "admin key. Optional where auth is off (loopback, by default).",
    }
    doc["security"] = [{"bearer": []}, {}]
    for operations in doc.get("paths", {}).values():
        for method, op in operations.items():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            statuses = [*_ALWAYS, *(_WITH_BODY if method in ("post", "put", "patch") else ())]
            for status in statuses:
                responses.setdefault(str(status), _error(status))
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400 and "content" not in response:
                    response.update(_error(int(status)))


def _drop_unused_schemas(doc: dict[str, Any]) -> None:
    """FastAPI's 422 schemas stay behind once their responses are gone."""
    schemas = doc.get("components", {}).get("schemas", {})
    text = repr({k: v for k, v in doc.items() if k != "components"}) + repr(schemas)
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and text.count(_REF.format(model=name)) == 0:
            del schemas[name]


# -- /docs ------------------------------------------------------------------------------------


@cache
def _asset(name: str) -> bytes:
    return package_file("joulegate.server", ("static", "docs"), name)


def _docs_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    async def docs() -> Response:
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-cache"})

    @router.get("/docs/static/{path:path}")
    async def static(path: str) -> Response:
        return static_response(_asset, path, max_age=3600)

    return router
