"""Whether the model's code copied the question's lists of numbers whole.

A question often gives its data as a list of numbers in the text ("Here are the scores: 343, 706,
657, ..."). A small model copies such a list into its code and drops some of it on the way (14 of
20 numbers, say); the code then runs without error and computes a wrong answer that nothing else
would flag. So after each successful run, the numeric list literals of the code are held against
the number lists of the user's messages: a literal taken from one of them (most of its numbers are
in it) that lacks some of its numbers, or has numbers it does not, gets a hint saying how many of
them it has (``prompts.COPY_HINT``), once per request (the loop's rule: a model that cannot copy the
list whole would spend every step left on it).

Only lists of at least ``MIN_GIVEN`` numbers in a row count as given, and only literals of at least
``MIN_COPIED``: two or three numbers in a sentence are not data to copy, and a short literal is not
a copy of anything.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction

MIN_GIVEN = 5
MIN_COPIED = 4

_NUMBER = r"-?\d+(?:\.\d+)?"
_RUN = re.compile(rf"(?<![\w.]){_NUMBER}(?:[ \t]*,[ \t]*{_NUMBER}){{{MIN_GIVEN - 1},}}(?!\w|\.\d)")
"""Numbers separated by commas on one line (a CSV table's rows are lines of their own: not one list)."""


@dataclass(frozen=True)
class Miscopy:
    """A list in the code taken from a list in the question, but not all of it."""

    kept: int
    """How many of the question's numbers the code's list has."""
    given: int
    """How many numbers the question's list has."""
    foreign: int
    """Numbers in the code's list that are not in the question's."""


def given_lists(texts: Iterable[str]) -> list[Counter[Fraction]]:
    """The lists of numbers in ``texts`` (the user's messages), each as a multiset of exact values."""
    return [Counter(Fraction(n) for n in re.findall(_NUMBER, run.group(0)))
            for text in texts for run in _RUN.finditer(text)]


def miscopy(code: str, given: Sequence[Counter[Fraction]]) -> Miscopy | None:
    """The first numeric list literal in ``code`` that was copied from one of the ``given`` lists
    incompletely or with other numbers in it; None if every copy is whole (or there is none)."""
    if not given:
        return None
    for literal in _numeric_literals(code):
        copied = Counter(literal)
        source = max(given, key=lambda g: sum((copied & g).values()))
        kept = sum((copied & source).values())
        if kept * 2 < len(literal) or copied == source:
            continue  # not taken from the question's list, or taken whole
        return Miscopy(kept, sum(source.values()), len(literal) - kept)
    return None


def _numeric_literals(code: str) -> list[list[Fraction]]:
    """The list, tuple and set displays in ``code`` of at least ``MIN_COPIED`` number constants and
    nothing else."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and len(node.elts) >= MIN_COPIED:
            values = [_number(element) for element in node.elts]
            if all(value is not None for value in values):
                found.append([value for value in values if value is not None])
    return found


def _number(node: ast.expr) -> Fraction | None:
    negative = isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub)
    if isinstance(node, ast.UnaryOp) and negative:
        node = node.operand
    if not isinstance(node, ast.Constant) or isinstance(node.value, bool) or \
            not isinstance(node.value, (int, float)):
        return None
    try:
        value = Fraction(str(node.value))
    except ValueError:  # inf, nan
        return None
    return -value if negative else value
