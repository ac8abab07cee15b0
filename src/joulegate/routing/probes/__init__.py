"""The calibration probe set shipped with joulegate (``probes.jsonl``; sources in README.md).

Each item is one prompt with what is needed to grade an answer to it:

- ``kind``: ``routine`` (a small model can often answer), ``hard`` (GSM8K train word
  problems) or ``open`` (no single right answer; a judge grades it);
- ``gold`` and ``grader`` for the gold-graded kinds (``number``, ``choice`` or ``short``,
  see ``joulegate.routing.graders``); ``open`` items have neither.

The file is rebuilt by ``python -m benchmarks.build_probe_set``, never edited by hand.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from joulegate.routing.graders import GRADERS, grade, grade_choice

__all__ = ["KINDS", "PROBE_SET_FILE", "ProbeItem", "load_probe_set"]

PROBE_SET_FILE = "probes.jsonl"
KINDS = ("routine", "hard", "open")


@dataclass(frozen=True)
class ProbeItem:
    id: str
    kind: str
    category: str
    prompt: str
    source: str
    gold: str | tuple[str, ...] | None = None
    grader: str | None = None
    # Multiple choice: letter -> option text, so an answer that names the option rather than
    # its letter ("Ice is frozen water.") is read as choosing it.
    options: dict[str, str] | None = None

    @property
    def gradable(self) -> bool:
        """True when a gold grader scores this item; otherwise it needs the judge."""
        return self.gold is not None and self.grader is not None

    def grade(self, answer: str) -> float:
        """The answer's score in [0, 1] by the item's gold grader."""
        if self.gold is None or self.grader is None:
            raise ValueError(f"{self.id} has no gold answer; it is graded by the judge")
        if self.grader == "choice" and self.options and isinstance(self.gold, str):
            return grade_choice(answer, self.gold, self.options)
        return grade(self.grader, answer, self.gold)


def _parse(obj: dict[str, object], where: str) -> ProbeItem:
    try:
        gold = obj.get("gold")
        item = ProbeItem(
            id=str(obj["id"]),
            kind=str(obj["kind"]),
            category=str(obj["category"]),
            prompt=str(obj["prompt"]),
            source=str(obj["source"]),
            gold=tuple(map(str, gold))
            if isinstance(gold, list)
            else (None if gold is None else str(gold)),
            grader=None if obj.get("grader") is None else str(obj["grader"]),
            options=_options(obj.get("options"), where),
        )
    except KeyError as exc:
        raise ValueError(f"{where}: missing field {exc}") from None
    if item.kind not in KINDS:
        raise ValueError(f"{where}: kind {item.kind!r} is not one of {KINDS}")
    if (item.gold is None) != (item.grader is None):
        raise ValueError(f"{where}: 'gold' and 'grader' come together")
    if item.grader is not None and item.grader not in GRADERS:
        raise ValueError(f"{where}: unknown grader {item.grader!r}")
    return item


def _options(raw: object, where: str) -> dict[str, str] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not raw:
        raise ValueError(f"{where}: 'options' maps letters to option texts")
    return {str(k).upper(): str(v) for k, v in raw.items()}


def _lines(path: Path | None) -> Iterable[tuple[str, str]]:
    if path is None:
        text = resources.files(__name__).joinpath(PROBE_SET_FILE).read_text(encoding="utf-8")
        name = PROBE_SET_FILE
    else:
        text = Path(path).read_text(encoding="utf-8")
        name = str(path)
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip():
            yield f"{name}:{lineno}", line


def load_probe_set(path: Path | None = None) -> list[ProbeItem]:
    """The probe items in ``path`` (JSONL), or the shipped probe set when ``path`` is None."""
    items = [_parse(json.loads(line), where) for where, line in _lines(path)]
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"duplicate probe id {item.id!r}")
        seen.add(item.id)
    return items
