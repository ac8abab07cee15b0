"""HTTP routes: thin. Parse, call the service, shape the response."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from joulegate.server.auth import authenticate
from joulegate.server.planning import AUTO
from joulegate.server.protocol import ChatCompletionRequest
from joulegate.server.serving import ChatService

router = APIRouter()


def _service(request: Request) -> ChatService:
    service: ChatService = request.app.state.chat
    return service


async def _parse(request: Request) -> ChatCompletionRequest:
    """Validate the body as JSON whatever the content type says: ``curl -d`` sends
    form-urlencoded by default, and OpenAI's own API accepts that too."""
    raw = await request.body()
    try:
        return ChatCompletionRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    service = _service(request)
    key = await authenticate(request, service.gw.keys, request.app.state.auth_required)
    body = await _parse(request)
    outcome = await service.create(body, key=key)
    if outcome.stream is not None:
        return StreamingResponse(
            outcome.stream,
            media_type="text/event-stream",
            headers={**outcome.headers, "cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    return JSONResponse(outcome.body, headers=outcome.headers)


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, object]:
    gw = _service(request).gw
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
    return {"object": "list", "data": data}


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    gw = _service(request).gw
    tiers = {t.name: await t.backend.health() for t in gw.tiers}
    ok = any(tiers.values())
    return JSONResponse(
        {"status": "ok" if ok else "degraded", "tiers": tiers, "sensor": gw.meter.sensor.name},
        status_code=200 if ok else 503,
    )
