"""Errors in OpenAI's format: ``{"error": {"message", "type", "param", "code"}}``.

Clients (and the official SDKs) branch on the status and on ``error.code``, so every
failure path ends here with the right pair; internal details never leave the process.

No FastAPI here: the pipeline (``serving``, ``planning``, ``budget``) and the CLI raise
these without pulling in the web framework; ``error_handlers`` turns them into responses.
"""

from __future__ import annotations

from typing import Any


class APIError(Exception):
    """An error a client should see, with its OpenAI status, type and code."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }
