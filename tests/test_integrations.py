"""sandlot.integrations against a real server, with tool calls built from the providers' own SDK types.

Nothing goes to a model: each test builds the objects a provider's SDK would hand
the caller (a ``ChatCompletion``, a ``Response``, an Anthropic ``Message``, a
Gemini ``GenerateContentResponse``, a LangChain ``ToolCall``), passes them to the
dispatcher, which runs the code on the ``server_url`` server, and checks what
comes back against the SDK's request types: TypedDict params are validated with
unknown keys forbidden, Gemini's pydantic types are built and round-tripped.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any, TypeVar

import anthropic.types as anthropic_types
import pytest
from google.genai import types as genai
from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageParam,
    ChatCompletionToolMessageParam,
)
from openai.types.chat.chat_completion_message_function_tool_call import Function
from openai.types.responses import FunctionToolParam, Response, ResponseFunctionToolCall, ResponseInputItemParam
from pydantic import ConfigDict, TypeAdapter

from sandlot.client import AsyncClient, Client, ExecutionResult, NotFoundError, UnavailableError
from sandlot.integrations import SandlotTools
from sandlot.integrations._core import NO_OUTPUT, SESSION_REPLACED, output
from sandlot.integrations.anthropic import AnthropicTools
from sandlot.integrations.gemini import GeminiTools
from sandlot.integrations.langchain import RunPythonTool, SessionPythonTool
from sandlot.integrations.openai import OpenAIChatTools, OpenAIResponsesTools

T = TypeVar("T")
PNG = b"\x89PNG\r\n\x1a\n"
PLOT = "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nprint('plotted')"
TOOLS = ["run_python", "run_in_session"]


@pytest.fixture
def client(server_url: str) -> Iterator[Client]:
    with Client(server_url) as c:
        yield c


def valid(param_type: Any, value: T) -> T:
    """``value`` is a valid ``param_type`` (an SDK TypedDict or a union of them), with no key the type does not have."""
    adapter: TypeAdapter[list[Any]] = TypeAdapter(list[param_type], config=ConfigDict(extra="forbid"))
    _consume(adapter.validate_python([value])[0])
    return value


def _consume(value: Any) -> None:
    """Pydantic checks ``Iterable`` fields lazily, as they are read: read them all."""
    if isinstance(value, dict):
        for item in value.values():
            _consume(item)
    elif isinstance(value, list | tuple) or hasattr(value, "__next__"):
        for item in value:
            _consume(item)


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# ---- the provider-neutral core ---------------------------------------------------------

def test_each_module_needs_only_its_own_sdk() -> None:
    """The OpenAI and Anthropic modules import no SDK at all; the Gemini and LangChain ones say what to install."""
    code = (
        "import sys\n"
        "for name in ('openai', 'anthropic', 'google', 'google.genai', 'langchain_core'):\n"
        "    sys.modules[name] = None  # importing it now fails, as if it were not installed\n"
        "import sandlot.integrations, sandlot.integrations.openai, sandlot.integrations.anthropic\n"
        "for module in ('gemini', 'langchain'):\n"
        "    try:\n"
        "        __import__('sandlot.integrations.' + module)\n"
        "    except ImportError as exc:\n"
        "        print(exc)\n"
    )
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert printed.splitlines() == [
        "sandlot.integrations.gemini needs the google-genai package: pip install 'sandlot[gemini]'",
        "sandlot.integrations.langchain needs the langchain-core package: pip install 'sandlot[langchain]'"]


def test_specs_are_written_for_models(client: Client) -> None:
    tools = SandlotTools(client, notes="The data is in sales.csv.", max_timeout=120)
    assert [spec.name for spec in tools.specs] == TOOLS
    run, cell = tools.specs
    for spec in tools.specs:
        assert "print()" in spec.description and "no network" in spec.description and "pip-install" in spec.description
        assert spec.description.endswith("\n\nThe data is in sales.csv.")
        schema = spec.json_schema()
        assert schema["required"] == ["code"] and schema["additionalProperties"] is False
        assert schema["properties"]["timeout"] == {"type": "number", "minimum": 1, "maximum": 120,
                                                   "description": schema["properties"]["timeout"]["description"]}
        strict = spec.json_schema(strict=True)
        assert strict["required"] == ["code", "timeout"] and strict["properties"]["timeout"]["type"] == ["number", "null"]
        assert spec.json_schema() == schema, "json_schema hands out copies"
    assert "Nothing persists" in run.description and "use run_in_session" in run.description
    assert "persistent" in cell.description and "use run_python" in cell.description
    alone = SandlotTools(client, tools=["run_in_session"])
    assert [s.name for s in alone.specs] == ["run_in_session"] and "run_python" not in alone.specs[0].description
    assert alone.handles("run_in_session") and not alone.handles("run_python")
    with pytest.raises(ValueError, match="unknown tools"):
        SandlotTools(client, tools=["run_python", "shell"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="needs a client"):
        SandlotTools()


def test_runs_read_like_a_notebook(client: Client) -> None:
    tools = SandlotTools(client)
    out = tools.call("run_python", {"code": "import sys\nprint('hello')\nprint('careful', file=sys.stderr)\n6 * 7"})
    assert out.text() == "hello\n[stderr]\ncareful\nOut[1]: 42" and not out.is_error
    assert out.result is not None and out.result.status == "ok" and out.result.stdout == "hello\n"
    # Arguments as the model sent them: a JSON string; a strict-mode null timeout.
    assert tools.call("run_python", '{"code": "y = 1", "timeout": null}').text() == NO_OUTPUT

    failed = tools.call("run_python", {"code": "def f():\n    return 1 / 0\nf()"})
    assert failed.is_error and failed.result is not None and failed.result.status == "error"
    assert failed.text().startswith("Traceback") and failed.text().endswith("ZeroDivisionError: division by zero")

    stopped = tools.call("run_python", {"code": "import time\nprint('started')\ntime.sleep(30)", "timeout": 1})
    assert stopped.is_error and stopped.result is not None and stopped.result.status == "timeout"
    assert stopped.text().startswith("started\n") and "time limit" in stopped.text()

    table = tools.call("run_python", {"code": "import pandas as pd\ndisplay(pd.DataFrame({'a': [1, 2]}))"})
    assert table.text() == "   a\n0  1\n1  2"


def test_figures_come_back_as_images(client: Client) -> None:
    out = SandlotTools(client).call("run_python", {"code": PLOT})
    assert [type(p).__name__ for p in out.parts] == ["TextPart", "ImagePart"]
    image = out.images[0]
    assert image.mime_type == "image/png" and (image.width, image.height) == png_size(image.to_bytes())
    assert image.data_url.startswith("data:image/png;base64,iVBOR")
    assert out.text() == f"plotted\n[image 1: {image.width}x{image.height} PNG image; it cannot be shown in this result]"


def test_long_output_is_cut_to_the_budget(client: Client) -> None:
    out = SandlotTools(client, max_chars=2000).call("run_python", {"code": "for i in range(20000): print(i)"})
    text = out.text()
    assert len(text) <= 2000 and text.startswith("0\n1\n2\n") and text.endswith("19998\n19999")
    assert "characters left out" in text


def test_calls_the_model_got_wrong_are_error_results(client: Client) -> None:
    tools = SandlotTools(client, max_timeout=60)
    cases: list[tuple[str, Any, str]] = [
        ("run_python", "{not json", "not valid JSON"),
        ("run_python", "[1]", "must be a JSON object"),
        ("run_python", '{"cod": "1"}', "code: Field required"),
        ("run_python", {"code": "1", "shell": True}, "shell: Extra inputs are not permitted"),
        ("run_python", {"code": "1", "timeout": -1}, "timeout: Input should be greater than 0"),
        ("run_python", {"code": "1", "timeout": 61}, "timeout may be at most 60 seconds"),
        ("browse", {"url": "x"}, "unknown tool 'browse'; the sandlot tools here are run_python, run_in_session"),
    ]
    for name, arguments, message in cases:
        out = tools.call(name, arguments)
        assert out.is_error and out.result is None and message in out.text(), (name, arguments, out.text())
    # What the server refuses is the model's to fix, too.
    refused = SandlotTools(client).call("run_python", {"code": "1", "timeout": 100_000})
    assert refused.is_error and "maximum" in refused.text()


def test_the_session_is_kept_replaced_and_closed(client: Client) -> None:
    with SandlotTools(client) as tools:
        assert tools.call("run_in_session", {"code": "x = 20"}).text() == NO_OUTPUT
        assert tools.call("run_in_session", {"code": "x + 1"}).text() == "Out[2]: 21"
        assert tools.call("run_python", {"code": "print('x' in dir())"}).text() == "False"
        session = tools.get_session()
        # The session goes away behind the tools' back (it idled out): the next call says so and carries on.
        client.get_session(session.id).close()
        again = tools.call("run_in_session", {"code": "'x' in dir()"})
        assert again.text() == f"{SESSION_REPLACED}\nOut[1]: False" and not again.is_error
        replacement = tools.get_session().id
        assert replacement != session.id
    assert replacement not in {s.id for s in client.list_sessions()}


def test_a_session_you_pass_in_is_yours(client: Client) -> None:
    with client.session() as session:
        session.execute("data = [3, 1, 2]")
        tools = SandlotTools(client, session=session)
        assert tools.call("run_in_session", {"code": "sorted(data)"}).text() == "Out[2]: [1, 2, 3]"
        tools.close()
        assert session.id in {s.id for s in client.list_sessions()}, "close() leaves a session it did not open"
        client.get_session(session.id).close()
        with pytest.raises(NotFoundError, match="no longer exists"):
            tools.call("run_in_session", {"code": "data"})


def test_infrastructure_failures_are_raised() -> None:
    with Client("http://127.0.0.1:9", timeout=5) as nowhere:
        with pytest.raises(UnavailableError):
            SandlotTools(nowhere).call("run_python", {"code": "1"})


def test_async_core(server_url: str, client: Client) -> None:
    async def main() -> None:
        async with AsyncClient(server_url) as aclient:
            tools = SandlotTools(aclient)
            with pytest.raises(TypeError, match="AsyncClient"):
                tools.call("run_python", {"code": "1"})
            assert (await tools.acall("run_python", {"code": "2 ** 10"})).text() == "Out[1]: 1024"
            # Parallel calls open one session, and its cells run in turn.
            outs = await asyncio.gather(*(tools.acall("run_in_session", {"code": f"v{i} = {i}"}) for i in range(3)))
            assert all(not out.is_error for out in outs)
            assert (await tools.acall("run_in_session", {"code": "v0 + v1 + v2"})).text() == "Out[4]: 3"
            session_id = (await tools.aget_session()).id
            await tools.aclose()
            assert session_id not in {s.id for s in await aclient.list_sessions()}
        # A sync client, awaited: the call runs in a worker thread.
        async with SandlotTools(client) as sync_tools:
            assert (await sync_tools.acall("run_in_session", {"code": "3 * 3"})).text() == "Out[1]: 9"

    asyncio.run(main())


def test_results_without_a_server() -> None:
    """The formatting of results a healthy test server does not readily produce."""
    dot = base64.b64encode(PNG + b"\x00\x00\x00\rIHDR" + (3).to_bytes(4, "big") + (2).to_bytes(4, "big")).decode()
    result = ExecutionResult.model_validate({
        "id": "exe_1", "status": "killed", "restarted": True, "truncated": True, "outputs": [
            {"output_type": "stream", "name": "stdout", "text": "partial\n"},
            {"output_type": "display_data", "data": {"image/png": [dot[:8] + "\n", dot[8:]], "text/plain": "<Figure>"}},
            {"output_type": "display_data", "data": {"image/jpeg": "not base64!", "text/plain": "<a broken image>"}},
            {"output_type": "display_data", "data": {"application/json": {"a": 1}}},
            {"output_type": "display_data", "data": {"text/html": "<b>x</b>"}},
            {"output_type": "execute_result", "execution_count": 4, "data": {"text/plain": ["[1,\n", " 2]"]}}]})
    out = output("run_in_session", result)
    assert out.is_error and len(out.images) == 1 and (out.images[0].width, out.images[0].height) == (3, 2)
    assert out.text() == (
        "[the session's interpreter was restarted before this code ran (the previous one hit a limit or crashed): "
        "variables and imports from earlier calls are gone; files are kept]\npartial\n"
        "[image 1: 3x2 PNG image; it cannot be shown in this result]\n<a broken image>\n{\"a\": 1}\n"
        "[a display of type text/html, which has no text form]\nOut[4]: [1,\n 2]\n"
        "[the run was stopped: it was killed (it hit a resource limit, or the sandbox was stopped)]\n"
        "[output truncated: the run printed more than the output limit and the rest was dropped; print less, or "
        "write large results to a file]")


# ---- OpenAI: Chat Completions ---------------------------------------------------------

def chat_completion(*calls: tuple[str, str, str]) -> ChatCompletion:
    return ChatCompletion.model_validate({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "gpt-test", "choices": [{
            "index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": None,
                "tool_calls": [{"id": cid, "type": "function", "function": {"name": name, "arguments": arguments}}
                               for cid, name, arguments in calls]}}]})


def test_openai_chat(client: Client) -> None:
    with OpenAIChatTools(client) as tools:
        definitions = tools.definitions()
        for definition in [*definitions, *tools.definitions(strict=False)]:
            valid(ChatCompletionFunctionToolParam, definition)
        assert [d["function"]["name"] for d in definitions] == TOOLS
        assert definitions[0]["function"].get("strict") is True
        assert definitions[0]["function"].get("parameters", {})["required"] == ["code", "timeout"]

        call = ChatCompletionMessageFunctionToolCall(id="call_1", type="function", function=Function(
            name="run_python", arguments=json.dumps({"code": "print(sum(range(10)))", "timeout": None})))
        message = valid(ChatCompletionToolMessageParam, tools.tool_result(call))
        assert message == {"role": "tool", "tool_call_id": "call_1", "content": "45"}

        completion = chat_completion(("call_a", "run_in_session", '{"code": "n = 6", "timeout": null}'),
                                     ("call_b", "get_weather", '{"city": "Oslo"}'),
                                     ("call_c", "run_in_session", json.dumps({"code": PLOT + "\nn * 7", "timeout": None})))
        messages = tools.tool_results(completion)
        for m in messages:
            valid(ChatCompletionMessageParam, m)
        assert [m.get("tool_call_id") for m in messages] == ["call_a", "call_c"], "other tools' calls are left alone"
        assert messages[0]["content"] == NO_OUTPUT
        content = messages[1]["content"]
        # Figures are shown when the cell ends, after its value.
        assert isinstance(content, str) and content.startswith("plotted\nOut[2]: 42\n[image 1: ")
        assert content.endswith(" PNG image; it cannot be shown in this result]")
        # A dict tool call, as it sits in a stored conversation, works the same.
        again = tools.tool_result({"id": "call_d", "type": "function", "function": {"name": "run_in_session",
                                                                                    "arguments": '{"code": "n"}'}})
        assert again["content"] == "Out[3]: 6"


def test_openai_chat_images_follow_the_tool_messages(client: Client) -> None:
    with OpenAIChatTools(client, images=True) as tools:
        messages = tools.tool_results(chat_completion(("call_1", "run_python", json.dumps({"code": PLOT, "timeout": None})),
                                                      ("call_2", "run_python", '{"code": "1", "timeout": null}')))
    for m in messages:
        valid(ChatCompletionMessageParam, m)
    assert [m["role"] for m in messages] == ["tool", "tool", "user"]
    assert "shown in the user message after the tool results" in str(messages[0]["content"])
    parts: list[Any] = list(messages[2]["content"] or [])
    assert parts[0] == {"type": "text", "text": "image 1 of tool call call_1:"}
    url = parts[1]["image_url"]["url"]
    assert len(parts) == 2 and url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).startswith(PNG)


def test_openai_chat_async(server_url: str) -> None:
    async def main() -> list[ChatCompletionMessageParam]:
        async with AsyncClient(server_url) as aclient, OpenAIChatTools(aclient) as tools:
            first = await tools.atool_result({"id": "c0", "function": {"name": "run_in_session", "arguments": '{"code": "k = 2"}'}})
            assert first["content"] == NO_OUTPUT
            return await tools.atool_results(chat_completion(("c1", "run_in_session", '{"code": "k ** 8"}')))

    assert asyncio.run(main()) == [{"role": "tool", "tool_call_id": "c1", "content": "Out[2]: 256"}]


# ---- OpenAI: Responses API ------------------------------------------------------------

def test_openai_responses(client: Client) -> None:
    with OpenAIResponsesTools(client) as tools:
        definitions = tools.definitions()
        for definition in [*definitions, *tools.definitions(strict=False)]:
            valid(FunctionToolParam, definition)
        assert [d["name"] for d in definitions] == TOOLS and definitions[0]["strict"] is True

        item = ResponseFunctionToolCall(type="function_call", call_id="call_1", name="run_python",
                                        arguments='{"code": "print(\'hi\')", "timeout": null}')
        assert valid(ResponseInputItemParam, tools.tool_result(item)) == {
            "type": "function_call_output", "call_id": "call_1", "output": "hi"}

        response = Response.model_validate({
            "id": "resp_1", "object": "response", "created_at": 0, "model": "gpt-test", "parallel_tool_calls": True,
            "tool_choice": "auto", "tools": [], "output": [
                {"type": "reasoning", "id": "rs_1", "summary": []},
                {"type": "function_call", "call_id": "call_2", "name": "run_in_session",
                 "arguments": json.dumps({"code": PLOT, "timeout": None})},
                {"type": "function_call", "call_id": "call_3", "name": "lookup", "arguments": "{}"},
                {"type": "function_call", "call_id": "call_4", "name": "run_in_session", "arguments": '{"code": "1/0"}'}]})
        outputs = tools.tool_results(response)
        for o in outputs:
            valid(ResponseInputItemParam, o)
        assert [o["call_id"] for o in outputs] == ["call_2", "call_4"]
        with_image = outputs[0]["output"]
        assert isinstance(with_image, list) and [p["type"] for p in with_image] == ["input_text", "input_image"]
        assert with_image[0] == {"type": "input_text", "text": "plotted"}
        assert str(with_image[1].get("image_url")).startswith("data:image/png;base64,iVBOR")
        assert str(outputs[1]["output"]).endswith("ZeroDivisionError: division by zero")

    with OpenAIResponsesTools(client, images=False) as tools:
        described = tools.tool_result({"type": "function_call", "call_id": "c", "name": "run_python",
                                       "arguments": json.dumps({"code": PLOT})})
        assert isinstance(described["output"], str) and "PNG image; it cannot be shown" in described["output"]


def test_openai_responses_async(server_url: str) -> None:
    async def main() -> Any:
        async with AsyncClient(server_url) as aclient, OpenAIResponsesTools(aclient) as tools:
            return await tools.atool_results([ResponseFunctionToolCall(type="function_call", call_id="c1", name="run_python",
                                                                       arguments='{"code": "3 + 4"}')])

    assert asyncio.run(main()) == [{"type": "function_call_output", "call_id": "c1", "output": "Out[1]: 7"}]


# ---- Anthropic --------------------------------------------------------------------------

def anthropic_message(*blocks: dict[str, Any]) -> anthropic_types.Message:
    return anthropic_types.Message.model_validate({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "stop_reason": "tool_use",
        "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 1},
        "content": [{"type": "text", "text": "Let me compute that."}, *blocks]})


def test_anthropic(client: Client) -> None:
    with AnthropicTools(client) as tools:
        definitions = tools.definitions()
        for definition in definitions:
            valid(anthropic_types.ToolParam, definition)
        assert [d["name"] for d in definitions] == TOOLS and definitions[0]["input_schema"]["required"] == ["code"]

        block = anthropic_types.ToolUseBlock(type="tool_use", id="toolu_1", name="run_python", input={"code": "len('four')"})
        assert valid(anthropic_types.ToolResultBlockParam, tools.tool_result(block)) == {
            "type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "Out[1]: 4"}], "is_error": False}

        message = anthropic_message(
            {"type": "tool_use", "id": "toolu_2", "name": "run_in_session", "input": {"code": PLOT + "\n'done'"}},
            {"type": "tool_use", "id": "toolu_3", "name": "search", "input": {"q": "x"}},
            {"type": "tool_use", "id": "toolu_4", "name": "run_in_session", "input": {"code": "undefined_name"}})
        results = tools.tool_results(message)
        # The next turn, as the caller sends it: the assistant's content back, then the results.
        conversation = [{"role": "assistant", "content": message.content}, {"role": "user", "content": results}]
        for turn in conversation:
            valid(anthropic_types.MessageParam, turn)
        assert [r["tool_use_id"] for r in results] == ["toolu_2", "toolu_4"]
        figure, failed = results
        content: list[Any] = list(figure.get("content", []))
        assert [b["type"] for b in content] == ["text", "image"] and figure["is_error"] is False
        assert content[0] == {"type": "text", "text": "plotted\nOut[1]: 'done'"}
        source = content[1]["source"]
        assert source["type"] == "base64" and source["media_type"] == "image/png"
        assert base64.b64decode(source["data"]).startswith(PNG)
        assert failed["is_error"] is True
        failed_content: list[Any] = list(failed.get("content", []))
        assert failed_content[0]["text"].endswith("NameError: name 'undefined_name' is not defined")

        wrong = tools.tool_result({"type": "tool_use", "id": "toolu_5", "name": "run_python", "input": {}})
        assert wrong["is_error"] is True and "code: Field required" in str(wrong["content"])

    with AnthropicTools(client, images=False) as tools:
        described = tools.tool_result({"type": "tool_use", "id": "t", "name": "run_python", "input": {"code": PLOT}})
        described_content: list[Any] = list(described.get("content", []))
        assert [b["type"] for b in described_content] == ["text"]


def test_anthropic_async(server_url: str) -> None:
    async def main() -> Any:
        async with AsyncClient(server_url) as aclient, AnthropicTools(aclient) as tools:
            await tools.atool_result({"type": "tool_use", "id": "t1", "name": "run_in_session", "input": {"code": "s = 'ab'"}})
            return await tools.atool_results(anthropic_message(
                {"type": "tool_use", "id": "t2", "name": "run_in_session", "input": {"code": "s * 2"}}))

    assert asyncio.run(main()) == [{"type": "tool_result", "tool_use_id": "t2", "is_error": False,
                                    "content": [{"type": "text", "text": "Out[2]: 'abab'"}]}]


# ---- Gemini -----------------------------------------------------------------------------

def gemini_response(*calls: genai.FunctionCall) -> genai.GenerateContentResponse:
    parts = [genai.Part(text="Running it."), *(genai.Part(function_call=call) for call in calls)]
    return genai.GenerateContentResponse(candidates=[genai.Candidate(content=genai.Content(role="model", parts=parts))])


def roundtrip(content: genai.Content) -> genai.Content:
    """The content as the SDK sends it (JSON; bytes as base64), read back."""
    return genai.Content.model_validate(json.loads(content.model_dump_json(exclude_none=True)))


def test_gemini(client: Client) -> None:
    with GeminiTools(client) as tools:
        [tool] = tools.definitions()
        config = genai.GenerateContentConfig(tools=tools.definitions())
        assert config.tools == [tool] and tool.function_declarations is not None
        assert [d.name for d in tool.function_declarations] == TOOLS
        assert tool.function_declarations[0].parameters_json_schema == tools.specs[0].json_schema()

        part = tools.tool_result(genai.FunctionCall(id="fc_1", name="run_python", args={"code": "print(2 + 2)"}))
        assert roundtrip(genai.Content(role="user", parts=[part])).parts == [part]
        assert part.function_response == genai.FunctionResponse(id="fc_1", name="run_python", response={"output": "4"})

        response = gemini_response(genai.FunctionCall(id="fc_2", name="run_in_session", args={"code": PLOT}),
                                   genai.FunctionCall(id="fc_3", name="get_time", args={}),
                                   genai.FunctionCall(id="fc_4", name="run_in_session", args={"code": "raise ValueError('no')"}))
        parts = tools.tool_results(response)
        content = genai.Content(role="user", parts=parts)
        assert roundtrip(content) == content
        figure, failed = (p.function_response for p in parts)
        assert figure is not None and failed is not None
        assert (figure.id, failed.id) == ("fc_2", "fc_4")
        assert figure.response is not None and figure.response["output"].startswith("plotted\n[image 1: ")
        assert "attached to this response" in figure.response["output"]
        assert figure.parts is not None and len(figure.parts) == 1
        blob = figure.parts[0].inline_data
        assert blob is not None and blob.mime_type == "image/png" and blob.data is not None and blob.data.startswith(PNG)
        assert failed.response is not None and list(failed.response) == ["error"]
        assert failed.response["error"].endswith("ValueError: no") and failed.parts is None
        # The calls can also come as the model's Content, or as a list of parts.
        assert [p.function_response.name for p in tools.tool_results(genai.Content(role="model", parts=[
            genai.Part(function_call=genai.FunctionCall(name="run_in_session", args={"code": "1"}))])) if p.function_response
        ] == ["run_in_session"]

    with GeminiTools(client, images=False) as tools:
        response_only = tools.tool_result({"name": "run_python", "args": {"code": PLOT}}).function_response
        assert response_only is not None and response_only.parts is None and response_only.response is not None
        assert "cannot be shown" in response_only.response["output"]


def test_gemini_async(server_url: str) -> None:
    async def main() -> list[genai.Part]:
        async with AsyncClient(server_url) as aclient, GeminiTools(aclient) as tools:
            return await tools.atool_results([genai.FunctionCall(id="a", name="run_python", args={"code": "'x' * 3"})])

    [part] = asyncio.run(main())
    assert part.function_response == genai.FunctionResponse(id="a", name="run_python", response={"output": "Out[1]: 'xxx'"})


# ---- LangChain --------------------------------------------------------------------------

def tool_call(name: str, args: dict[str, Any], call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "tool_call", "name": name, "args": args, "id": call_id}


def test_langchain_run_python(client: Client) -> None:
    tool = RunPythonTool(client)
    assert tool.name == "run_python" and "Nothing persists" in tool.description
    assert set(tool.args) == {"code", "timeout"}
    function = convert_to_openai_tool(tool)["function"]  # what bind_tools sends
    assert function["name"] == "run_python" and function["parameters"]["required"] == ["code"]
    assert set(function["parameters"]["properties"]) == {"code", "timeout"}

    assert tool.invoke({"code": "print('plain')"}) == "plain"
    message = tool.invoke(tool_call("run_python", {"code": "sum([1, 2, 3])"}))
    assert isinstance(message, ToolMessage) and message.tool_call_id == "call_1" and message.name == "run_python"
    assert message.content == "Out[1]: 6" and message.status == "success"
    assert isinstance(message.artifact, ExecutionResult) and message.artifact.status == "ok"

    failed = tool.invoke(tool_call("run_python", {"code": "int('x')"}))
    assert "ValueError" in failed.content and failed.artifact.status == "error"
    wrong = tool.invoke(tool_call("run_python", {"source": "1"}))
    assert wrong.status == "error" and str(wrong.content).startswith("invalid arguments: code: Field required")
    refused = tool.invoke(tool_call("run_python", {"code": "1", "timeout": 100_000}))
    assert refused.status == "error" and "maximum" in refused.content

    with_images = RunPythonTool(client, images=True).invoke(tool_call("run_python", {"code": PLOT}))
    assert [block["type"] for block in with_images.content] == ["text", "image"]
    image = with_images.content[1]
    assert image["mime_type"] == "image/png" and base64.b64decode(image["base64"]).startswith(PNG)


def test_langchain_session_tools(client: Client) -> None:
    with client.session() as session:
        bound = SessionPythonTool(session)
        assert bound.name == "run_in_session" and bound.sandlot.get_session() is session
        bound.invoke({"code": "total = 10"})
        assert bound.invoke(tool_call("run_in_session", {"code": "total * 3"})).content == "Out[2]: 30"
        assert session.execute("total").outputs[0].data["text/plain"] == "10"  # type: ignore[union-attr]

    own = SessionPythonTool(client, name="python", idle_timeout=60)
    assert "earlier python calls" in own.description and "run_in_session" not in own.description
    assert own.invoke(tool_call("python", {"code": "import math\nmath.factorial(5)"})).content == "Out[1]: 120"
    opened = own.sandlot.get_session().id
    own.close()
    assert opened not in {s.id for s in client.list_sessions()}


def test_langchain_async(server_url: str, client: Client) -> None:
    async def main() -> None:
        async with AsyncClient(server_url) as aclient:
            run = RunPythonTool(aclient)
            message = await run.ainvoke(tool_call("run_python", {"code": "max(3, 9)"}))
            assert message.content == "Out[1]: 9" and message.artifact.status == "ok"
            cell = SessionPythonTool(aclient)
            await cell.ainvoke({"code": "z = 'q'"})
            assert await cell.ainvoke({"code": "z * 2"}) == "Out[2]: 'qq'"
            await cell.aclose()
        # A sync client under ainvoke: LangChain runs the tool in a thread.
        assert await RunPythonTool(client).ainvoke({"code": "7 * 6"}) == "Out[1]: 42"

    asyncio.run(main())
