"""The agent loop's guards and observations, against scripted models that misbehave as small models do.

Each guard is tested with the model it is for: one that repeats its code, one that never stops
writing code, one that answers with the observation (or with sandlot's own words), one that writes
no code, one that answers after its code failed; in both action formats where the format matters. The server, the sandboxes and the
client are real (``test_agent.agent``); only the model is scripted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import TIGHT_LIMITS
from test_agent import FINAL, agent, ask, last_message, sandlot, stdouts

from sandlot.agent import prompts
from sandlot.agent.config import ActionFormat, AgentSettings
from sandlot.agent.guards import Repetition, own_words, runaway, uncomputed_numbers
from sandlot.testing.upstream import Reply

FORMATS: list[ActionFormat] = ["code_blocks", "tool_calls"]


def code(text: str, action_format: ActionFormat) -> Reply:
    """A reply that runs ``text``, in the given format."""
    return Reply(f"```python\n{text}\n```") if action_format == "code_blocks" else Reply(tool_code=text)


def code_disabled(body: dict[str, Any]) -> bool:
    """The request asks for the final answer with code disabled (no tool, or the tool switched off)."""
    return body.get("tool_choice") == "none" or "Stop running code now" in str(last_message(body)["content"])


def answers_when_code_is_disabled(text: str, action_format: ActionFormat) -> Callable[[dict[str, Any]], Reply]:
    def reply(body: dict[str, Any]) -> Reply:
        return Reply(FINAL) if code_disabled(body) else code(text, action_format)
    return reply


# ---- a model that repeats --------------------------------------------------------------

@pytest.mark.parametrize("action_format", FORMATS)
def test_a_model_that_repeats_is_told_to_answer_then_asked_with_code_disabled(action_format: ActionFormat) -> None:
    again = answers_when_code_is_disabled("print(987654321 * 123456789)", action_format)
    with agent([again] * 4, action_format=action_format, settings=AgentSettings(max_steps=10)) as a:
        response = ask(a, "What is 987654321 * 123456789?")
        extra = sandlot(response)
        assert extra["stop_reason"] == "repetition"
        assert response.choices[0].finish_reason == "stop"
        assert response.choices[0].message.content == FINAL
        assert stdouts(response) == ["121932631112635269\n"] * 3  # not ten: max_steps is the last resort
        requests = a.upstream.requests
        assert len(requests) == 4
        # The second run of the same code: its output, then the nudge.
        shown = last_message(requests[2])["content"]
        assert "121932631112635269" in shown and shown.endswith(prompts.REPEATED_NUDGE)
        assert prompts.REPEATED_NUDGE not in str(requests[1]["messages"])  # not after the first run
        # The third: the final answer is asked for with code disabled, reminded of the output.
        final = requests[3]
        assert code_disabled(final)
        assert "The last output of your code was: 121932631112635269." in last_message(final)["content"]
        if action_format == "tool_calls":
            assert final["tool_choice"] == "none"


@pytest.mark.parametrize("action_format", FORMATS)
def test_a_model_told_it_repeated_itself_can_answer(action_format: ActionFormat) -> None:
    script = [code("print(6 * 7)", action_format), code("print(6 * 7)", action_format), Reply("It is 42.")]
    with agent(script, action_format=action_format) as a:
        response = ask(a)
        assert sandlot(response)["stop_reason"] == "answer"
        assert response.choices[0].message.content == "It is 42."
        assert last_message(a.upstream.requests[2])["content"].endswith(prompts.REPEATED_NUDGE)


def test_the_same_output_from_different_code_counts_as_a_repeat() -> None:
    script = [code("print(6 * 7)", "tool_calls"), code("x = 42\nprint(x)", "tool_calls"), Reply("42.")]
    with agent(script) as a:
        response = ask(a)
        assert sandlot(response)["stop_reason"] == "answer"
        assert last_message(a.upstream.requests[2])["content"] == "42\n" + prompts.REPEATED_NUDGE


def test_the_same_code_with_a_new_output_is_no_repeat() -> None:
    step = "try:\n    n += 1\nexcept NameError:\n    n = 1\nprint(n)"
    script = [code(step, "tool_calls")] * 3 + [Reply("3.")]
    with agent(script, settings=AgentSettings(max_steps=5)) as a:
        response = ask(a)
        assert stdouts(response) == ["1\n", "2\n", "3\n"]
        assert sandlot(response)["stop_reason"] == "answer"
        assert prompts.REPEATED_NUDGE not in str(a.upstream.requests)


# ---- a model that never answers -----------------------------------------------------------

@pytest.mark.parametrize("action_format", FORMATS)
def test_a_model_that_never_answers_gets_a_reply_with_the_last_result(action_format: ActionFormat) -> None:
    turns = iter(range(1, 100))

    def more_code(body: dict[str, Any]) -> Reply:  # new code every turn, even when told to stop
        n = next(turns)
        return code(f"print({n} * 1000 + 7)", action_format)

    with agent([more_code] * 4, action_format=action_format) as a:  # max_steps 3
        response = ask(a)
        extra = sandlot(response)
        assert extra["stop_reason"] == "max_steps"
        assert response.choices[0].finish_reason == "length"
        content = response.choices[0].message.content or ""
        # sandlot wrote the reply: why it stopped, and the last result; no code, no observation format.
        assert content == "I stopped before finishing: the limit of 3 code steps was reached. " \
                          "The last result of the code was:\n3007"
        assert "```" not in content
        assert len(extra["steps"]) == 3 and extra["model_calls"] == 4


def test_a_final_reply_that_parrots_the_request_is_no_answer() -> None:
    turns = iter(range(1, 100))

    def model(body: dict[str, Any]) -> Reply:
        if body.get("tool_choice") == "none":  # copies sandlot's request back, as a 0.5B model did
            return Reply("The limit of 3 code steps was reached.")
        return Reply(tool_code=f"print({next(turns)} + 100)")

    with agent([model] * 4) as a:
        response = ask(a)
        assert sandlot(response)["stop_reason"] == "max_steps"
        assert response.choices[0].message.content == (
            "I stopped before finishing: the limit of 3 code steps was reached. The last result of the code was:\n103")


# ---- a model that answers with the observation ----------------------------------------------

@pytest.mark.parametrize("action_format", FORMATS)
def test_an_answer_that_copies_the_output_format_is_the_bare_value(action_format: ActionFormat) -> None:
    script = [code("print(300 + 59)", action_format), Reply("```output\n359\n```")]
    with agent(script, action_format=action_format) as a:
        response = ask(a)
        assert response.choices[0].message.content == "359"  # a bare number after a code step is an answer
        assert sandlot(response)["stop_reason"] == "answer"
        assert len(a.upstream.requests) == 2


def test_an_answer_with_the_output_block_and_words_keeps_the_words() -> None:
    script = [code("print(300 + 59)", "code_blocks"), Reply("```output\n359\n```\nThe sum is 359.")]
    with agent(script, action_format="code_blocks") as a:
        assert ask(a).choices[0].message.content == "The sum is 359."


def test_an_answer_that_is_only_sandlots_words_is_asked_again() -> None:
    # The code printed nothing; the model copies the observation back: the nudge, inside a fence.
    echo = Reply(f"```output\n{prompts.NO_OUTPUT}\n```\n{prompts.PRINT_NUDGE}")
    script = [code("total = sum(range(10))", "code_blocks"), echo, code("print(total)", "code_blocks"),
              Reply("The total is 45.")]
    with agent(script, action_format="code_blocks") as a:
        response = ask(a)
        assert response.choices[0].message.content == "The total is 45."
        assert sandlot(response)["stop_reason"] == "answer"
        assert last_message(a.upstream.requests[2])["content"] == prompts.ECHO_NUDGE


def test_a_model_that_only_echoes_ends_with_no_answer_and_the_last_result() -> None:
    # It copies a piece of the system prompt, then, asked again, the request itself.
    script = [code("print(2 ** 10)", "tool_calls"), Reply("Compute every such value with code and answer from the code's output."),
              Reply(prompts.ECHO_NUDGE), Reply("never asked")]
    with agent(script) as a:
        response = ask(a)
        extra = sandlot(response)
        assert extra["stop_reason"] == "no_answer"
        assert response.choices[0].finish_reason == "stop"
        assert response.choices[0].message.content == (
            "I stopped before finishing: the model replied without an answer. The model gave no answer of its own. "
            "The last result of the code was:\n1024")
        assert a.upstream.remaining == 1


# ---- a model that loops inside one reply ---------------------------------------------------

def test_a_reply_cut_in_a_loop_is_asked_again_once_with_a_frequency_penalty() -> None:
    loop = "```python\n# The paths from (0, 0) to (3, 2):\n" + "# C(5, 2) = 10 / 1\n" * 40
    script = [Reply(loop, finish_reason="length"), code("import math\nprint(math.comb(5, 2))", "code_blocks"),
              Reply("The answer is 10.")]
    with agent(script, action_format="code_blocks") as a:
        response = ask(a, "How many shortest grid paths lead from (0, 0) to (3, 2)?")
        assert response.choices[0].message.content == "The answer is 10."
        assert stdouts(response) == ["10\n"]
        first, again, _ = a.upstream.requests
        assert "frequency_penalty" not in first
        assert again["frequency_penalty"] == 0.5
        assert again["messages"] == first["messages"]  # the loop is not shown to the model

    # Once per request: a second loop is looked at as any other reply; and a long reply the limit cut
    # without looping is no runaway.
    with agent([Reply(loop, finish_reason="length"), Reply(loop, finish_reason="length")],
               action_format="code_blocks", settings=AgentSettings(max_steps=3, compute_numbers=False)) as a:
        ask(a)
        assert [body.get("frequency_penalty") for body in a.upstream.requests] == [None, 0.5]
    long_cut = "Here is why: " + " ".join(f"step {n} adds {n * n}" for n in range(60))
    with agent([Reply(long_cut, finish_reason="length")], settings=AgentSettings(max_steps=3, compute_numbers=False)) as a:
        assert ask(a).choices[0].message.content == long_cut
        assert len(a.upstream.requests) == 1


def test_runaway_needs_the_token_limit_and_a_repeated_piece() -> None:
    assert runaway("values = [" + "12, " * 80, "length")
    assert not runaway("values = [" + "12, " * 80, "stop")  # the model ended it itself
    assert not runaway(" ".join(f"word{n}" for n in range(300)), "length")
    assert not runaway("12, " * 20, "length")  # too short to tell


# ---- a model that writes no code ---------------------------------------------------------

@pytest.mark.parametrize("action_format", FORMATS)
def test_a_model_that_writes_no_code_is_asked_once_to_compute_its_numbers(action_format: ActionFormat) -> None:
    script = [Reply("There are 2 letters r in strawberry."), code("print('strawberry'.count('r'))", action_format),
              Reply("The answer is 3.")]
    with agent(script, action_format=action_format) as a:
        response = ask(a, "How many letters r are in strawberry?")
        assert response.choices[0].message.content == "The answer is 3."
        assert sandlot(response)["stop_reason"] == "answer"
        assert stdouts(response) == ["3\n"]
        first, second, _ = a.upstream.requests
        # What it was shown first: the rule that computation goes through code, and one worked example.
        system, *example, question = first["messages"]
        assert system["role"] == "system" and prompts.CODE_RULE in system["content"]
        assert [m["role"] for m in example] == ["user", "assistant", "tool" if action_format == "tool_calls"
                                                else "user", "assistant"]
        assert example[0]["content"] == prompts.EXAMPLE_QUESTION and example[-1]["content"] == prompts.EXAMPLE_ANSWER
        assert question == {"role": "user", "content": "How many letters r are in strawberry?"}
        # Its answer held a number no code had produced: it was asked, once, to compute it.
        assert second["messages"][-2:] == [{"role": "assistant", "content": "There are 2 letters r in strawberry."},
                                           {"role": "user", "content": prompts.UNCOMPUTED_NUDGE[
                                               action_format == "tool_calls"]}]


def test_a_model_that_still_writes_no_code_is_answered_as_it_is() -> None:
    with agent([Reply("It is 12."), Reply("It is 12, from memory.")]) as a:
        response = ask(a, "What is 3 times 4?")
        assert response.choices[0].message.content == "It is 12, from memory."
        assert (sandlot(response)["stop_reason"], sandlot(response)["steps"]) == ("answer", [])
        assert len(a.upstream.requests) == 2


def test_an_answer_without_new_numbers_passes_through() -> None:
    # Numbers the question gave, restated, need no code; neither does an answer without numbers.
    with agent([Reply("Yes, 2024 and 2025 are both after 2000."), Reply("Paris.")]) as a:
        assert ask(a, "Are 2024 and 2025 after 2000?").choices[0].message.content == \
            "Yes, 2024 and 2025 are both after 2000."
        assert ask(a, "Capital of France?").choices[0].message.content == "Paris."
        assert len(a.upstream.requests) == 2


def test_the_number_check_can_be_switched_off() -> None:
    with agent([Reply("It is 12.")], settings=AgentSettings(max_steps=3, compute_numbers=False)) as a:
        assert ask(a, "What is 3 times 4?").choices[0].message.content == "It is 12."


def test_an_answer_straight_after_a_failed_run_is_sent_back_once() -> None:
    script = [code("print(undefined_name)", "tool_calls"), Reply("The answer is 7."),
              code("print(3 + 4)", "tool_calls"), Reply("The answer is 7.")]
    with agent(script) as a:
        response = ask(a)
        assert response.choices[0].message.content == "The answer is 7."
        assert [step["status"] for step in sandlot(response)["steps"]] == ["error", "ok"]
        assert last_message(a.upstream.requests[2]) == {"role": "user", "content": prompts.FAILED_NUDGE}

    # Once only: a model that answers again after the same failure is answered.
    with agent([code("print(undefined_name)", "tool_calls"), Reply("It is 7."), Reply("Still 7.")]) as a:
        response = ask(a)
        assert response.choices[0].message.content == "Still 7."
        assert sandlot(response)["stop_reason"] == "answer"


@pytest.mark.parametrize("action_format", FORMATS)
def test_an_answer_straight_after_a_run_that_printed_nothing_is_sent_back_once(action_format: ActionFormat) -> None:
    # The code computed the count but printed nothing; the model makes one up.
    script = [code("count = sum(1 for n in range(2, 100) if all(n % d for d in range(2, n)))", action_format),
              Reply("The answer is 1200."), code("print(count)", action_format), Reply("The answer is 25.")]
    with agent(script, action_format=action_format) as a:
        response = ask(a, "How many primes are there below 100?")
        assert response.choices[0].message.content == "The answer is 25."
        assert stdouts(response) == ["", "25\n"]
        sent_back = a.upstream.requests[2]["messages"][-2:]
        assert sent_back[0]["content"] == "The answer is 1200."
        assert sent_back[1] == {"role": "user", "content": prompts.SILENT_NUDGE}

    # Once per run: a model that answers again without printing is answered.
    with agent([code("x = 6 * 7", action_format), Reply("It is 42."), Reply("42, as I said.")],
               action_format=action_format) as a:
        response = ask(a)
        assert response.choices[0].message.content == "42, as I said."
        assert sandlot(response)["stop_reason"] == "answer"


def test_an_answer_that_ignores_the_hint_after_its_output_is_sent_back_once() -> None:
    # A printed column of values where one was wanted: the hint says to reduce it; the model answers
    # with the first value anyway, is sent back, and sums.
    column = "import pandas as pd\nprint(pd.Series([3, 4]) * pd.Series([1.5, 2.0]))"
    script = [code(column, "tool_calls"), Reply("The answer is 4.5."),
              code("print((pd.Series([3, 4]) * pd.Series([1.5, 2.0])).sum())", "tool_calls"),
              Reply("The answer is 12.5.")]
    with agent(script) as a:
        response = ask(a, "What is the total of 3 times 1.5 and 4 times 2.0?")
        assert response.choices[0].message.content == "The answer is 12.5."
        shown = last_message(a.upstream.requests[1])["content"]
        assert shown.endswith(prompts.SERIES_HINT.format(count=2))
        assert last_message(a.upstream.requests[2]) == {"role": "user", "content": prompts.HINT_NUDGE}

    # An output without a hint is an answer the first time.
    with agent([code("print(3 * 1.5 + 4 * 2.0)", "tool_calls"), Reply("The answer is 12.5.")]) as a:
        assert ask(a).choices[0].message.content == "The answer is 12.5."
        assert len(a.upstream.requests) == 2


@pytest.mark.parametrize("action_format", FORMATS)
def test_a_client_with_its_own_system_message_gets_the_protocol_only(action_format: ActionFormat) -> None:
    with agent([Reply("Hi.")], action_format=action_format) as a:
        client = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"}]
        a.client.chat.completions.create(model="m", messages=client)  # type: ignore[arg-type]
        (body,) = a.upstream.requests
        protocol = prompts.TOOL_PROTOCOL_PROMPT if action_format == "tool_calls" else prompts.CODE_BLOCK_PROTOCOL_PROMPT
        assert body["messages"] == [{"role": "system", "content": protocol}, *client]  # no rules, no example


def test_an_output_the_model_imagined_after_its_code_is_cut() -> None:
    reply = "```python\nprint(len('strawberry'))\n```\n```output\n9\n```\nThe word has 9 letters."
    with agent([Reply(reply), Reply("It has 10 letters.")], action_format="code_blocks") as a:
        response = ask(a)
        assert stdouts(response) == ["10\n"]
        assert response.choices[0].message.content == "It has 10 letters."
        assistant, shown = a.upstream.requests[1]["messages"][-2:]
        assert assistant == {"role": "assistant", "content": "```python\nprint(len('strawberry'))\n```"}
        assert shown == {"role": "user", "content": "```output\n10\n```"}


# ---- observations --------------------------------------------------------------------------

OBSERVING = AgentSettings(max_steps=3, max_wall_time=30)


def observed(code_text: str, settings: AgentSettings = OBSERVING, **limits: Any) -> str:
    """What the model was shown after running ``code_text`` (as a tool call), with these ``limits``."""
    # "Done." twice: an answer straight after a failed run is sent back once.
    with agent([Reply(tool_code=code_text), Reply("Done."), Reply("Done.")], settings=settings,
               limits=TIGHT_LIMITS.model_copy(update=limits)) as a:
        ask(a)
        content: str = last_message(a.upstream.requests[1])["content"]
        return content


def test_a_trailing_expression_shows_its_value() -> None:
    assert observed("x = 6 * 7\nx") == "42"


def test_code_that_prints_nothing_gets_a_nudge_to_print() -> None:
    assert observed("x = 6 * 7") == f"{prompts.NO_OUTPUT}\n{prompts.PRINT_NUDGE}"


def test_a_timeout_says_the_code_was_too_slow() -> None:
    naive = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\nprint(fib(60))"
    text = observed(naive, timeout=2)
    assert text.startswith(prompts.NO_OUTPUT + "\nToo slow: the code was stopped after 2 s.")
    assert "iterative" in text and "KeyboardInterrupt" not in text and "sandlot_runtime" not in text


def test_a_memory_kill_says_to_use_less_memory() -> None:
    assert observed("x = bytearray(2 * 1024 ** 3)").endswith(prompts.MEMORY_HINT)  # over TIGHT_LIMITS' 256 MiB


def test_a_printed_series_of_several_values_is_told_to_reduce_them() -> None:
    assert observed("import pandas as pd\nprint(pd.Series([1.5, 2.5, 3.0], name='x'))").endswith(
        "Name: x, dtype: float64\n" + prompts.SERIES_HINT.format(count=3))
    assert observed("import pandas as pd\npd.Series(range(100))").endswith(prompts.SERIES_HINT.format(count=100))
    # One value, a sum, a table: nothing to reduce.
    assert observed("import pandas as pd\nprint(pd.Series([7]))") == "0    7\ndtype: int64"
    assert observed("import pandas as pd\nprint(pd.Series([1, 2]).sum())") == "3"
    assert prompts.SERIES_HINT.split(" ", 3)[3][:20] not in observed(
        "import pandas as pd\nprint(pd.DataFrame({'a': [1, 2], 'b': [3, 4]}))")


def test_a_list_copied_from_the_question_incompletely_is_told_how_many_numbers_it_has() -> None:
    question = "Here are the scores: 12, 40, 7, 33, 25, 18. What is their sum?"
    script = [code("scores = [12, 40, 7, 33]\nprint(sum(scores))", "tool_calls"), Reply("The answer is 92."),
              code("scores = [12, 40, 7, 33, 25, 18]\nprint(sum(scores))", "tool_calls"), Reply("The answer is 135.")]
    with agent(script) as a:
        response = ask(a, question)
        assert response.choices[0].message.content == "The answer is 135."
        shown = last_message(a.upstream.requests[1])["content"]
        assert shown == "92\n" + prompts.COPY_HINT.format(kept=4, given=6, foreign="")
        assert last_message(a.upstream.requests[2]) == {"role": "user", "content": prompts.HINT_NUDGE}
        assert len(a.upstream.requests) == 4  # the whole copy got no hint: its answer stands

    # Once per request: a second short copy is shown as it is, and its answer stands.
    script = [code("scores = [12, 40, 7, 33]\nprint(sum(scores))", "tool_calls"), Reply("The answer is 92."),
              code("scores = [12, 40, 7, 33, 25]\nprint(sum(scores))", "tool_calls"), Reply("The answer is 117.")]
    with agent(script) as a:
        assert ask(a, question).choices[0].message.content == "The answer is 117."
        assert last_message(a.upstream.requests[3])["content"] == "117"


def test_code_that_prints_only_what_it_was_given_is_told_to_compute() -> None:
    assert observed("print(89)") == f"89\n{prompts.LITERAL_HINT}"
    assert observed("print(2 ** 10)") == "1024"


def test_a_missing_file_says_what_there_is_and_where_data_can_come_from() -> None:
    text = observed("import pandas as pd\ndf = pd.read_csv('products.csv')")
    assert text.endswith(prompts.MISSING_FILE.format(name="'products.csv'"))
    # The frames shown are the model's own code's, not pandas' insides.
    assert "line 2, in <module>" in text and "pandas/io" not in text


def test_a_name_a_module_lacks_gets_the_names_it_has_that_are_closest() -> None:
    text = observed("import math\nprint(math.isprime(97))")
    assert "\nmath has no 'isprime' at line 2. Its names closest to it are: " in text and "isqrt" in text
    assert text.endswith("Use one of them if it does what you need; if not, write that part yourself.")
    text = observed("from statistics import meen\nprint(meen([1, 2]))")
    assert "statistics has no 'meen' at line 1. Its names closest to it are: mean" in text


def test_the_names_are_looked_up_in_the_sandbox_not_on_the_host() -> None:
    """A module only the session's interpreter has: the host could not tell its names."""
    made = ("import sys, types\nsys.modules['lab_only_module'] = types.ModuleType('lab_only_module')\n"
            "sys.modules['lab_only_module'].frobnicate = abs\nprint('made')")
    wrong = "import lab_only_module\nprint(lab_only_module.frobnicat(3))"
    script = [Reply(tool_code=made), Reply(tool_code=wrong),
              Reply(tool_code="print('__sandlot_close_names' in globals())"), Reply("Done.")]
    with agent(script, settings=OBSERVING) as a:
        response = ask(a)
        shown = last_message(a.upstream.requests[2])["content"]
        assert "lab_only_module has no 'frobnicat' at line 2. Its names closest to it are: frobnicate." in shown
        assert stdouts(response)[-1] == "False\n"  # the lookup left no name behind
    with pytest.raises(ImportError):
        __import__("lab_only_module")


def test_a_name_nothing_is_like_says_to_write_it() -> None:
    text = observed("import math\nprint(math.zzzzqqqq(5))")
    assert text.endswith(prompts.NO_CLOSE_NAMES.format(module="math", name="zzzzqqqq", where=" at line 2"))


def test_a_missing_dataframe_column_says_how_to_see_the_columns() -> None:
    code = "import pandas as pd\ndf = pd.DataFrame({'units': [1, 2], 'price': [3.0, 4.0]})\nprint(df['revenue'].sum())"
    text = observed(code)
    assert text.endswith(prompts.MISSING_COLUMN.format(where=" at line 3", evalue="'revenue'")), text
    assert observed("d = {'a': 1}\nd['b']").endswith("KeyError at line 2: 'b'. Fix this and run the code again.")


def test_an_error_hint_fits_the_result_budget() -> None:
    budget = 300
    text = observed("raise ValueError('x' * 5000)", OBSERVING.model_copy(update={"result_budget": budget}))
    assert len(text) <= budget
    assert text.endswith("Fix this and run the code again.") and "\nValueError at line 1: xxx" in text


# ---- the guards, alone ------------------------------------------------------------------------

def test_repetition_counts_repeats_in_a_row() -> None:
    guard = Repetition()
    assert guard.record(["print(1)"], "1") == 0
    assert guard.record(["print( 1 )"], "1") == 1  # the same code, however spaced
    assert guard.record(["print(2 - 1)"], "1") == 2  # the same output
    assert guard.record(["x = 1"], "") == 0  # nothing printed is no repeat of anything
    assert guard.record(["y = 2"], "") == 0
    assert guard.record(["y = 2"], "") == 1  # the same code, printing nothing again
    assert guard.record(["1 / 0"], "", failed=True) == 0  # failures are repeated_failure's
    assert guard.record(["1 / 0"], "", failed=True) == 0


def test_uncomputed_numbers() -> None:
    assert uncomputed_numbers("It is 46 days.", ["How many days from 2024-01-15 to 2024-03-01?"])
    assert not uncomputed_numbers("From 2024-01-15 to 2024-03-01.", ["How many days from 2024-01-15 to 2024-03-01?"])
    assert not uncomputed_numbers("Paris.", ["Capital of France?"])
    assert not uncomputed_numbers("It is 1,000.", ["Is 1000 a lot?"])
    assert not uncomputed_numbers("Run this:\n```python\nprint(3 ** 4)\n```", ["What is it?"])  # code claims nothing


def test_own_words_takes_out_what_sandlot_said() -> None:
    said = [prompts.ECHO_NUDGE, "Stop running code now: the limit of 10 code steps was reached.", prompts.NO_OUTPUT,
            prompts.CODE_BLOCK_SYSTEM_PROMPT]
    assert own_words("The answer is 12.", said) == "The answer is 12."
    assert own_words("the limit of 10 code steps was reached", said) == ""
    assert own_words("```output\n359\n```", said) == "359"
    assert own_words("```output\n359\n```\nSo it is 359.", said) == "So it is 359."
    assert own_words("```python\nprint(1)\n```", said) == ""
    assert own_words(prompts.ECHO_NUDGE.upper(), said) == ""
    assert own_words("```output\n(no output)\n```", said) == ""
    assert own_words("It is 5. Compute every such value with code", said) == "It is 5."  # a piece copied
    assert own_words("```text\nA B\n```", said) == "```text\nA B\n```"  # a fence of another kind is the answer
