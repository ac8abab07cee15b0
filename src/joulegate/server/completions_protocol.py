"""``/v1/completions``, OpenAI's plain-text API, as joulegate reads and answers it.

A text completion runs through the chat pipeline (``ChatService``), so routing, budgets,
metering and the ledger are the chat path's own: :meth:`CompletionRequest.chat_request`
turns the request into a :class:`TextCompletionRequest`, a chat request that also carries
the prompt. Its ``messages`` hold the prompt as one user message, which is what the router,
the budget bounds and the rate limiter read; the backend reads ``prompt`` itself and
continues it as it is (``Backend.complete_text``), with no chat frame.

Parameters joulegate does not offer on this endpoint (``echo``, ``suffix``, ``best_of`` >
1, ``logprobs``, several prompts, token-id prompts) are a 400 that names them, never
silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from joulegate.server.errors import APIError
from joulegate.server.protocol import (
    BoundedBody,
    ChatCompletionRequest,
    JoulegateOptions,
    StreamOptions,
)

__all__ = ["CompletionRequest", "TextCompletionRequest", "TextCompletionResponse"]

# OpenAI's default ``max_tokens`` for this endpoint (the chat endpoint has none).
DEFAULT_MAX_TOKENS = 16


class TextCompletionRequest(ChatCompletionRequest):
    """A ``/v1/completions`` request on its way through the chat pipeline."""

    prompt: str


class CompletionRequest(BoundedBody):
    """The body of ``POST /v1/completions``. Unknown fields (``presence_penalty``,
    ``logit_bias``, ``user``, ...) are passed to an upstream tier, as on the chat route."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    prompt: str | list[Any] = Field(description="One text prompt (or a list of exactly one).")
    # None: OpenAI's default for this endpoint, 16 (see ``chat_request``).
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int | None = Field(default=None, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    joulegate: JoulegateOptions | None = None
    # Accepted only at their neutral values (see ``chat_request``).
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = Field(default=None, ge=1)
    logprobs: int | None = Field(default=None, ge=0, le=5)

    def chat_request(self, max_tokens_cap: int | None = None) -> TextCompletionRequest:
        """The request as the chat pipeline runs it; a 400 for what it cannot do, and a
        ``ValidationError`` for what the chat request's own checks refuse (``stop``, ...).

        ``max_tokens_cap`` (``[server] max_tokens``) lowers the default of 16, which the
        client did not ask for; a ``max_tokens`` the client sent above it is still a 400.
        """
        _refuse("echo", self.echo, "the answer does not repeat the prompt")
        _refuse("suffix", self.suffix is not None, "insertion (fill-in-the-middle) is not offered")
        _refuse("best_of", (self.best_of or 1) > 1, "one completion is generated per request")
        _refuse(
            "logprobs",
            bool(self.logprobs),
            "use /v1/chat/completions with logprobs, which every tier that has the capability "
            "answers",
        )
        prompt = self._prompt_text()
        default = min(DEFAULT_MAX_TOKENS, max_tokens_cap or DEFAULT_MAX_TOKENS)
        fields: dict[str, Any] = {
            **(self.model_extra or {}),
            "model": self.model,
            "prompt": prompt,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": self.max_tokens or default,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "seed": self.seed,
            "stream": self.stream,
            "stream_options": self.stream_options,
            "joulegate": self.joulegate,
        }
        return TextCompletionRequest.model_validate(fields)

    def _prompt_text(self) -> str:
        prompt = self.prompt
        if isinstance(prompt, list):
            if len(prompt) != 1:
                raise APIError(
                    400,
                    "Send one prompt per request: joulegate generates one completion each.",
                    param="prompt",
                    code="unsupported_parameter",
                )
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise APIError(
                400,
                "Send the prompt as text: token-id prompts depend on a tokenizer, and each "
                "tier's model has its own.",
                param="prompt",
                code="unsupported_parameter",
            )
        return prompt


def _refuse(param: str, asked: bool, why: str) -> None:
    if asked:
        raise APIError(
            400,
            f"'{param}' is not supported on /v1/completions by joulegate: {why} "
            "(docs/compatibility.md).",
            param=param,
            code="unsupported_parameter",
        )


# -- the answer, as the OpenAPI document describes it -----------------------------------------


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class TextChoice(_Open):
    text: str
    index: int
    logprobs: dict[str, Any] | None = None
    finish_reason: str | None


class TextCompletionResponse(_Open):
    """A ``text_completion``; ``joulegate`` is the receipt, as on chat completions."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[TextChoice]
    usage: dict[str, Any]
    joulegate: dict[str, Any]
