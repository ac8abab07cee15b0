"""HTTP routes: thin. Parse, call the service, shape the response."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from joulegate.server.auth import admit_tokens, authenticate
from joulegate.server.completions import as_text_completion
from joulegate.server.completions_protocol import CompletionRequest, TextCompletionResponse
from joulegate.server.embeddings import EmbeddingList, EmbeddingRequest, create_embeddings
from joulegate.server.gateway import Gateway
from joulegate.server.openapi import json_body
from joulegate.server.planning import AUTO, model_not_found, token_cost
from joulegate.server.protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    Health,
    Model,
    ModelList,
)
from joulegate.server.responses import as_response
from joulegate.server.responses_protocol import ResponseObject, ResponsesRequest, chat_request
from joulegate.server.serving import ChatService, Outcome

# A request body model; each route parses its own.
_Body = TypeVar("_Body", bound=BaseModel)
_T = TypeVar("_T")

router = APIRouter()


def _service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat
    return service


async def _parse(request: Request, model: type[_Body]) -> _Body:
    """Validate the body as JSON whatever the content type says: ``curl -d`` sends
    form-urlencoded by default, and OpenAI's own API accepts that too."""
    raw = await request.body()
    return _validated(lambda: model.model_validate_json(raw))


def _validated(build: Callable[[], _T]) -> _T:
    """``build()``, with a validation error answered as a bad body is: a 400 naming the
    field (``error_handlers``)."""
    try:
        return build()
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


def _respond(outcome: Outcome) -> Response:
    """The service's answer: JSON, or server-sent events that no proxy may buffer."""
    if outcome.stream is not None:
        return StreamingResponse(
            outcome.stream,
            media_type="text/event-stream",
            headers={**outcome.headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    return JSONResponse(outcome.body, headers=outcome.headers)


# What every generating route may answer besides its own 200.
_GENERATION_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such model"},
    502: {"description": "The upstream tier failed"},
    503: {"description": "No tier is available"},
    504: {"description": "The upstream tier timed out"},
}


def _generation_route(
    path: str, body: type[BaseModel], note: str, answer: type[BaseModel], description: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The decorator for a route that generates: its body is parsed by hand (see _parse), so
    FastAPI is told its schema here, and the 200 may be JSON or server-sent events."""
    return router.post(
        path,
        response_model=None,
        openapi_extra=json_body(body, note),
        responses={
            200: {
                "model": answer,
                "description": description,
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            },
            **_GENERATION_ERRORS,
        },
    )


async def _generate(
    request: Request,
    model: type[_Body],
    to_chat: Callable[[ChatService, _Body], ChatCompletionRequest],
) -> tuple[Outcome, _Body]:
    """Run a request on the chat pipeline, whatever its format: authenticate, parse, turn it
    into a chat request, admit its tokens against the key's limit, create. Every generating
    route shares these steps so that none can skip one (auth before parsing, the TPM limit
    before any work); the caller rewrites the outcome in its own format."""
    service = _service(request)
    key = await authenticate(request, service.gw.keys, request.app.state.auth_required)
    body = await _parse(request, model)
    chat = _validated(lambda: to_chat(service, body))
    await admit_tokens(request, key, lambda: token_cost(service.gw, chat))
    return await service.create(chat, key=key), body


_AS_JSON = "Sent as JSON, whatever the content type."


@_generation_route(
    "/v1/chat/completions",
    ChatCompletionRequest,
    _AS_JSON,
    ChatCompletionResponse,
    "The completion; with `stream: true`, server-sent chunks.",
)
async def chat_completions(request: Request) -> Response:
    outcome, _ = await _generate(request, ChatCompletionRequest, lambda _, body: body)
    return _respond(outcome)


# The other endpoints OpenAI clients call. Completions and responses run on the chat
# pipeline (so routing, budgets, metering and the ledger apply) and are rewritten in their
# own format; embeddings are metered and recorded the same way.
@_generation_route(
    "/v1/completions",
    CompletionRequest,
    _AS_JSON,
    TextCompletionResponse,
    "The completion; with `stream: true`, server-sent chunks.",
)
async def completions(request: Request) -> Response:
    outcome, _ = await _generate(
        request,
        CompletionRequest,
        lambda service, body: body.chat_request(service.gw.settings.server.max_tokens),
    )
    return _respond(as_text_completion(outcome))


@_generation_route(
    "/v1/responses",
    ResponsesRequest,
    "Stateless: send the whole conversation.",
    ResponseObject,
    "The response; with `stream: true`, the Responses API's events.",
)
async def responses(request: Request) -> Response:
    outcome, body = await _generate(request, ResponsesRequest, lambda _, body: chat_request(body))
    return _respond(as_response(outcome, body))


@router.post(
    "/v1/embeddings",
    response_model=None,
    openapi_extra=json_body(EmbeddingRequest, _AS_JSON),
    responses={200: {"model": EmbeddingList}, **_GENERATION_ERRORS},
)
async def embeddings(request: Request) -> Response:
    service = _service(request)
    key = await authenticate(request, service.gw.keys, request.app.state.auth_required)
    body = await _parse(request, EmbeddingRequest)
    await admit_tokens(request, key, body.token_estimate)
    return _respond(await create_embeddings(service, body, key))


def _models(gw: Gateway) -> list[dict[str, Any]]:
    created = int(time.time())
    data = [{"id": AUTO, "object": "model", "created": created, "owned_by": "joulegate"}]
    data += [
        {
            "id": t.public_id,
            "object": "model",
            "created": created,
            "owned_by": f"joulegate:{t.settings.kind}",
        }
        for t in gw.tiers
    ]
    return data


@router.get("/v1/models", responses={200: {"model": ModelList}})
async def list_models(request: Request) -> dict[str, object]:
    return {"object": "list", "data": _models(_service(request).gw)}


# Model ids contain '/' (``embedded/gemma-3-270m``), hence the path converter.
@router.get(
    "/v1/models/{model_id:path}",
    responses={200: {"model": Model}, 404: {"description": "No such model"}},
)
async def retrieve_model(model_id: str, request: Request) -> dict[str, Any]:
    gw = _service(request).gw
    tier = gw.find_model(model_id)
    wanted = AUTO if model_id == AUTO else tier.public_id if tier is not None else None
    for model in _models(gw):
        if model["id"] == wanted:
            return model
    raise model_not_found(gw, model_id)


@router.get("/health", responses={200: {"model": Health}, 503: {"model": Health}})
async def health(request: Request) -> JSONResponse:
    gw = _service(request).gw
    tiers = {t.name: await t.backend.health() for t in gw.tiers}
    ok = any(tiers.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "tiers": tiers, "sensor": gw.meter.sensor.name},
        status_code=200 if ok else 503,
    )
