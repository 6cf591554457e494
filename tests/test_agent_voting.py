"""Self-consistency (``candidates``): several programs per code turn, all run, a vote on their outputs.

Against the scripted model (``test_agent.agent``): real server, real sandboxes, real client.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_agent import agent, ask, last_message, sandlot, stdouts
from test_agent_guards import code

from sandlot.agent.config import ActionFormat, AgentSettings
from sandlot.agent.voting import Ballot, agreeing, winner
from sandlot.testing.upstream import Reply

VOTING = AgentSettings(max_steps=3, max_wall_time=30, candidates=3)


def test_the_output_most_candidates_print_wins_and_ties_go_to_the_first() -> None:
    assert winner([Ballot("41", False), Ballot("42", False), Ballot("42", False)]) == 1
    assert winner([Ballot("41", False), Ballot("42", False), Ballot("43", False)]) == 0
    assert winner([Ballot("", False), Ballot("42", True), Ballot("7", False)]) == 2  # no vote: silent, failed
    assert winner([Ballot("", True), Ballot("", False)]) == 0  # nobody has a vote: the model's own reply
    assert agreeing([Ballot("41", False), Ballot("42", False), Ballot("42", False)], 1) == 2
    assert agreeing([Ballot("", True), Ballot("", False)], 0) == 0


@pytest.mark.parametrize("action_format", ["code_blocks", "tool_calls"])
def test_the_majority_program_is_the_step_and_the_model_sees_its_output(action_format: ActionFormat) -> None:
    # The model's own reply is off by one; two of the three samples agree on another output.
    script = [code("x = 41\nprint(x)", action_format), code("x = 42\nprint(x)", action_format),
              code("y = 6 * 7\nx = y\nprint(y)", action_format),
              Reply("The answer is 42.")]
    with agent(script, action_format=action_format, settings=VOTING) as a:
        response = ask(a, "What is six times seven?", temperature=0, seed=100)
        extra = sandlot(response)
        assert extra["stop_reason"] == "answer"
        assert response.choices[0].message.content == "The answer is 42."
        assert stdouts(response) == ["42\n"]  # one step: the winner, not the three runs
        step = extra["steps"][0]
        assert step["code"] == "x = 42\nprint(x)"
        assert step["votes"] == {"candidates": 3, "agreeing": 2}
        requests = a.upstream.requests
        assert len(requests) == 4 and extra["model_calls"] == 4
        # The first call is the request's own; the samples have the candidate temperature and seeds of their own.
        assert (requests[0]["temperature"], requests[0]["seed"]) == (0, 100)
        assert [(r["temperature"], r["seed"]) for r in requests[1:3]] == [(0.7, 101), (0.7, 102)]
        assert requests[1]["messages"] == requests[0]["messages"] == requests[2]["messages"]
        # The model is shown the winning program and only its output.
        shown = str(requests[3]["messages"])
        assert "x = 42" in shown and "x = 41" not in shown and "6 * 7" not in shown
        assert "42" in str(last_message(requests[3])["content"])


def test_the_winners_state_is_the_sessions() -> None:
    """The samples run first and the model's own reply last: a winning sample runs again, so that the
    session holds the winner's variables, and a winning first reply keeps its run."""
    def model(body: dict[str, Any]) -> Reply:
        if any(m.get("content") == "```python\nprint(x)\n```" for m in body["messages"]):
            return Reply("The answer is 42.")
        return code("print(x)", "code_blocks")

    script = [code("x = 41\nprint(x)", "code_blocks"), code("x = 42\nprint(x)", "code_blocks"),
              code("x = 43\nprint(x - 1)", "code_blocks"), model, model, model, model]
    with agent(script, action_format="code_blocks", settings=VOTING) as a:
        response = ask(a, "What is it?")
        # Turn 1: the second candidate wins 2 to 1; the first ran last (x = 41), so the winner runs again.
        # Turn 2: all three print x (42), the first wins, and its run is the step's.
        assert stdouts(response) == ["42\n", "42\n"]
        assert [s["votes"] for s in sandlot(response)["steps"]] == [{"candidates": 3, "agreeing": 2},
                                                                     {"candidates": 3, "agreeing": 3}]


def test_a_failed_candidate_has_no_vote_and_a_sample_that_works_wins() -> None:
    script = [Reply(tool_code="import math\nprint(math.isprime(97))"), Reply("I think it is prime."),
              Reply(tool_code="print(all(97 % d for d in range(2, 97)))"), Reply("Yes, 97 is prime.")]
    with agent(script, settings=VOTING) as a:
        response = ask(a, "Is 97 prime?")
        extra = sandlot(response)
        assert stdouts(response) == ["True\n"]
        assert extra["steps"][0]["status"] == "ok"
        assert extra["steps"][0]["votes"] == {"candidates": 2, "agreeing": 1}  # the text reply was no candidate
        assert "isprime" not in str(a.upstream.requests[3]["messages"])


def test_off_by_default() -> None:
    with agent([code("print(6 * 7)", "tool_calls"), Reply("42.")]) as a:
        response = ask(a)
        assert len(a.upstream.requests) == 2
        assert sandlot(response)["steps"][0]["votes"] is None
