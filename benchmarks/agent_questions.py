"""The question set of ``bench_agent_quality.py``: short questions whose answers need computation.

Eight kinds, six or seven questions each. Every expected answer is computed here, by the standard library,
from the same parameters the question text is written from; nothing is typed in by hand. The lists
and tables the questions show are drawn from seeded generators, so the set is the same on every run.

The set was written before the agent's prompts and guards were tuned (issue #12), and is not to be
edited to suit them. Questions say what form the answer takes (a whole number, a number of decimal
places, a weekday), as a user who needs an exact answer would.

Grading (``grade``) is one documented rule, the same for every way of answering (see its docstring).
"""

from __future__ import annotations

import calendar
import datetime
import itertools
import math
import random
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

WEEKDAYS = tuple(calendar.day_name)  # Monday ... Sunday


@dataclass(frozen=True)
class Question:
    """One question, its kind, and its exact expected answer."""

    id: str
    kind: str
    text: str
    expected: int | Fraction | str
    """An integer; a decimal (a Fraction, exact) to ``places`` places; or one of ``choices``."""
    places: int = 0
    choices: tuple[str, ...] = ()

    @property
    def shown(self) -> str:
        """The expected answer as a person would write it."""
        if isinstance(self.expected, Fraction):
            return f"{float(self.expected):.{self.places}f}"
        return str(self.expected)


# ---- grading -----------------------------------------------------------------------------

_SEPARATED = re.compile(r"(?<=\d)[,_\u00a0\u202f\u2009'](?=\d{3}(?!\d))")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?|(?<=[\w.])\d+(?:\.\d+)?")


def numbers(text: str) -> list[Fraction]:
    """The numbers in a text, left to right, as exact fractions.

    Thousands separators between groups of three digits (``1,234,567``, ``1 234``, ``1_234``) are
    taken out first. A minus sign counts only where it cannot be a hyphen (not right after a letter
    or digit: ``2024-03-01`` is 2024, 03, 01). ``3.50`` is 7/2.
    """
    joined = _SEPARATED.sub("", text)
    return [Fraction(match) for match in _NUMBER.findall(joined)]


def answer_value(question: Question, reply: str) -> Fraction | str | None:
    """What the reply answers, by the benchmark's one extraction rule (``None``: no answer found).

    Numbers: the numbers in the reply (``numbers``), minus every number that also occurs in the
    question (a reply restating the question's figures is not answering with them), and of those
    left, the last: the conclusion of a reply comes at its end. Choices (weekdays): the last of the
    question's choices named in the reply, as a whole word, in any case.
    """
    if question.choices:
        named = [(m.start(), choice) for choice in question.choices
                 for m in re.finditer(rf"\b{re.escape(choice)}\b", reply, re.IGNORECASE)]
        return max(named)[1] if named else None
    given = set(numbers(question.text))
    left = [n for n in numbers(reply) if n not in given]
    return left[-1] if left else None


def grade(question: Question, reply: str) -> bool:
    """Whether a reply answers ``question`` right (the same rule for every arm of the benchmark).

    Whole numbers must be equal (``46`` and ``46.0`` both are). Decimals asked to ``places``
    places must round to the expected value: within half a unit of the last place (so a more
    precise value is right too). Choices must be the expected one.
    """
    value = answer_value(question, reply)
    if value is None:
        return False
    if isinstance(question.expected, str):
        return isinstance(value, str) and value.lower() == question.expected.lower()
    if isinstance(value, str):
        return False
    if isinstance(question.expected, Fraction):
        return abs(value - question.expected) <= Fraction(1, 2 * 10 ** question.places)
    return value == question.expected


def _rounded(value: Fraction | float, places: int) -> Fraction:
    """``value`` rounded half-up to ``places`` decimal places, exactly."""
    scale = 10 ** places
    return Fraction(math.floor(Fraction(value) * scale + Fraction(1, 2)), scale)


# ---- the questions -------------------------------------------------------------------------

def _arithmetic() -> list[Question]:
    a, b = 987654321, 123456789
    fib = [0, 1]
    while len(fib) <= 90:
        fib.append(fib[-1] + fib[-2])
    return [
        Question("arith-product", "arithmetic", f"What is {a} multiplied by {b}?", a * b),
        Question("arith-power", "arithmetic", "What is 7 to the power of 45?", 7 ** 45),
        Question("arith-series", "arithmetic", "What is the sum of all the integers from 1 to 98765?",
                 sum(range(1, 98766))),
        Question("arith-cubes", "arithmetic", "What is the sum of the cubes of the integers from 1 to 250?",
                 sum(i ** 3 for i in range(1, 251))),
        Question("arith-fibonacci", "arithmetic",
                 "The Fibonacci numbers start 1, 1, 2, 3, 5, 8, ... (each is the sum of the two before it). "
                 "What is the 90th Fibonacci number?", fib[90]),
        Question("arith-expression", "arithmetic", "What is (123456 * 654321 - 99999) // 37, using integer "
                 "division that rounds down?", (123456 * 654321 - 99999) // 37),
    ]


def _dates() -> list[Question]:
    def days(a: datetime.date, b: datetime.date) -> int:
        return (b - a).days

    d1, d2 = datetime.date(1999, 12, 31), datetime.date(2024, 2, 29)
    fridays = sum(1 for d in range(366) if (datetime.date(2027, 1, 1) + datetime.timedelta(d)).year == 2027
                  and (datetime.date(2027, 1, 1) + datetime.timedelta(d)).weekday() == 4)
    first_sundays = sum(1 for y in range(1901, 2001) for m in range(1, 13) if datetime.date(y, m, 1).weekday() == 6)
    day_of_year = datetime.date(2023, 10, 5).timetuple().tm_yday
    return [
        Question("date-between", "dates", "How many days are there from 1999-12-31 to 2024-02-29?", days(d1, d2)),
        Question("date-weekday-past", "dates", "On what day of the week was 14 July 1789?",
                 WEEKDAYS[datetime.date(1789, 7, 14).weekday()], choices=WEEKDAYS),
        Question("date-weekday-future", "dates", "What day of the week will it be 1000 days after 2025-03-17?",
                 WEEKDAYS[(datetime.date(2025, 3, 17) + datetime.timedelta(1000)).weekday()], choices=WEEKDAYS),
        Question("date-fridays", "dates", "How many Fridays are there in the year 2027?", fridays),
        Question("date-first-sundays", "dates", "How many months between January 1901 and December 2000 "
                 "(inclusive) began on a Sunday?", first_sundays),
        Question("date-day-of-year", "dates", "Counting January 1 as day 1, what day of the year is "
                 "October 5, 2023?", day_of_year),
    ]


def _strings() -> list[Question]:
    sentence = "the quick brown fox jumps over the lazy dog while seventeen sleepy geese keep watch"
    long_words = "a bright morning light crossed the silent valley as travellers gathered their heavy bags"
    word = "PYTHONIC"
    return [
        Question("str-count-letter", "strings", f"How many times does the letter 'e' appear in this sentence: "
                 f"'{sentence}'?", sentence.count("e")),
        Question("str-vowels", "strings", "How many vowels (a, e, i, o, u) are there in the word "
                 "'onomatopoeia'?", sum("onomatopoeia".count(v) for v in "aeiou")),
        Question("str-distinct", "strings", "How many distinct letters are there in the phrase "
                 "'the five boxing wizards jump quickly'?",
                 len(set("the five boxing wizards jump quickly".replace(" ", "")))),
        Question("str-long-words", "strings", f"How many words in this sentence have more than 5 letters: "
                 f"'{long_words}'?", sum(1 for w in long_words.split() if len(w) > 5)),
        Question("str-find", "strings", "At which position (counting the first character as position one) does "
                 "'abd' first start in the string 'abcabcabdabcabd'?", "abcabcabdabcabd".index("abd") + 1),
        Question("str-letter-values", "strings", f"If A = 1, B = 2, ..., Z = 26, what is the sum of the letter "
                 f"values of the word '{word}'?", sum(ord(c) - ord("A") + 1 for c in word)),
    ]


def _combinatorics() -> list[Question]:
    def derangements(n: int) -> int:
        return round(math.factorial(n) * sum(Fraction((-1) ** k, math.factorial(k)) for k in range(n + 1)))

    def subsets_divisible(n: int, by: int) -> int:
        counts = [1] + [0] * (by - 1)  # counts[r]: subsets so far whose sum is r modulo `by`
        for item in range(1, n + 1):
            counts = [counts[r] + counts[(r - item) % by] for r in range(by)]
        return counts[0]

    word = "MISSISSIPPI"
    arrangements = math.factorial(len(word))
    for letter in set(word):
        arrangements //= math.factorial(word.count(letter))
    return [
        Question("comb-choose", "combinatorics", "How many ways are there to choose 12 items from 40 "
                 "(order does not matter)?", math.comb(40, 12)),
        Question("comb-anagrams", "combinatorics", f"How many distinct arrangements of the letters of the word "
                 f"'{word}' are there?", arrangements),
        Question("comb-hands", "combinatorics", "How many 5-card hands from a standard 52-card deck contain "
                 "exactly 3 hearts?", math.comb(13, 3) * math.comb(39, 2)),
        Question("comb-derangements", "combinatorics", "In how many ways can 9 letters be put into 9 addressed "
                 "envelopes so that no letter is in its own envelope?", derangements(9)),
        Question("comb-paths", "combinatorics", "How many shortest paths are there on a grid from (0, 0) to "
                 "(11, 7), moving one unit right or up at each step?", math.comb(18, 7)),
        Question("comb-subsets", "combinatorics", "How many subsets of {1, 2, ..., 20} (including the empty set) "
                 "have a sum that is divisible by 5?", subsets_divisible(20, 5)),
    ]


def _generated_list(seed: int, accept: Callable[[list[int]], bool]) -> list[int]:
    """Twenty integers from 100 to 999, drawn from ``seed``: the first draw that ``accept`` takes."""
    rng = random.Random(seed)
    while True:
        values = [rng.randint(100, 999) for _ in range(20)]
        if accept(values):
            return values


def _statistics() -> list[Question]:
    questions = []

    def add(qid: str, seed: int, ask: str, compute: Callable[[list[int]], int | Fraction], places: int = 0) -> None:
        def answer(values: list[int]) -> int | Fraction:
            value = compute(values)
            return _rounded(value, places) if places else value

        def fair(values: list[int]) -> bool:  # the answer must not be one of the list's own numbers (see grade)
            return answer(values) not in set(values)

        values = _generated_list(seed, fair)
        text = f"Here is a list of numbers: {', '.join(map(str, values))}. {ask}"
        questions.append(Question(qid, "statistics", text, answer(values), places=places))

    add("stat-mean", 1, "What is their mean, rounded to 2 decimal places?",
        lambda v: Fraction(sum(v), len(v)), places=2)
    add("stat-median", 2, "What is their median?", lambda v: Fraction(statistics.median(v)), places=1)
    add("stat-stdev", 3, "What is their population standard deviation, rounded to 2 decimal places?",
        lambda v: Fraction(statistics.pstdev(v)), places=2)
    add("stat-above-mean", 4, "How many of them are greater than their mean?",
        lambda v: sum(1 for x in v if x > Fraction(sum(v), len(v))))
    add("stat-sum-squares", 5, "What is the sum of their squares?", lambda v: sum(x * x for x in v))
    add("stat-range-even", 6, "What is the difference between the largest and the smallest even number in the "
        "list?", lambda v: max(x for x in v if x % 2 == 0) - min(x for x in v if x % 2 == 0))
    return questions


def _table() -> tuple[str, list[dict[str, str | int | float]]]:
    rng = random.Random(12)
    rows: list[dict[str, str | int | float]] = []
    for region, product in itertools.product(("North", "South", "East", "West"), ("bolt", "gear", "valve")):
        if rng.random() < 0.8:
            rows.append({"region": region, "product": product, "units": rng.randint(3, 60),
                         "price": rng.randint(150, 2500) / 100})
    csv = "region,product,units,price\n" + "\n".join(
        f"{r['region']},{r['product']},{r['units']},{r['price']:.2f}" for r in rows)
    return csv, rows


def _pandas() -> list[Question]:
    csv, rows = _table()
    intro = f"Here is a table in CSV format:\n{csv}\n"

    def money(row: dict[str, str | int | float]) -> Fraction:
        return Fraction(str(row["price"])) * int(row["units"])

    def total(rows_: Sequence[dict[str, str | int | float]], column: str) -> Fraction:
        return sum((Fraction(str(r[column])) for r in rows_), Fraction(0))

    north = [r for r in rows if r["region"] == "North"]
    gears = [r for r in rows if r["product"] == "gear"]
    by_region = {region: [r for r in rows if r["region"] == region] for region in ("North", "South", "East", "West")}
    best_mean_units = max(total(rs, "units") / len(rs) for rs in by_region.values() if rs)
    valves = [r for r in rows if r["product"] == "valve"]
    return [
        Question("table-revenue", "pandas", intro + "What is the total revenue (units times price) of the North "
                 "region, rounded to 2 decimal places?", _rounded(sum(map(money, north), Fraction(0)), 2), places=2),
        Question("table-mean-price", "pandas", intro + "What is the average price of the gear rows, rounded to 2 "
                 "decimal places?", _rounded(total(gears, "price") / len(gears), 2), places=2),
        Question("table-count", "pandas", intro + "How many rows have more than 25 units?",
                 sum(1 for r in rows if int(r["units"]) > 25)),
        Question("table-best-region", "pandas", intro + "Average the units per row within each region. What is the "
                 "highest of these regional averages, rounded to 2 decimal places?", _rounded(best_mean_units, 2),
                 places=2),
        Question("table-units-valve", "pandas", intro + "What is the total number of units of the valve rows?",
                 int(total(valves, "units"))),
        Question("table-max-revenue", "pandas", intro + "Which row has the highest revenue (units times price)? "
                 "Give that revenue, rounded to 2 decimal places.", _rounded(max(map(money, rows)), 2), places=2),
    ]


def _units() -> list[Question]:
    mile, inch, gallon, pound = Fraction("1.609344"), Fraction("2.54"), Fraction("3.785411784"), Fraction("0.45359237")
    return [
        Question("unit-marathon", "units", "A marathon is 26.2 miles. How many kilometres is that, rounded to 2 "
                 "decimal places? (1 mile = 1.609344 km)", _rounded(Fraction("26.2") * mile, 2), places=2),
        Question("unit-fahrenheit", "units", "What is 451 degrees Fahrenheit in degrees Celsius, rounded to 2 "
                 "decimal places?", _rounded((451 - 32) * Fraction(5, 9), 2), places=2),
        Question("unit-height", "units", "How tall is a person of 5 feet 11 inches in centimetres, rounded to 1 "
                 "decimal place? (1 inch = 2.54 cm, 1 foot = 12 inches)", _rounded((5 * 12 + 11) * inch, 1),
                 places=1),
        Question("unit-gallons", "units", "How many litres are 13.5 US gallons, rounded to 3 decimal places? "
                 "(1 US gallon = 3.785411784 litres)", _rounded(Fraction("13.5") * gallon, 3), places=3),
        Question("unit-weeks", "units", "How many seconds are there in 17 weeks?", 17 * 7 * 24 * 3600),
        Question("unit-speed", "units", "What is 65 miles per hour in metres per second, rounded to 2 decimal "
                 "places? (1 mile = 1609.344 m)", _rounded(65 * mile * 1000 / 3600, 2), places=2),
        Question("unit-pounds", "units", "How many kilograms are 187 pounds, rounded to 2 decimal places? "
                 "(1 pound = 0.45359237 kg)", _rounded(187 * pound, 2), places=2),
    ]


def _primes(limit: int) -> list[int]:
    sieve = bytearray([1]) * (limit + 1)
    sieve[0:2] = b"\0\0"
    for i in range(2, math.isqrt(limit) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(range(i * i, limit + 1, i)))
    return [i for i, prime in enumerate(sieve) if prime]


def _number_theory() -> list[Question]:
    primes = _primes(200_000)

    def largest_prime_factor(n: int) -> int:
        factor, largest = 2, 1
        while factor * factor <= n:
            while n % factor == 0:
                largest, n = factor, n // factor
            factor += 1
        return max(largest, n) if n > 1 else largest

    def divisor_count(n: int) -> int:
        return sum(1 for d in range(1, n + 1) if n % d == 0)

    return [
        Question("nt-nth-prime", "number theory", "What is the 1500th prime number?", primes[1499]),
        Question("nt-prime-count", "number theory", "How many prime numbers are there below 150000?",
                 sum(1 for p in primes if p < 150_000)),
        Question("nt-digit-sum", "number theory", "What is the sum of the digits of 2 to the power of 200?",
                 sum(map(int, str(2 ** 200)))),
        Question("nt-modpow", "number theory", "What is 3 to the power of 1000, modulo 1000003?",
                 pow(3, 1000, 1_000_003)),
        Question("nt-gcd", "number theory", "What is the greatest common divisor of 1234567890 and 9876543210?",
                 math.gcd(1234567890, 9876543210)),
        Question("nt-factor", "number theory", "What is the largest prime factor of 9876543210123?",
                 largest_prime_factor(9876543210123)),
        Question("nt-divisors", "number theory", "How many positive divisors does 720720 have?",
                 divisor_count(720720)),
    ]


def all_questions() -> list[Question]:
    """The whole set, in a fixed order (kind by kind)."""
    questions = [*_arithmetic(), *_dates(), *_strings(), *_combinatorics(), *_statistics(), *_pandas(), *_units(),
                 *_number_theory()]
    for question in questions:  # the grading rule drops the question's own numbers: the answer must not be one
        if not isinstance(question.expected, str):
            assert question.expected not in set(numbers(question.text)), question.id
    assert len({q.id for q in questions}) == len(questions)
    return questions


QUICK = ("arith-product", "str-count-letter", "date-between")
"""The ``--quick`` subset: a CI smoke run that keeps the benchmark from rotting, not a measurement."""
