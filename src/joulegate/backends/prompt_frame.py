"""Turning chat messages into a prompt a *base* model continues usefully.

Gemma 3 270M as packaged is the pre-trained model: it has no chat template and was never
taught to follow instructions. It does continue text faithfully, so we show it a short
transcript of a helpful assistant and let it write the next turn; stop sequences end the
answer where the transcript would move on to the next speaker.
"""

from __future__ import annotations

from typing import Any

from joulegate.backends.base import message_text

USER = "User"
ASSISTANT = "Assistant"

DEFAULT_SYSTEM = (
    "The following is a conversation between a user and a helpful assistant. "
    "The assistant answers correctly and briefly, in one or two sentences."
)

# Short, factual, varied in form: long examples make the model ramble, and examples on
# one topic pull answers towards it.
FEW_SHOT: tuple[tuple[str, str], ...] = (
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How many legs does a spider have?", "A spider has eight legs."),
    ("Give me a word that rhymes with cat.", "Hat rhymes with cat."),
)

STOP_SEQUENCES: tuple[str, ...] = (f"\n{USER}:", f"\n{ASSISTANT}:", "\n\n")


def render(messages: list[dict[str, Any]]) -> str:
    """Render the conversation as a transcript ending on the assistant's open turn."""
    system_parts = [message_text(m) for m in messages if m.get("role") in ("system", "developer")]
    header = " ".join(p.strip() for p in system_parts if p.strip()) or DEFAULT_SYSTEM
    lines = [header, ""]
    for question, answer in FEW_SHOT:
        lines += [f"{USER}: {question}", f"{ASSISTANT}: {answer}", ""]
    for m in messages:
        role = m.get("role")
        text = " ".join(message_text(m).split())  # newlines would read as a new speaker
        if role == "user" or role == "tool":
            lines.append(f"{USER}: {text}")
        elif role == "assistant":
            lines += [f"{ASSISTANT}: {text}", ""]
    lines.append(f"{ASSISTANT}:")
    return "\n".join(lines)
