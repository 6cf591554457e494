"""Sessions: state and files persist; interrupts keep state; kills restart with files intact."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from sandlot import ClosedError, EngineConfig, NotFoundError, Sandlot


def test_variables_and_imports_persist(sl: Sandlot) -> None:
    with sl.session() as session:
        assert session.execute("import math\nx = 41").status == "ok"
        result = session.execute("x + 1 + int(math.sqrt(0))")
        assert result.outputs[0].data["text/plain"] == "42"
        assert result.execution_count == 2


def test_a_new_session_inherits_nothing_of_the_zygotes_rehearsal(sl: Sandlot) -> None:
    # The zygote serves a few cells itself before it forks (sandlot_runtime.kernel.rehearse): none of their names,
    # source lines or outputs may reach a sandbox, and the sandbox's own display() and streams are in place.
    with sl.session() as session:
        code = ("import linecache, sys\n"
                "print('x' in globals(), sorted(k for k in linecache.cache if k.startswith('<cell-')),"
                " callable(display), type(sys.stdout).__name__)")
        result = session.execute(code)
        assert result.stdout == "False ['<cell-1>'] True ChannelStream\n"
        assert [o.output_type for o in result.outputs] == ["stream"]  # its own print, nothing the rehearsal sent


def test_files_persist_and_are_reachable_from_the_host(sl: Sandlot) -> None:
    with sl.session() as session:
        session.upload("in/data.txt", b"hello")
        session.execute("open('out.txt', 'w').write(open('in/data.txt').read().upper())")
        assert session.download("out.txt") == b"HELLO"
        assert [f.path for f in session.files()] == ["in/data.txt", "out.txt"]


def test_timeout_interrupts_and_keeps_state(sl: Sandlot) -> None:
    with sl.session() as session:
        session.execute("kept = 'still here'")
        result = session.execute("import time\ntime.sleep(30)", timeout=0.5)
        assert result.status == "timeout"
        assert result.error is not None and result.error.ename == "TimeoutError"
        after = session.execute("kept")
        assert after.outputs[0].data["text/plain"] == "'still here'"
        assert after.restarted is False


def test_unresponsive_cell_is_killed_and_session_restarts_with_files(sl: Sandlot) -> None:
    with sl.session() as session:
        session.execute("open('keep.txt', 'w').write('kept')\nlost = 1")
        # Swallowing every exception, KeyboardInterrupt and the timeout's included, makes the cell unstoppable.
        code = "import time\nwhile True:\n    try:\n        time.sleep(60)\n    except BaseException:\n        pass"
        result = session.execute(code, timeout=0.5)
        assert result.status == "timeout"
        after = session.execute("import os\nprint(open('keep.txt').read(), 'lost' in globals())")
        assert after.restarted is True
        # The state of the last cell that completed comes back with the files (durable sessions).
        assert after.stdout == "kept True\n"
        assert after.resumed is not None and "lost" in after.resumed.restored
        assert session.execute("1").restarted is False


def test_memory_kill_restarts_the_session(tight: Sandlot) -> None:
    with tight.session() as session:
        session.execute("open('keep.txt', 'w').write('kept')")
        result = session.execute("x = []\nwhile True:\n    x.append(b'x' * (16 << 20))")
        assert result.status == "memory"
        after = session.execute("print(open('keep.txt').read())")
        assert after.restarted is True and after.stdout == "kept\n"


def test_explicit_interrupt(sl: Sandlot) -> None:
    with sl.session() as session:
        box = {}
        thread = threading.Thread(target=lambda: box.update(r=session.execute("import time\ntime.sleep(30)")))
        thread.start()
        time.sleep(0.5)
        session.interrupt()
        thread.join(10)
        assert box["r"].status == "error"
        assert box["r"].error.ename == "KeyboardInterrupt"
        # The user's frames and the interrupt, as Python prints them; not the runtime's signal handler.
        assert box["r"].error.traceback == ["Traceback (most recent call last):",
                                            '  File "<cell-1>", line 2, in <module>\n    time.sleep(30)',
                                            "KeyboardInterrupt"]


def test_a_timed_out_cell_says_so_as_a_one_shot_run_does(sl: Sandlot) -> None:
    one_shot = sl.execute("import time\ntime.sleep(30)", timeout=0.5)
    with sl.session() as session:
        cell = session.execute("import time\ndef wait():\n    time.sleep(30)\nwait()", timeout=0.5)
    assert one_shot.status == cell.status == "timeout"
    assert one_shot.error is not None and cell.error is not None
    assert (cell.error.ename, cell.error.evalue) == (one_shot.error.ename, one_shot.error.evalue) == \
        ("TimeoutError", "the run exceeded its time limit of 0.5s and was stopped")
    # Where the cell was when time ran out: the user's frames only, no host path of sandlot's runtime.
    text = "\n".join(cell.error.traceback)
    assert "line 4, in <module>" in text and "line 3, in wait" in text, text
    assert cell.error.traceback[-1] == "TimeoutError: the run exceeded its time limit of 0.5s and was stopped"
    assert "sandlot_runtime" not in text and "site-packages" not in text, text


def test_user_code_catching_exception_does_not_swallow_the_timeout(sl: Sandlot) -> None:
    with sl.session() as session:
        code = "import time\ntry:\n    time.sleep(30)\nexcept Exception:\n    print('swallowed')\nprint('went on')"
        result = session.execute(code, timeout=0.5)
        assert result.status == "timeout" and result.stdout == "", result.stdout
        assert session.execute("1").restarted is False


def test_a_cell_over_its_cpu_limit_says_which_limit(tight: Sandlot) -> None:
    with tight.session() as session:
        session.execute("kept = 1")
        result = session.execute("while True:\n    pass")
        assert result.status == "timeout"
        assert result.error is not None and result.error.ename == "TimeoutError"
        assert result.error.evalue == "the run exceeded its CPU time limit of 2s and was stopped"
        after = session.execute("kept")
        assert after.restarted is False and after.outputs[0].data["text/plain"] == "1"


def test_concurrent_calls_run_in_arrival_order(sl: Sandlot) -> None:
    with sl.session() as session:
        session.execute("log = []")
        threads = []
        for i in range(5):
            threads.append(threading.Thread(target=session.execute, args=(f"import time\ntime.sleep(0.05)\nlog.append({i})",)))
            threads[-1].start()
            time.sleep(0.02)  # arrival order is the start order
        for thread in threads:
            thread.join()
        assert session.execute("log").outputs[0].data["text/plain"] == "[0, 1, 2, 3, 4]"


def test_closed_session_is_gone(sl: Sandlot) -> None:
    session = sl.session()
    pid = session.session._sandbox.pid
    session.close()
    with pytest.raises(ClosedError):
        session.execute("1")
    with pytest.raises(NotFoundError):
        sl.engine.get_session(session.id)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                if "zombie" in f.read():
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the session's sandbox is still running after close")


def test_env_applies_to_the_session(sl: Sandlot) -> None:
    with sl.session(env={"MODE": "test"}) as session:
        assert session.execute("import os\nos.environ['MODE']").outputs[0].data["text/plain"] == "'test'"


def test_a_cancelled_cell_leaves_a_fresh_interpreter_for_the_next_one() -> None:
    # A caller that goes away mid-cell (an agent stream that disconnects) cancels it: the interpreter is
    # killed, and the very next call, however soon, gets a fresh one that says so (not a "killed" result).
    import asyncio

    from sandlot import Engine

    async def scenario() -> tuple[object, object]:
        async with Engine(EngineConfig(preload=(), pool_size=1)) as engine:
            session = await engine.create_session()
            await session.execute("x = 1\nopen('kept.txt', 'w').write('still here')")
            cell = asyncio.ensure_future(session.execute("import time; time.sleep(30)"))
            await asyncio.sleep(0.5)
            cell.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await cell
            after = await session.execute("print(open('kept.txt').read(), 'x' in globals())")
            return after.status, (after.restarted, after.stdout)

    status, (restarted, stdout) = asyncio.run(scenario())
    assert status == "ok" and restarted is True and stdout == "still here True\n"  # the last completed cell's state
