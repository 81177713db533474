"""RunContext: the stop flag tools wait on, and the GC pause around start-up."""

from __future__ import annotations

import _thread
import gc
import os
import signal
import time

import pytest

from coreframe.tool import RunContext, StopEvent, Tool, run_tool


def test_stop_event_set_wait_and_timeout() -> None:
    ev = StopEvent()
    assert not ev.is_set()
    t0 = time.monotonic()
    assert ev.wait(0.05) is False
    assert time.monotonic() - t0 >= 0.04
    _thread.start_new_thread(lambda: (time.sleep(0.05), ev.set()), ())
    assert ev.wait(5) is True and ev.is_set()
    ev.set()  # idempotent
    assert ev.wait() is True and ev.wait(0) is True


def test_signal_stops_a_sleeping_context() -> None:
    ctx = RunContext()
    ctx.install_signal_handlers()
    try:
        _thread.start_new_thread(lambda: (time.sleep(0.05), os.kill(os.getpid(),
                                                                   signal.SIGTERM)), ())
        t0 = time.monotonic()
        ctx.sleep(5)
        assert ctx.should_stop() and time.monotonic() - t0 < 2
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Quiet(Tool):
    name = "quiet"

    def run(self, ctx: RunContext) -> int:
        seen.append(gc.isenabled())
        ctx.status("attached")
        seen.append(gc.isenabled())
        return 0


seen: list[bool] = []


@pytest.mark.parametrize("paused", [True, False])
def test_gc_comes_back_once_the_tool_reports(paused: bool,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    seen.clear()
    if paused:
        gc.disable()
    try:
        assert run_tool(_Quiet, {}, gc_paused=paused) == 0
        assert seen == [not paused, True]
        assert gc.isenabled()
        assert "attached" in capsys.readouterr().err
    finally:
        gc.enable()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Silent(Tool):
    """Never reports status nor asks whether to stop (a careless third-party tool)."""

    name = "silent"

    def run(self, ctx: RunContext) -> int:
        deadline = time.monotonic() + 10
        while not gc.isenabled() and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.append(gc.isenabled())
        return 0


def test_gc_pause_has_a_time_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import coreframe.tool as tool

    monkeypatch.setattr(tool, "GC_PAUSE_MAX_S", 0.2)
    seen.clear()
    gc.disable()
    try:
        t0 = time.monotonic()
        assert run_tool(_Silent, {}, gc_paused=True) == 0
        assert seen == [True] and time.monotonic() - t0 < 5
    finally:
        gc.enable()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
