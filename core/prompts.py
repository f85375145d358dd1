"""The generator prompt format, shared by the query path (``retrieval``) and LoRA SFT (``customization``).

Both stages must build byte-identical prompts, otherwise an adapter is trained on one format and served with another;
the format therefore lives here, in the bottom layer. Passages are numbered ``[1]``..``[n]`` in retrieval order and the
model is asked to cite them with the same markers. The result is a chat-message list for ``apply_chat_template``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SYSTEM_PROMPT = (
    "You are a support assistant. Answer the question using only the numbered passages. "
    "Cite the passages you use with their markers, e.g. [1]. "
    "If the passages do not contain the answer, say that you do not know."
)

DEFAULT_MAX_PASSAGE_CHARS = 1200


def format_passages(passages: Sequence[str], *, max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS) -> str:
    """Number passages ``[1] text`` (one per paragraph), each cut to ``max_passage_chars`` characters."""
    lines = []
    for i, text in enumerate(passages, start=1):
        body = " ".join(text.split())
        if len(body) > max_passage_chars:
            body = body[:max_passage_chars].rsplit(" ", 1)[0] + " ..."
        lines.append(f"[{i}] {body}")
    return "\n\n".join(lines)


def build_messages(
    question: str, passages: Sequence[str], *, max_passage_chars: int = DEFAULT_MAX_PASSAGE_CHARS
) -> list[dict[str, str]]:
    """Chat messages (system + user) asking ``question`` over the numbered ``passages``."""
    context = format_passages(passages, max_passage_chars=max_passage_chars) or "(no passages)"
    user = f"Passages:\n{context}\n\nQuestion: {' '.join(question.split())}\nAnswer with citations:"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


_MARKER = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"\w{3,}")


def ensure_citations(answer: str, passages: Sequence[str]) -> str:
    """Post-process a generated answer so that its citation markers are valid.

    Markers outside ``[1]``..``[n]`` are removed. When no valid marker remains and there are passages, the marker of
    the passage sharing the most words with the answer is appended, so every answer points at its evidence.
    """
    n = len(passages)
    text = _MARKER.sub(lambda m: m.group(0) if 1 <= int(m.group(1)) <= n else "", answer)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", text)).strip()
    if n == 0 or _MARKER.search(text):
        return text
    words = set(_WORD.findall(text.lower()))
    overlaps = [len(words & set(_WORD.findall(p.lower()))) for p in passages]
    best = max(range(n), key=lambda i: (overlaps[i], -i))
    return f"{text} [{best + 1}]".strip()


__all__ = ["DEFAULT_MAX_PASSAGE_CHARS", "SYSTEM_PROMPT", "build_messages", "ensure_citations", "format_passages"]
