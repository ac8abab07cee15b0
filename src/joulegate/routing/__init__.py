"""Learned routing: send each prompt to the cheapest tier predicted to answer it well.

Public API: ``Router.load(path, tiers=...)`` then ``Router.decide(prompt, tiers,
quality_target)``, which returns a ``RouteDecision``. Tiers are named by public id and a head
is only ever used for the tier it was fit on (``routing.router`` documents the policy for
tiers without one). ``joulegate calibrate`` (``routing.calibration``) measures the configured
tiers and fits the router; training lives in ``routing.model``, evaluation metrics
(RouteLLM's PGR/APGR/CPT) in ``routing.metrics``; see docs/routing.md.

``Router`` and ``RouteDecision`` are imported lazily so that loading the settings
(``joulegate.routing.settings``) does not pull in numpy and scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import RoutingSettings

if TYPE_CHECKING:
    from .router import RouteDecision, Router

__all__ = ["RouteDecision", "Router", "RoutingSettings"]


def __getattr__(name: str) -> Any:
    if name in ("RouteDecision", "Router"):
        from . import router

        return getattr(router, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
