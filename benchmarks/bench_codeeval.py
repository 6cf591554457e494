"""A code-evaluation workload: short programs with asserts through ``/v1/batch``, against a harness that forks a
plain ``multiprocessing.Process`` per program and isolates nothing, in one run.

The programs are generated here: ten kinds of small function (primes, Fibonacci, palindromes, run-length
encoding, gcd, a bubble sort, vowels, flattening, matrix products, word reversal), each with a handful of
asserts, and one in five of them deliberately wrong so that some fail, as model-written solutions do. Pure
Python only: neither side gets an import for free (sandlot's zygote has numpy and pandas preloaded; the harness
does not, and a program that used them would tilt the comparison).

Both sides classify each program the same way: passed, failed an assert, or raised something else, and the
bench checks the two classifications are identical. The harness keeps as many processes running as there are
CPUs; sandlot gets the programs as batches of ``max_batch_items`` (32), one batch after another, on a server
with its default settings. Goal (issue #13): sandlot at least 3x faster, with every result identical.

    python3 scripts/contained.py python3 benchmarks/bench_codeeval.py [--quick] [--programs N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import time
from typing import Any

import httpx

from sandlot.testing.serving import ServerProcess

BATCH = 32
GOAL = 3.0
TIMEOUT = 10.0
"""Seconds a program may run on either side (a wrong program may loop)."""

KINDS = {
    "primes": ("def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n"
               "        if n % i == 0:\n            return False\n        i += {step}\n    return True\n",
               ["assert is_prime({p})", "assert not is_prime({p} * {q})", "assert is_prime(2)", "assert not is_prime(1)"]),
    "fibonacci": ("def fib(n):\n    a, b = 0, 1\n    for _ in range(n{off}):\n        a, b = b, a + b\n    return a\n",
                  ["assert fib(10) == 55", "assert fib({n}) == {fib_n}", "assert fib(1) == 1"]),
    "palindrome": ("def is_palindrome(s):\n    t = ''.join(c.lower() for c in s if c.isalnum())\n    return t == t[::{rev}]\n",
                   ["assert is_palindrome('A man, a plan, a canal: Panama')", "assert not is_palindrome('{word}x')",
                    "assert is_palindrome('{word}' + '{word}'[::-1])"]),
    "rle": ("def rle(s):\n    out = []\n    for c in s:\n        if out and out[-1][0] == c:\n            out[-1][1] += 1\n"
            "        else:\n            out.append([c, {start}])\n    return ''.join(f'{{c}}{{n}}' for c, n in out)\n",
            ["assert rle('aaabcc') == 'a3b1c2'", "assert rle('{word}') == ''.join(f'{{c}}1' for c in '{word}')"]),
    "gcd": ("def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a{plus}\n",
            ["assert gcd({a} * {k}, {b} * {k}) == {k} * gcd({a}, {b})", "assert gcd(12, 18) == 6", "assert gcd(7, 0) == 7"]),
    "sort": ("def bubble(xs):\n    xs = list(xs)\n    for i in range(len(xs)):\n        for j in range(len(xs) - 1 - i{bug}):\n"
             "            if xs[j] > xs[j + 1]:\n                xs[j], xs[j + 1] = xs[j + 1], xs[j]\n    return xs\n",
             ["data = {data}", "assert bubble(data) == sorted(data)", "assert bubble([]) == []"]),
    "vowels": ("def vowels(s):\n    return sum(1 for c in s.lower() if c in '{vowels}')\n",
               ["assert vowels('{word}') == {n_vowels}", "assert vowels('AEIOU') == 5"]),
    "flatten": ("def flatten(xs):\n    out = []\n    for x in xs:\n        if isinstance(x, list):\n"
                "            out.extend(flatten(x){bug})\n        else:\n            out.append(x)\n    return out\n",
                ["assert flatten([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]", "assert flatten({nested}) == {flat}"]),
    "matmul": ("def matmul(a, b):\n    return [[sum(a[i][k] * b[k][j] for k in range(len(b){bug})) for j in range(len(b[0]))]\n"
               "            for i in range(len(a))]\n",
               ["m = {m}", "assert matmul(m, [[1, 0], [0, 1]]) == m",
                "assert matmul([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]"]),
    "reverse": ("def reverse_words(s):\n    return ' '.join(s.split(){rev})\n",
                ["assert reverse_words('{w1} {w2} {w3}') == '{w3} {w2} {w1}'", "assert reverse_words('one') == 'one'"]),
}
PRIMES = [101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167, 173, 179, 181, 191, 193, 197]
WORDS = ["level", "python", "sandbox", "kernel", "zygote", "namespace", "cgroup", "seccomp", "batch", "session"]


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def program(kind: str, rng: random.Random, wrong: bool) -> str:
    """One program of ``kind``: the function (with its bug when ``wrong``), then its asserts."""
    body, asserts = KINDS[kind]
    word = rng.choice(WORDS)
    nested = [rng.randrange(9), [rng.randrange(9), [rng.randrange(9)]], rng.randrange(9)]
    flat = [nested[0], nested[1][0], nested[1][1][0], nested[2]]  # type: ignore[index]
    n = rng.randrange(20, 60)
    values = {
        "step": 2 if wrong else 1, "p": rng.choice(PRIMES), "q": rng.choice(PRIMES),
        "off": " - 1" if wrong else "", "n": n, "fib_n": fib(n),
        "rev": "1" if wrong else "-1", "word": word,
        "start": 0 if wrong else 1,
        "bug": " - 1" if wrong else "", "plus": " + 1" if wrong else "",
        "a": rng.randrange(2, 50), "b": rng.randrange(2, 50), "k": rng.randrange(2, 9),
        "data": [rng.randrange(100) for _ in range(rng.randrange(5, 40))],
        "vowels": "aei" if wrong else "aeiou", "n_vowels": sum(c in "aeiou" for c in word),
        "nested": nested, "flat": flat,
        "m": [[rng.randrange(9) for _ in range(2)] for _ in range(2)],
        "w1": rng.choice(WORDS), "w2": rng.choice(WORDS), "w3": rng.choice(WORDS),
    }
    if kind == "reverse":
        values["rev"] = "" if wrong else "[::-1]"
    return body.format(**values) + "\n".join(line.format(**values) for line in asserts) + "\n"


def programs(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    kinds = sorted(KINDS)
    return [program(kinds[i % len(kinds)], rng, wrong=rng.random() < 0.2) for i in range(count)]


# ---- the baseline: a multiprocessing.Process per program -----------------------------------

def _child(code: str) -> None:
    try:
        exec(compile(code, "<program>", "exec"), {"__name__": "__main__"})
    except AssertionError:
        os._exit(1)
    except BaseException:
        os._exit(2)
    os._exit(0)


def harness(codes: list[str]) -> tuple[float, list[str]]:
    context = multiprocessing.get_context("fork")
    outcome: list[str] = [""] * len(codes)
    running: dict[int, Any] = {}
    begun: dict[int, float] = {}
    started = time.perf_counter()
    index = 0
    while index < len(codes) or running:
        while index < len(codes) and len(running) < (os.cpu_count() or 1):
            process = context.Process(target=_child, args=(codes[index],))
            process.start()
            running[index], begun[index] = process, time.perf_counter()
            index += 1
        for i, process in list(running.items()):
            if process.is_alive() and time.perf_counter() - begun[i] > TIMEOUT:
                process.kill()
                process.join()
                outcome[i] = "timeout"
                del running[i]
            elif not process.is_alive():
                process.join()
                outcome[i] = {0: "passed", 1: "AssertionError"}.get(process.exitcode, "other")
                del running[i]
        time.sleep(0.0005)
    return time.perf_counter() - started, outcome


# ---- sandlot: the same programs through /v1/batch -----------------------------------------

def classify(result: dict[str, Any]) -> str:
    if result["status"] == "ok":
        return "passed"
    if result["status"] == "timeout":
        return "timeout"
    error = result.get("error") or {}
    return "AssertionError" if error.get("ename") == "AssertionError" else "other"


def through_sandlot(url: str, codes: list[str]) -> tuple[float, list[str]]:
    outcome: list[str] = []
    with httpx.Client(base_url=url, timeout=120) as client:
        started = time.perf_counter()
        for first in range(0, len(codes), BATCH):
            response = client.post("/v1/batch", json={"items": [{"code": c, "timeout": TIMEOUT} for c in codes[first:first + BATCH]]})
            assert response.status_code == 200, response.text
            outcome += [classify(r) for r in response.json()["results"]]
        return time.perf_counter() - started, outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="64 programs, one round (CI)")
    parser.add_argument("--programs", type=int, help="how many programs (default 160; --quick 64)")
    parser.add_argument("--rounds", type=int, help="rounds of both sides, alternating (default 3; --quick 1)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    count = args.programs or (64 if args.quick else 160)
    rounds = args.rounds or (1 if args.quick else 3)
    codes = programs(count)
    # sessions in the state dir, gone with the server
    with ServerProcess("--log-level", "warning", env={"SANDLOT_DATA_DIR": ""}) as server:
        url = server.url
        through_sandlot(url, codes[:BATCH])  # warm-up: the pool and the connection
        base_times, sandlot_times, same = [], [], True
        for _ in range(rounds):
            seconds, expected = harness(codes)
            base_times.append(seconds)
            seconds, got = through_sandlot(url, codes)
            sandlot_times.append(seconds)
            same = same and got == expected
    base, ours = min(base_times), min(sandlot_times)
    counts = {k: expected.count(k) for k in ("passed", "AssertionError", "other", "timeout")}
    print(f"code evaluation: {count} programs ({counts}); best of {rounds}; {os.cpu_count()} CPUs")
    print(f"  multiprocessing.Process per program  {base:7.3f} s  {count / base:7.1f} programs/s")
    print(f"  sandlot /v1/batch ({BATCH} per batch)   {ours:7.3f} s  {count / ours:7.1f} programs/s")
    ratio = base / ours
    print(f"  {'MET ' if ratio >= GOAL and same else 'MISS'}  sandlot {ratio:.2f}x the harness (goal >= {GOAL:g}x), "
          f"results {'identical' if same else 'DIFFERENT'}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"programs": count, "counts": counts, "harness_s": base_times, "sandlot_s": sandlot_times,
                       "ratio": ratio, "identical": same}, f, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
