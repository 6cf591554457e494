"""Everything sandlot says to the model: system prompts, the worked example, and the guards' messages.

Written for the smallest models the endpoint serves (a 0.5B coder model follows them): short
sentences, one rule each, and one worked example of the whole cycle (a question, code, its result,
a one-sentence answer) given as real chat turns, so that the model's own chat template renders it
the way it renders the request's turns. The example shows the habits a small model lacks (the
question's data copied into variables, the computation left to Python, an answer that says it is
one) on a percentage: nothing about it is specific to a kind of question. Multi-line code on
purpose: with a one-line example a 0.5B model crams every answer into one line, and gets more wrong
(28 % against 44 % right on benchmarks/bench_agent_quality.py). The code starts with a comment that
restates what the question asks for, and the prompt asks for one: written down first, the goal
steers the code the model writes after it (a weekday rather than a date, a count rather than a
test, one sum rather than a column), 29 against 24 of the benchmark's 50 right.

A request with a system message of its own gets the protocol only (``*_PROTOCOL_PROMPT``) and no
example: the client's instructions decide the rest.

The wording of every message sandlot adds to a conversation is here, in one place. The loop keeps
what it said (rendered) so that the guards can tell the model's words from sandlot's: a reply that
only repeats sandlot's messages is no answer.
"""

from __future__ import annotations

import json
from typing import Any

CODE_RULE = ("Never calculate, count or look up dates in your head: compute every such value with code and "
             "answer from the code's output.")
LIBRARIES = ("Put the numbers and text the question gives into variables, and use Python's standard library "
             "(math, datetime, itertools, collections, statistics), numpy and pandas.")
ANSWER_RULE = ("If the code fails, fix it and run it again. When it has printed the result, reply with one short "
               "sentence that starts with \"The answer is\".")

CODE_BLOCK_SYSTEM_PROMPT = (
    "You answer questions by running Python code.\n"
    "To run code, reply with one ```python code block that prints the result. Its first line is a comment that "
    "says exactly what the question asks for. You then get its output in an ```output block.\n"
    + ANSWER_RULE + "\n" + CODE_RULE + " " + LIBRARIES
)

TOOL_SYSTEM_PROMPT = (
    "You answer questions by running Python code with the `python` tool. The code runs in a persistent "
    "session: variables carry over between calls. The code's first line is a comment that says exactly what the "
    "question asks for. Print the result; you get the output back.\n"
    + ANSWER_RULE + "\n" + CODE_RULE + " " + LIBRARIES
)

# With the client's own system message: the protocol only (how to run code, how the output comes back).
# The client's instructions follow and decide the rest; sandlot's rules and example would override
# them with a small model, which copies an example's form over any instruction.
CODE_BLOCK_PROTOCOL_PROMPT = (
    "You can run Python code. To run code, reply with a single fenced code block:\n"
    "```python\nprint(2 + 2)\n```\n"
    "It runs in a persistent sandboxed session (state carries over) and you get the output back in the next "
    "message, in an ```output block. Use print() to see values. When you know the answer, reply in plain "
    "language with no code block."
)
TOOL_PROTOCOL_PROMPT = (
    "You can run Python code with the `python` tool. The code runs in a persistent sandboxed session: state "
    "carries over between calls. Use it whenever a question needs computation or checking, then answer the user "
    "in plain language with the result."
)

EXAMPLE_QUESTION = "What is 15 percent of the sum of 1200, 850 and 2375?"
EXAMPLE_CODE = ("# The question asks for: 15 percent of the sum of 1200, 850 and 2375.\nvalues = [1200, 850, 2375]\n"
                "total = sum(values)\nprint(total * 15 / 100)")
EXAMPLE_OUTPUT = "663.75"
EXAMPLE_ANSWER = "The answer is 663.75."
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


def system_prompt(use_tool: bool, tools_text: str, *, client_instructions: bool) -> str:
    """sandlot's system prompt for the format: the full one, or the protocol only when the client sends
    instructions of its own; with the host tools' stubs in the code-block format (with the tool, they
    are in the tool's description)."""
    if client_instructions:
        prompt = TOOL_PROTOCOL_PROMPT if use_tool else CODE_BLOCK_PROTOCOL_PROMPT
    else:
        prompt = TOOL_SYSTEM_PROMPT if use_tool else CODE_BLOCK_SYSTEM_PROMPT
    return prompt + "\n\n" + tools_text if tools_text and not use_tool else prompt


# ---- what the observations add ------------------------------------------------------------

NO_OUTPUT = "(no output)"
PRINT_NUDGE = "Your code printed nothing. Print the result, for example print(result)."
LITERAL_HINT = ("Your code only printed a value you wrote yourself: it computed nothing. Compute the answer with "
                "code, from the data the question gives.")
TIMEOUT_HINT = ("Too slow: the code was stopped after {seconds:g} s. Use a faster method: an iterative loop "
                "instead of recursion, a formula, or a library function.")
MEMORY_HINT = "Out of memory: the code was stopped. Use less memory: no huge lists, compute values one at a time."
KILLED_HINT = "The code was killed (a resource limit). Use a smaller, simpler computation."
ERROR_HINT = "{ename}{where}: {evalue}. Fix this and run the code again."
MISSING_IMPORT = "NameError{where}: name {name!r} is not defined. Add `import {name}` at the top and run the code again."
MISSING_FILE = ("There is no file {name}: write the data from the question into your code as a string, and read "
                "it with io.StringIO(text).")
MISSING_COLUMN = ("KeyError{where}: {evalue} is not a column of the table. Print df.columns to see its columns, "
                  "make any other value from them (df['a'] * df['b']), and run the code again.")
CLOSE_NAMES = ("{module} has no {name!r}{where}. Its names closest to it are: {names}. Use one of them if it "
               "does what you need; if not, write that part yourself.")
NO_CLOSE_NAMES = "{module} has no {name!r}{where}, nor anything like it: write that part yourself."
SOME_FILES = "There is no file {name}. The files here are: {names}."
COPY_HINT = ("Your code's list has {kept} of the {given} numbers the question gives{foreign}. Copy all the "
             "question's numbers into the list, and run the code again.")
COPY_FOREIGN = ", and {count} that it does not"
SERIES_HINT = ("Your code printed {count} values (a pandas Series), not one value. If the question asks for one "
               "number, reduce them to it (for example with .sum(), .mean() or .max()) and print that.")
RESTARTED_NOTE = "(The interpreter restarted: variables from earlier code are lost.)"
TRUNCATED_NOTE = "(The output was over the limit and was cut.)"

# ---- what the guards say --------------------------------------------------------------------

REPEATED_NUDGE = ("You already ran this and got this output. Do not run the code again: answer the question now, "
                  "in one short sentence, using this output.")
START_OVER = ("An earlier attempt at this question failed twice with the same error: {error} Start over: write "
              "new code for the question, in a different way.")
FINAL_ANSWER_REQUEST = ("Stop running code now: {why}. {last}Answer the question in one short sentence with what "
                        "you have found, without any code.")
LAST_RESULT = "The last output of your code was: {value}. "
UNCOMPUTED_NUDGE = {
    False: "Compute that with code first: reply with a ```python code block that prints the result.",
    True: "Compute that with code first: call the python tool with code that prints the result.",
}
"""After an answer with numbers no code produced, by whether the model is offered the tool."""
FAILED_NUDGE = ("Your last code failed, so you have no result to answer from yet. Fix the code and run it "
                "again.")
HINT_NUDGE = "Before you answer, do what the note after your last output says, and run the code again."
SILENT_NUDGE = ("Your last code printed nothing, so you have no result to answer from yet. Print the result and "
                "run the code again.")
ECHO_NUDGE = ("That is not an answer. Using the output of your code, reply with one short sentence that starts "
              "with \"The answer is\".")
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
