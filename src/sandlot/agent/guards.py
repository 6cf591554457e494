"""The loop's guards against what small models do: repeat themselves, and reply without an answer.

- ``Repetition``: a code turn with the same output as the turn before (from the same code or not),
  or the same code printing nothing again. The first time, the model is told it already has that
  output and must answer; the second time in a row, the loop stops and asks for the answer with
  code disabled.
- ``repeated_failure``: the same code failing ``limit`` times in a row stops the loop.
- ``uncomputed_numbers``: an answer, before any code ran, with numbers no message the model was
  given holds (the question's, tool results, sandlot's own).
  The model is asked once to compute them with code (the system prompt's rule, enforced once).
- ``runaway``: a reply the token limit cut while it repeated one piece of text over and over (a
  comment line, a list item): a small model's degenerate loop. The loop asks for that turn again,
  once, with a frequency penalty.
- ``own_words``: what is left of a reply once sandlot's own words are taken out of it (the output
  it was shown, the hints and requests it was sent, code when code was not wanted). A reply with
  nothing left is no answer: sandlot asks once more, then writes the reply itself.

All of them look at the shape of the conversation only, never at what the question is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .._models import ExecutionResult

_FENCED = re.compile(r"```[ \t]*(\w*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_LABELS = ("", "python", "py", "python3")
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def normalized(text: str) -> str:
    """Whitespace collapsed: the same code or output, however it was indented or wrapped."""
    return " ".join(text.split())


@dataclass
class Repetition:
    """Counts code turns in a row that repeat the turn before: the same output (the same code with a new
    output is no repeat: stateful code may advance), or the same code with nothing printed again.
    Failed turns are ``repeated_failure``'s to count: they end a streak."""

    streak: int = 0
    _last: tuple[tuple[str, ...], str] | None = field(default=None, repr=False)

    def record(self, codes: Sequence[str], value: str, *, failed: bool = False) -> int:
        """Record one code turn (its code blocks or calls, what it printed, whether a run of it
        failed); the streak after it."""
        if failed:
            self.streak, self._last = 0, None
            return 0
        turn = (tuple(normalized(code) for code in codes), value)
        repeated = self._last is not None and value == self._last[1] and (bool(value) or turn[0] == self._last[0])
        self.streak = self.streak + 1 if repeated else 0
        self._last = turn
        return self.streak


def repeated_failure(codes: Sequence[str], results: Sequence[ExecutionResult], limit: int) -> bool:
    """The last ``limit`` runs were the same code, and all failed."""
    if len(codes) < limit:
        return False
    recent = {normalized(code) for code in codes[-limit:]}
    return len(recent) == 1 and all(result.status != "ok" for result in results[-limit:])


def uncomputed_numbers(answer: str, heard: Iterable[str]) -> bool:
    """The answer holds a number that no text the model was given holds (``heard``: the user's,
    tool results, sandlot's): the model worked it out, or made it up, itself. Numbers restated from
    the question or a tool's result do not count; nor do numbers in code."""
    given = {n for text in heard for n in _NUMBER.findall(text.replace(",", ""))}
    claimed = _FENCED.sub("\n", answer)  # numbers inside code are not results it claims
    return any(n not in given for n in _NUMBER.findall(claimed.replace(",", "")))


RUNAWAY_SPAN = 200
"""Characters at the end of a cut reply that must repeat one piece for it to be a runaway."""
_RUNAWAY_PERIOD = 120
"""The longest piece that counts (a line of code or comment); at least four copies fill the span."""


def runaway(text: str, finish_reason: str | None) -> bool:
    """The reply was cut by the token limit while it repeated itself: its last ``RUNAWAY_SPAN`` (or
    more) characters are one piece of up to ``_RUNAWAY_PERIOD`` characters, over and over, wherever
    the cut fell in it. A long reply that was cut without looping is not one."""
    if finish_reason != "length":
        return False
    text = text.rstrip()
    for period in range(1, _RUNAWAY_PERIOD + 1):
        span = max(RUNAWAY_SPAN, 4 * period)
        if len(text) >= span + period and text[-span - period:-period] == text[-span:]:
            return True
    return False


def has_number(text: str) -> bool:
    """The text states a number outside code: a claimed result."""
    return bool(_NUMBER.search(_FENCED.sub("\n", text)))


def own_words(reply: str, said: Iterable[str], *, allow_code: bool = False) -> str:
    """The reply without sandlot's words: what the model itself answered ('' if nothing).

    Taken out: every sentence sandlot sent (``said``: hints, nudges, requests), and code blocks
    unless ``allow_code``. ```output blocks (the model copying the output format) are taken out
    if the reply says anything else; if not, their content is what the model answered, and a bare
    value after a code step is an answer.
    """
    outside: list[str] = []
    copied: list[str] = []
    position = 0
    for fence in _FENCED.finditer(reply):  # left to right, so each match is an opening fence and its close
        outside.append(reply[position:fence.start()])
        position = fence.end()
        label = fence.group(1).lower()
        if label == "output":
            copied.append(fence.group(2))
        elif label not in _CODE_LABELS or allow_code:
            outside.append(fence.group(0))
    outside.append(reply[position:])
    said = list(said)
    sentences = sorted({s for message in said for s in _sentences(message)}, key=len, reverse=True)
    heard = normalized("\n".join(said)).lower()
    text = _without(sentences, heard, "\n".join(outside))
    if not text:
        text = _without(sentences, heard, "\n".join(copied))
    return text


def _without(sentences: list[str], heard: str, text: str) -> str:
    """``text`` without sandlot's ``sentences``, and without those of its own sentences that are a
    piece of what sandlot said (``heard``, normalised): a model that copies part of a message copies."""
    for sentence in sentences:
        text = _remove(text, sentence)
    parts = _SENTENCE_END.split(text)
    kept = [part for part in parts if not _copied(part, heard)]
    if len(kept) < len(parts):
        text = " ".join(kept)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _copied(sentence: str, heard: str) -> bool:
    words = normalized(sentence).lower().rstrip(".!?:")
    return len(words) >= 12 and words in heard


def _sentences(message: str) -> list[str]:
    """A message of sandlot's, whole and cut into sentences worth matching (short fragments would
    match the model's own words)."""
    parts = (part.strip() for line in message.splitlines() for part in _SENTENCE_END.split(line))
    return [message.strip(), *(part for part in parts if len(part) >= 12)]


def _remove(text: str, sentence: str) -> str:
    """``text`` without ``sentence``, wherever it occurs, in any case, whatever the whitespace and the
    closing punctuation."""
    pattern = r"\s+".join(re.escape(word) for word in sentence.rstrip(".!?:").split()) + r"[.!?:]?"
    return re.sub(pattern, " ", text, flags=re.IGNORECASE)
