"""Files shipped inside the package and served over HTTP (the dashboard, the API docs).

It sits below every package, with no joulegate imports, so that the server's docs page and
the reports' dashboard serve their files the one way: from the installed package (zip-safe),
never a name that leaves its folder, with a media type the browser will run.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from importlib import resources

from fastapi import HTTPException
from fastapi.responses import Response

__all__ = ["package_file", "static_response"]


def package_file(package: str, folder: tuple[str, ...], name: str) -> bytes:
    """The bytes of ``name`` (``/``-separated) under ``folder`` of ``package``; raises
    ``FileNotFoundError`` when there is no such file."""
    node = resources.files(package).joinpath(*folder, *name.split("/"))
    if not node.is_file():
        raise FileNotFoundError(name)
    return node.read_bytes()


def static_response(read: Callable[[str], bytes], path: str, *, max_age: int) -> Response:
    """The file at the URL path ``path``, read by ``read``; a 404 for a hidden or escaping
    name (``..``, a dot file, a backslash) as for a missing one, so nothing outside the
    folder can be named."""
    parts = [p for p in path.split("/") if p]
    if not parts or any(p.startswith(".") or "\\" in p for p in parts):
        raise HTTPException(404, "not found")
    name = "/".join(parts)
    try:
        body = read(name)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        raise HTTPException(404, "not found") from exc
    media = mimetypes.guess_type(name)[0] or "application/octet-stream"
    if media.startswith("text/") or media.endswith("javascript"):
        media += "; charset=utf-8"
    return Response(body, media_type=media, headers={"Cache-Control": f"max-age={max_age}"})
