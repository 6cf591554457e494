"""Everything sandlot says to the model: system prompts, the worked example, and the guards' messages.

Written for the smallest models the endpoint serves (a 0.5B coder model follows them): short
sentences, one rule each, and one worked example of the whole cycle (a question, code, its result,
a one-sentence answer) given as real chat turns, so that the model's own chat template renders it
the way it renders the request's turns. The example is a percentage on purpose: nothing about it
is specific to a kind of question.

The wording of every message sandlot adds to a conversation is here, in one place. The loop keeps
what it said (rendered) so that the guards can tell the model's words from sandlot's: a reply that
only repeats sandlot's messages is no answer.
"""

from __future__ import annotations

import json
from typing import Any

CODE_RULE = ("Never calculate, count or look up dates in your head: compute every such value with code and "
             "answer from the code's output.")

CODE_BLOCK_SYSTEM_PROMPT = (
    "You answer questions by running Python code.\n"
    "To run code, reply with one ```python code block that prints the result. You then get its output in an "
    "```output block.\n"
    "When you have the output, reply with the answer in one short sentence, without code.\n" + CODE_RULE
)

TOOL_SYSTEM_PROMPT = (
    "You answer questions by running Python code with the `python` tool. The code runs in a persistent "
    "session: variables carry over between calls. Print the result; you get the output back.\n"
    "When you have the output, reply with the answer in one short sentence, without calling the tool.\n"
    + CODE_RULE
)

EXAMPLE_QUESTION = "What is 48 percent of 3750?"
EXAMPLE_CODE = "print(3750 * 48 / 100)"
EXAMPLE_OUTPUT = "1800.0"
EXAMPLE_ANSWER = "48 percent of 3750 is 1800."
EXAMPLE_CALL_ID = "call_example_1"


def code_block(code: str) -> str:
    return f"```python\n{code}\n```"


def output_block(text: str) -> str:
    """How a run's output is shown in the code-block format: the ```output fence coder models know."""
    return f"```output\n{text}\n```"


def worked_example(use_tool: bool) -> list[dict[str, Any]]:
    """The example cycle as chat turns, in the action format the model is offered."""
    if use_tool:
        call = {"id": EXAMPLE_CALL_ID, "type": "function",
                "function": {"name": "python", "arguments": json.dumps({"code": EXAMPLE_CODE})}}
        return [{"role": "user", "content": EXAMPLE_QUESTION},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": EXAMPLE_CALL_ID, "content": EXAMPLE_OUTPUT},
                {"role": "assistant", "content": EXAMPLE_ANSWER}]
    return [{"role": "user", "content": EXAMPLE_QUESTION},
            {"role": "assistant", "content": code_block(EXAMPLE_CODE)},
            {"role": "user", "content": output_block(EXAMPLE_OUTPUT)},
            {"role": "assistant", "content": EXAMPLE_ANSWER}]


def system_prompt(use_tool: bool, tools_text: str, client_system: str) -> str:
    """sandlot's system prompt for the format, the host tools' stubs, then the client's own system text."""
    parts = [TOOL_SYSTEM_PROMPT if use_tool else CODE_BLOCK_SYSTEM_PROMPT]
    if tools_text and not use_tool:  # with the tool, the stubs are in the tool's description
        parts.append(tools_text)
    if client_system:
        parts.append(client_system)
    return "\n\n".join(parts)


# ---- what the observations add ------------------------------------------------------------

NO_OUTPUT = "(no output)"
PRINT_NUDGE = "Your code printed nothing. Print the result, for example print(result)."
TIMEOUT_HINT = ("Too slow: the code was stopped after {seconds:g} s. Use a faster method: an iterative loop "
                "instead of recursion, a formula, or a library function.")
MEMORY_HINT = "Out of memory: the code was stopped. Use less memory: no huge lists, compute values one at a time."
KILLED_HINT = "The code was killed (a resource limit). Use a smaller, simpler computation."
ERROR_HINT = "Your code raised {ename}{where}: {evalue}. Fix the code and run it again."
RESTARTED_NOTE = "(The interpreter restarted: variables from earlier code are lost.)"
TRUNCATED_NOTE = "(The output was over the limit and was cut.)"

# ---- what the guards say --------------------------------------------------------------------

REPEATED_NUDGE = ("You already ran this and got this output. Do not run the code again: answer the question now, "
                  "in one short sentence, using this output.")
FINAL_ANSWER_REQUEST = ("Stop running code now: {why}. {last}Answer the question in one short sentence with what "
                        "you have found, without any code.")
LAST_RESULT = "The last output of your code was: {value}. "
ECHO_NUDGE = ("That is the output of your code, not an answer. Answer the question in one short sentence, "
              "without code.")
WRITTEN_ANSWER = "I stopped before finishing: {why}."
WRITTEN_LAST_RESULT = " The last result of the code was:\n{value}"
WRITTEN_NO_ANSWER = "The model gave no answer of its own."

STOP_WHY = {
    "max_steps": "the limit of {max_steps} code steps was reached",
    "time_limit": "the time limit for this request is nearly used up",
    "repeated_failure": "the same code kept failing",
    "repetition": "the code kept giving the same output",
    "no_answer": "the model replied without an answer",
}
"""Why a guard ended the loop, by ``stop_reason``: told to the model, and to the client if sandlot writes the reply."""
