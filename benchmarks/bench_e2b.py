"""The E2B face's cost (issue #15): E2B's own SDK against sandlot, beside sandlot's own client, in one run.

One ``sandlot serve --e2b`` subprocess on loopback. Each round, alternating so both see the same machine:

- E2B: ``Sandbox.create()`` + ``run_code("1+1")`` + ``kill()`` with the unmodified ``e2b-code-interpreter``
  (pointed at the server by ``E2B_API_URL``, ``E2B_SANDBOX_URL`` and ``E2B_API_KEY``);
- sandlot: ``Client.session()`` + ``execute("1+1")`` + ``close()`` with sandlot's own Python client.

Both make a session, run one cell in it and delete it; what differs is the protocol and the client. Goal: the
E2B round trip's p50 within 2x of sandlot's own (informational: the exit status says only whether every round
worked).

Run it as root inside the containment wrapper (``--quick``: fewer rounds, for CI):
    python3 scripts/contained.py python3 benchmarks/bench_e2b.py [--quick] [--rounds N] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator

from sandlot.testing.figures import percentile
from sandlot.testing.serving import ServerProcess

GOAL_RATIO = 2.0
KEY = "e2b_" + "be" * 20


@contextlib.contextmanager
def e2b_server() -> Iterator[str]:
    env = {"SANDLOT_API_KEYS": KEY, "SANDLOT_POOL_SIZE": "4", "SANDLOT_LOG_LEVEL": "warning",
           "SANDLOT_MAX_SESSIONS_PER_KEY": "1000", "SANDLOT_DATA_DIR": ""}  # no sessions left in /var/lib/sandlot
    with ServerProcess("--e2b", env=env, timeout=90) as server:
        yield server.url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer rounds (CI)")
    parser.add_argument("--rounds", type=int, help="rounds of each (default 60; quick 10)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    rounds = args.rounds or (10 if args.quick else 60)

    with e2b_server() as url:
        os.environ.update(E2B_API_URL=url, E2B_SANDBOX_URL=url, E2B_API_KEY=KEY)
        os.environ.pop("E2B_DEBUG", None)
        from e2b_code_interpreter import Sandbox

        from sandlot.client import Client

        client = Client(url, api_key=KEY)

        def e2b_round() -> float:
            started = time.perf_counter()
            sandbox = Sandbox.create()
            text = sandbox.run_code("1+1").text
            sandbox.kill()
            elapsed = (time.perf_counter() - started) * 1000.0
            assert text == "2", text
            return elapsed

        def sandlot_round() -> float:
            started = time.perf_counter()
            with client.session() as session:
                value = session.execute("1+1").outputs[0]
            elapsed = (time.perf_counter() - started) * 1000.0
            assert value.data["text/plain"] == "2", value  # type: ignore[union-attr]
            return elapsed

        for warm in (e2b_round, sandlot_round):  # first calls pay for imports and connections
            warm()
        e2b_ms: list[float] = []
        sandlot_ms: list[float] = []
        for _ in range(rounds):
            e2b_ms.append(e2b_round())
            sandlot_ms.append(sandlot_round())
        client.close()

    ratio = percentile(e2b_ms, 50) / percentile(sandlot_ms, 50)
    print(f"create + run 1+1 + delete, {rounds} rounds each, interleaved (ms)")
    print(f"  {'':28} {'p50':>8} {'p95':>8}")
    print(f"  {'sandlot client (baseline)':28} {percentile(sandlot_ms, 50):8.1f} {percentile(sandlot_ms, 95):8.1f}")
    print(f"  {'E2B SDK via --e2b':28} {percentile(e2b_ms, 50):8.1f} {percentile(e2b_ms, 95):8.1f}")
    met = ratio <= GOAL_RATIO
    print(f"  ratio (p50) {ratio:.2f}x, goal <= {GOAL_RATIO:g}x: {'MET' if met else 'MISSED'}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"rounds": rounds, "e2b_ms": e2b_ms, "sandlot_ms": sandlot_ms, "ratio_p50": ratio, "met": met}, out)
    # The goal is informational (the machine's load moves both sides); a failed round raised above.


if __name__ == "__main__":
    main()
