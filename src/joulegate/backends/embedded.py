"""The embedded tier: a small GGUF model run by llama.cpp inside the gateway process.

A llama.cpp context is not thread-safe and holds one KV cache, so generations run one
at a time on a single dedicated worker thread. The event loop only waits on a queue fed
by that thread, so it keeps serving health checks, metrics and other tiers meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from prometheus_client import Counter

from joulegate._platform import vcpu_count
from joulegate.backends import _embedded_features as _features
from joulegate.backends import prompt_frame
from joulegate.backends._token_logprobs import SampledLogprobs
from joulegate.backends.base import (
    Backend,
    BackendError,
    ChatParams,
    Embeddings,
    EmbedParams,
    Finish,
    PromptTooLong,
    RequestRejected,
    Started,
    StreamEvent,
    TextDelta,
    Usage,
)
from joulegate.backends.model_files import ensure_embedded_model
from joulegate.backends.settings import EmbeddedSettings

_DONE = object()
log = logging.getLogger(__name__)

GENERATED_TOKENS = Counter(
    "joulegate_embedded_generated_tokens",
    "Tokens the embedded model actually generated (stops growing when a client disconnects)",
    ["tier"],
)


class EmbeddedFailure(BackendError):
    """llama.cpp itself failed: an internal error, and no other tier is tried blindly."""

    status_code = 500
    error_type = "server_error"
    code = "internal_error"


# A 270M base model at temperature 1.0 (OpenAI's default) wanders off; a low default
# keeps answers on topic. Clients that send a temperature get exactly what they ask for.
DEFAULT_TEMPERATURE = 0.2
DEFAULT_TOP_P = 0.95
REPEAT_PENALTY = 1.1
# Embeddings need a llama.cpp context of their own (made with ``embedding=True``), loaded
# on the first /v1/embeddings request, so a gateway that never embeds never pays for it:
# 1-2 s and about 320 MB, growing to about 570 MB once a batch has filled this many tokens
# (llama.cpp computes and keeps a vocabulary-wide output row for every input token, and
# Gemma's vocabulary has 262k entries: at 512 tokens it was over 1 GB). It is also the most
# tokens an input may have.
EMBED_N_CTX = 256


class _Counter:
    """A llama.cpp stopping criterion that counts sampled tokens and honours cancellation.

    llama-cpp-python calls it after every sampled token with the ids evaluated so far,
    which do not yet include that newest token: after the k-th sample it sees
    ``n_prompt + k - 1`` ids. So the generated count is the longest list seen, less the
    prompt, plus one (an end-of-generation token counts: it cost the same compute).
    """

    def __init__(self, n_prompt: int, cancel: threading.Event) -> None:
        self.n_prompt = n_prompt
        self.generated = 0
        self.cancel = cancel

    def __call__(self, input_ids: Any, logits: Any) -> bool:
        self.generated = max(self.generated, len(input_ids) - self.n_prompt + 1)
        return self.cancel.is_set()


class EmbeddedBackend(Backend):
    queues = True

    def __init__(self, tier: str, model: str, settings: EmbeddedSettings | None = None) -> None:
        settings = settings or EmbeddedSettings()
        self.tier = tier
        self.model = model
        self._model_path = settings.model_path
        self.n_ctx = settings.n_ctx
        self.n_threads = settings.n_threads or vcpu_count()
        self.n_batch = settings.n_batch
        self.default_max_tokens = settings.default_max_tokens
        self._llm: Any = None
        self._embedder: Any = None  # the embedding context, loaded on first use
        self._logprobs: SampledLogprobs | None = None  # made on first use, per loaded model
        # One worker thread is the serialisation: llama.cpp never sees two callers.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{tier}")

    async def start(self) -> None:
        if self._llm is None:
            loop = asyncio.get_running_loop()
            self._llm = await loop.run_in_executor(self._executor, self._load)

    def _load(self, **options: Any) -> Any:
        """The model in a new context; ``options`` override the generation context's."""
        from llama_cpp import Llama

        from joulegate.backends._llama_log import route_llama_logs

        route_llama_logs()  # llama.cpp's notices go to logging, not the user's terminal
        path = ensure_embedded_model(self._model_path)
        context: dict[str, Any] = {"n_ctx": self.n_ctx, "n_batch": self.n_batch, **options}
        return Llama(
            model_path=str(path),
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            verbose=False,
            **context,
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        for llm in (self._llm, self._embedder):
            if llm is not None:
                llm.close()
        self._llm = self._embedder = None

    async def stream(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        if self._llm is None:
            raise BackendError("embedded model is not loaded")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: object) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        future = loop.run_in_executor(self._executor, self._generate, params, put, cancel)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item  # type: ignore[misc]
        finally:
            # Client gone or consumer stopped early: the worker sees this at its next token.
            cancel.set()
            if future.done() and not future.cancelled():
                future.exception()  # retrieve, so asyncio does not warn

    def complete_text(self, params: ChatParams) -> AsyncIterator[StreamEvent]:
        """The same worker as ``stream``: ``_generate`` reads ``params.prompt`` as it is,
        with no chat frame and only the client's stop sequences."""
        return self.stream(params)

    async def embed(self, params: EmbedParams, on_start: Callable[[], None]) -> Embeddings:
        if self._llm is None:
            raise BackendError("embedded model is not loaded")
        loop = asyncio.get_running_loop()

        def started() -> None:
            loop.call_soon_threadsafe(on_start)

        # The same single worker as generation: llama.cpp never sees two callers.
        return await loop.run_in_executor(self._executor, self._embed, params, started)

    def _embed(self, params: EmbedParams, started: Callable[[], None]) -> Embeddings:
        try:
            if self._embedder is None:
                from llama_cpp import LLAMA_POOLING_TYPE_MEAN

                log.info(
                    "tier %s: loading the embedding context (first embeddings request)", self.tier
                )
                self._embedder = self._load(
                    embedding=True,
                    pooling_type=LLAMA_POOLING_TYPE_MEAN,
                    n_ctx=EMBED_N_CTX,
                    n_batch=EMBED_N_CTX,
                    n_ubatch=EMBED_N_CTX,
                )
            started()  # loading once is the tier's cost, like loading the model at start
            llm = self._embedder
            if params.dimensions is not None and params.dimensions != llm.n_embd():
                raise RequestRejected(
                    f"tier {self.tier!r} gives {llm.n_embd()}-dimensional embeddings; "
                    "it cannot shorten them (dimensions)"
                )
            for i, text in enumerate(params.inputs):
                n = len(llm.tokenize(text.encode("utf-8")))
                if n > EMBED_N_CTX:
                    raise PromptTooLong(
                        f"input[{i}] is {n} tokens; tier {self.tier!r} embeds at most "
                        f"{EMBED_N_CTX} tokens per input"
                    )
            # Mean-pooled, then scaled to unit length as OpenAI's embeddings are, so a dot
            # product is the cosine similarity.
            vectors, tokens = llm.embed(
                params.inputs, normalize=True, truncate=False, return_count=True
            )
            return Embeddings([list(v) for v in vectors], tokens)
        except BackendError:
            raise
        except Exception as exc:
            log.exception("embedded embedding failed")
            raise EmbeddedFailure(f"the embedded model failed ({type(exc).__name__})") from exc

    def _generate(self, params: ChatParams, put: Any, cancel: threading.Event) -> None:
        try:
            if cancel.is_set():
                return
            llm = self._llm
            prompt = params.prompt  # a plain-text completion: no chat frame
            raw = prompt is not None
            if prompt is None:
                prompt = prompt_frame.render(params.messages)
            prompt_ids = llm.tokenize(prompt.encode("utf-8"))
            n_prompt = len(prompt_ids)
            room = self.n_ctx - n_prompt
            put(Started())
            if room < 1:
                raise PromptTooLong(
                    f"This model's maximum context length is {self.n_ctx} tokens; the "
                    f"conversation uses {n_prompt} tokens once framed for the model. "
                    "Shorten the messages."
                )
            wanted = params.max_tokens or self.default_max_tokens
            max_tokens = min(wanted, room)
            counter = _Counter(n_prompt, cancel)
            if self._logprobs is None or self._logprobs.llm is not llm:
                self._logprobs = SampledLogprobs(llm)
            # The client's response_format and logprobs (docs/compatibility.md).
            grammar = _features.grammar_for(params)
            top_logprobs = _features.wanted_logprobs(params)
            self._logprobs.begin(
                params.want_logprobs or top_logprobs is not None, top_logprobs or 0
            )
            from llama_cpp import StoppingCriteriaList

            chunks = llm.create_completion(
                prompt_ids,
                max_tokens=max_tokens,
                temperature=DEFAULT_TEMPERATURE
                if params.temperature is None
                else params.temperature,
                top_p=DEFAULT_TOP_P if params.top_p is None else params.top_p,
                repeat_penalty=REPEAT_PENALTY,
                # The frame's stops end a transcript turn; a grammar ends the JSON itself,
                # which may well contain a blank line.
                stop=list(params.stop)
                if raw or grammar is not None
                else [*prompt_frame.STOP_SEQUENCES, *params.stop],
                grammar=grammar,
                seed=params.seed,
                stream=True,
                stopping_criteria=StoppingCriteriaList([counter]),
            )
            finish_reason = "stop"
            returned: list[str] = []  # the text as llama.cpp gave it, for the logprobs object
            first = True
            sent = 0  # log-probs already attached to a delta
            for chunk in chunks:
                choice = chunk["choices"][0]
                text = choice.get("text") or ""
                returned.append(text)
                if first and not raw:
                    # The frame ends on "Assistant:"; the answer's leading space is framing.
                    text = text.lstrip()
                    first = not text
                if text:
                    lps = self._logprobs.since(sent) if params.want_logprobs else None
                    sent += len(lps or ())
                    put(TextDelta(text, lps))
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
            if cancel.is_set():
                finish_reason = "cancelled"
            generated = min(counter.generated, max_tokens)
            GENERATED_TOKENS.labels(self.tier).inc(generated)
            lp = self._logprobs
            choice_extra = None
            if top_logprobs is not None:
                values = lp.since(0)
                obj = _features.logprobs_object(llm, lp.tokens, values, lp.tops, "".join(returned))
                choice_extra = {"logprobs": obj}
            logprobs = lp.end(generated)
            put(
                Finish(
                    finish_reason,
                    Usage(n_prompt, generated),
                    logprobs,
                    choice_extra=choice_extra,
                )
            )
        except BackendError as exc:
            put(exc)
        except Exception as exc:  # delivered to the awaiting request
            log.exception("embedded generation failed")
            put(EmbeddedFailure(f"the embedded model failed ({type(exc).__name__})"))
        finally:
            put(_DONE)
