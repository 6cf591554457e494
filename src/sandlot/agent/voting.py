"""Self-consistency: several programs for one code turn, run, and a vote on what they printed.

A small model's code is often wrong in a way that a second sample of it is not: an off-by-one, a
misread question, a name that does not exist. With ``candidates`` above 1, each code turn is also
sampled ``candidates - 1`` more times (at ``candidate_temperature``, each with a seed of its own, so
the run stays reproducible), every program is run in the request's session, and the output most of
them printed is the one the loop goes on with: the model sees that program and its output, as if it
had written only that. Ties go to the earliest candidate, and the first is the model's own reply at
the request's settings, so a vote with no majority changes nothing. A candidate that failed, printed
nothing, or asked for anything but code (an answer, a host or client tool) has no vote.

Only the shape of the outputs is compared (whitespace-normalised text): nothing here knows what a
question is about.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Ballot:
    """One candidate program's run: what it printed (its observation's value), and whether it failed."""

    value: str
    failed: bool

    @property
    def votes(self) -> bool:
        return bool(self.value) and not self.failed


def winner(ballots: Sequence[Ballot]) -> int:
    """The index of the winning candidate: the first one whose output most candidates share; the
    first candidate when none has a vote."""
    counts = Counter(ballot.value for ballot in ballots if ballot.votes)
    if not counts:
        return 0
    best = max(counts.values())
    return next(i for i, ballot in enumerate(ballots) if ballot.votes and counts[ballot.value] == best)


def agreeing(ballots: Sequence[Ballot], chosen: int) -> int:
    """How many candidates printed what the chosen one printed (itself included; 0 if it has no vote)."""
    if not ballots[chosen].votes:
        return 0
    return sum(1 for ballot in ballots if ballot.votes and ballot.value == ballots[chosen].value)
