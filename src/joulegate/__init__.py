"""joulegate: the efficiency-first LLM gateway."""

__version__ = "0.1.0"
