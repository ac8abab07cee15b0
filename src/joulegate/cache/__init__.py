"""The response cache: an answer already given, served again for microjoules (docs/cache.md).

    cache = ResponseCache.from_settings(settings.cache, settings.data_dir)
    probe = cache.probe("auto", request_json, key)      # None: the cache takes no part
    hit = await cache.lookup(probe)                     # exact, then semantic
    ...                                                 # a miss: the model answers
    cache.remember(probe, answer, origin)               # stored after the response

It sits in the request path before routing (``server/caching.py`` is the glue). Keys are
in ``keys.py``, the embedder in ``embedder.py``, the guard in ``guard.py``, the per-entry
thresholds in ``thresholds.py``, the stores in ``sqlite_store.py`` and ``redis_store.py``.

The service is imported lazily, so that loading the settings (``joulegate.cache.settings``)
does not pull in numpy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from joulegate.cache.settings import CacheMode, CacheSettings

if TYPE_CHECKING:
    from joulegate.cache.service import Hit, Probe, ResponseCache, summarize

__all__ = ["CacheMode", "CacheSettings", "Hit", "Probe", "ResponseCache", "summarize"]


def __getattr__(name: str) -> Any:
    if name in ("Hit", "Probe", "ResponseCache", "summarize"):
        from joulegate.cache import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
