"""What every tier looks like to the rest of the gateway.

A backend turns chat parameters into a stream of events. Everything else (routing,
metering, the ledger, HTTP) sits outside and only sees these types, so an embedded
llama.cpp model and a remote vLLM cluster are interchangeable.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ChatParams:
    """A validated chat request, independent of HTTP."""

    messages: list[dict[str, Any]]
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    # Other OpenAI parameters an upstream may understand; passed through untouched.
    extra: dict[str, Any] = field(default_factory=dict)
    # Ask for the answer's token log-probs in ``Finish.logprobs`` (a cascade's confidence);
    # backends that cannot give them leave it None.
    want_logprobs: bool = False
    # Set for a plain-text completion (``/v1/completions``, ``Backend.complete_text``): the
    # model continues this text as it is, with no chat frame. ``messages`` then holds it as
    # one user message, so routing and budget bounds read it like any prompt.
    prompt: str | None = None


def message_text(message: dict[str, Any]) -> str:
    """The text of a chat message whose content is a string or a list of parts.

    Only ``text`` parts count: this is what a model reads of the message, so the prompt
    frame, token estimates and the router all measure the same thing.
    """
    content = message.get("content")
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    )


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # Of ``completion_tokens``, those a reasoning model spent thinking (its
    # ``reasoning_content``): already counted in ``completion_tokens``, as OpenAI and
    # DeepSeek count them, and metered like any output token.
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Started:
    """The backend began work on this request, after waiting its turn.

    Only backends that queue (``Backend.queues``) send it: the meter then charges a
    request for the device only from this moment, not while it waited behind others.
    """


@dataclass(frozen=True)
class TextDelta:
    text: str
    # With ``ChatParams.want_logprobs``: the log-probs of the tokens sampled since the
    # previous delta, so a cascade can decide on a streamed answer's first tokens before
    # it ends. Their concatenation is a prefix of ``Finish.logprobs``. None: not available.
    logprobs: tuple[float, ...] | None = None
    # What else an upstream's chunk carried, passed through to the client as sent
    # (``None``: nothing). ``extra``: the delta's fields besides ``content`` and ``role``
    # (``tool_calls`` fragments, ``reasoning_content``, ``refusal``, ...). ``choice_extra``:
    # the choice's besides ``index``/``delta``/``finish_reason`` (the OpenAI ``logprobs``
    # object, ...). ``chunk_extra``: the chunk's besides the ids the gateway rewrites
    # (``system_fingerprint``, ...). A delta may carry no text, only these.
    extra: dict[str, Any] | None = None
    choice_extra: dict[str, Any] | None = None
    chunk_extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class Finish:
    finish_reason: str
    usage: Usage
    # Log-probability of each generated token, in order, when ``ChatParams.want_logprobs``
    # asked for them and the backend can read them; one per completion token.
    logprobs: tuple[float, ...] | None = None
    # Passed through like ``TextDelta``'s: the final choice's other fields, the last chunk's,
    # and the usage fields besides the token counts (``completion_tokens_details``, ...).
    choice_extra: dict[str, Any] | None = None
    chunk_extra: dict[str, Any] | None = None
    usage_extra: dict[str, Any] | None = None


StreamEvent = Started | TextDelta | Finish


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    usage: Usage
    # The passthrough fields of the stream, assembled: the message's besides ``content``
    # (``tool_calls`` merged from their fragments, ``reasoning_content`` joined, ...), and
    # the choice's, chunk's and usage's as in ``Finish``.
    message_extra: dict[str, Any] | None = None
    choice_extra: dict[str, Any] | None = None
    chunk_extra: dict[str, Any] | None = None
    usage_extra: dict[str, Any] | None = None
    # ``Finish.logprobs``, when ``ChatParams.want_logprobs`` asked for them.
    logprobs: tuple[float, ...] | None = None


@dataclass(frozen=True)
class EmbedParams:
    """A validated embeddings request, independent of HTTP."""

    inputs: list[str]
    # "float" or "base64" (little-endian float32), as OpenAI's API; the official client
    # asks for base64 unless told otherwise.
    encoding_format: str = "float"
    dimensions: int | None = None
    # Other OpenAI parameters (``user``, ...) an upstream may understand.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Embeddings:
    """The vectors of an ``EmbedParams``, in input order, and the tokens the model read.

    A vector is a list of floats, or the base64 string an upstream sent when asked for it.
    """

    vectors: list[list[float] | str]
    prompt_tokens: int


class BackendError(Exception):
    """Base of the errors a backend raises; the server maps each to an OpenAI error."""

    status_code = 502
    error_type = "api_error"
    code: str | None = "upstream_error"
    # True when another tier may answer instead (nothing reached the client yet).
    retryable = True


class RequestRejected(BackendError):
    """The request itself is at fault (HTTP 400): another tier would refuse it too."""

    status_code = 400
    error_type = "invalid_request_error"
    code = "invalid_request"
    retryable = False


class PromptTooLong(RequestRejected):
    code = "context_length_exceeded"


class BackendUnavailable(BackendError):
    status_code = 503
    code = "tier_unavailable"


class BackendTimeout(BackendError):
    status_code = 504
    code = "upstream_timeout"


class Backend(abc.ABC):
    """One tier's way of reaching its model."""

    tier: str
    model: str
    # True when requests wait for one another on a shared device (and send ``Started``).
    queues: bool = False

    @abc.abstractmethod
    def stream(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        """Yield ``Started`` (if the backend queues), text deltas, then exactly one ``Finish``.

        Closing the iterator early (client gone) must stop the generation.
        """

    def complete_text(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        """Like ``stream``, but continue ``params.prompt`` as plain text (``/v1/completions``).

        A base model is at its best here: it sees exactly the client's text, not a chat frame.
        """
        raise RequestRejected(f"tier {self.tier!r} does not offer text completions")

    async def embed(self, params: EmbedParams, on_start: Callable[[], None]) -> Embeddings:
        """One vector per input, in order. A backend that queues calls ``on_start`` when its
        turn comes (what ``Started`` says in a stream), so the meter charges no waiting."""
        raise RequestRejected(f"tier {self.tier!r} does not offer embeddings")

    async def health(self) -> bool:
        return True

    async def start(self) -> None:
        """Load models or open connection pools; called once at server start."""

    async def aclose(self) -> None:
        """Release what ``start`` took."""
