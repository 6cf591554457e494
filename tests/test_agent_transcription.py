"""``agent.transcription``: the question's number lists, and the code's copies of them that lack some."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from sandlot.agent.transcription import Miscopy, given_lists, miscopy

QUESTION = "Here is a list of numbers: 343, 706, 657, 233, 478, 718, 585. What is their mean, to 2 places?"


def test_a_list_in_the_question_is_read_whole_up_to_its_last_number() -> None:
    (given,) = given_lists([QUESTION])
    assert given == Counter(Fraction(n) for n in (343, 706, 657, 233, 478, 718, 585))  # 585 before the full stop


def test_short_runs_sentences_and_table_rows_are_not_lists() -> None:
    assert given_lists(["Between 3, 4 and 5, which is prime?", "{1, 2, ..., 20}"]) == []
    assert given_lists(["region,units,price\nNorth,45,23.17\nSouth,54,20.35\nEast,24,10.11"]) == []
    assert given_lists(["prices: 1.5, -2, 3.25, 4, 10.0"]) == [Counter(map(Fraction, ["1.5", "-2", "3.25", "4", "10"]))]


def test_a_copy_that_drops_numbers_or_adds_others_is_a_miscopy() -> None:
    given = given_lists([QUESTION])
    assert miscopy("xs = [343, 706, 657, 233, 478]", given) == Miscopy(kept=5, given=7, foreign=0)
    assert miscopy("xs = (343, 706, 657, 233, 478, 718, 999)", given) == Miscopy(kept=6, given=7, foreign=1)


def test_a_whole_copy_in_any_order_or_other_lists_are_not() -> None:
    given = given_lists([QUESTION])
    assert miscopy("xs = [585, 718, 478, 233, 657, 706, 343]", given) is None
    assert miscopy("weights = [1, 2, 3, 4, 5]\nxs = [343, 706]", given) is None  # not taken from it; too short
    assert miscopy("xs = [343, 706, 657, 233]", []) is None  # the question gave no list
    assert miscopy("xs = [343, 706, 657, 233", given) is None  # code that does not parse
