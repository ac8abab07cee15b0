"""The embedded tier: a small GGUF model run by llama.cpp inside the gateway process.

A llama.cpp context is not thread-safe and holds one KV cache, so generations run one
at a time on a single dedicated worker thread. The event loop only waits on a queue fed
by that thread, so it keeps serving health checks, metrics and other tiers meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from prometheus_client import Counter

from joulegate.backends import prompt_frame
from joulegate.backends.base import (
    Backend,
    BackendError,
    ChatParams,
    Finish,
    PromptTooLong,
    Started,
    StreamEvent,
    TextDelta,
    Usage,
)
from joulegate.backends.model_files import ensure_embedded_model

_DONE = object()
log = logging.getLogger("joulegate.embedded")

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

    def __init__(
        self,
        tier: str,
        model: str,
        model_path: Path | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_batch: int = 512,
        default_max_tokens: int = 256,
    ) -> None:
        self.tier = tier
        self.model = model
        self._model_path = model_path
        self.n_ctx = n_ctx
        self.n_threads = n_threads or len(os.sched_getaffinity(0))
        self.n_batch = n_batch
        self.default_max_tokens = default_max_tokens
        self._llm: Any = None
        # One worker thread is the serialisation: llama.cpp never sees two callers.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"llama-{tier}")

    async def start(self) -> None:
        if self._llm is None:
            loop = asyncio.get_running_loop()
            self._llm = await loop.run_in_executor(self._executor, self._load)

    def _load(self) -> Any:
        from llama_cpp import Llama

        path = ensure_embedded_model(self._model_path)
        return Llama(
            model_path=str(path),
            n_ctx=self.n_ctx,
            n_threads=self.n_threads,
            n_threads_batch=self.n_threads,
            n_batch=self.n_batch,
            verbose=False,
        )

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._llm is not None:
            self._llm.close()
            self._llm = None

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

    def _generate(self, params: ChatParams, put: Any, cancel: threading.Event) -> None:
        try:
            if cancel.is_set():
                return
            llm = self._llm
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
            from llama_cpp import StoppingCriteriaList

            chunks = llm.create_completion(
                prompt_ids,
                max_tokens=max_tokens,
                temperature=DEFAULT_TEMPERATURE
                if params.temperature is None
                else params.temperature,
                top_p=DEFAULT_TOP_P if params.top_p is None else params.top_p,
                repeat_penalty=REPEAT_PENALTY,
                stop=[*prompt_frame.STOP_SEQUENCES, *params.stop],
                seed=params.seed,
                stream=True,
                stopping_criteria=StoppingCriteriaList([counter]),
            )
            finish_reason = "stop"
            first = True
            for chunk in chunks:
                choice = chunk["choices"][0]
                text = choice.get("text") or ""
                if first:
                    # The frame ends on "Assistant:"; the answer's leading space is framing.
                    text = text.lstrip()
                    first = not text
                if text:
                    put(TextDelta(text))
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
            if cancel.is_set():
                finish_reason = "cancelled"
            generated = min(counter.generated, max_tokens)
            GENERATED_TOKENS.labels(self.tier).inc(generated)
            put(Finish(finish_reason, Usage(n_prompt, generated)))
        except BackendError as exc:
            put(exc)
        except Exception as exc:  # delivered to the awaiting request
            log.exception("embedded generation failed")
            put(EmbeddedFailure(f"the embedded model failed ({type(exc).__name__})"))
        finally:
            put(_DONE)
