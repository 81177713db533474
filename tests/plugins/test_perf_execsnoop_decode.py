"""execsnoop's record decoding: one unpack per exec event, output identical to before."""

from __future__ import annotations

import io
import json

from coreframe_plugins.execsnoop import _EXEC, _EXIT, EVENT_EXEC, EVENT_EXIT, ExecSnoop

OPTS = {"time": False, "timestamp": False, "fails": False, "uid": None, "quote": False,
        "name": None, "line": None, "print_uid": False, "cgroup": None, "max_args": 20,
        "exits": True, "as_json": False, "buffer": "auto"}


def _tool(**over: object) -> tuple[ExecSnoop, io.StringIO]:
    opts = dict(OPTS, **over)
    tool = ExecSnoop(**opts)
    out = io.StringIO()
    tool._out = out
    tool._name, tool._line, tool._json = opts["name"], opts["line"], opts["as_json"]
    tool._exits, tool._quote = opts["exits"], opts["quote"]
    tool._plain_prefix = not (opts["time"] or opts["timestamp"] or opts["print_uid"])
    tool._mono_to_wall = 1000.0
    tool._start_mono_ns = 0
    return tool, out


def _exec(args: list[bytes], filename: bytes = b"/bin/echo", flags: int = 0,
          comm: bytes = b"echo") -> memoryview:
    fname = filename + b"\0"
    blob = b"".join(a + b"\0" for a in args)
    head = _EXEC.pack(EVENT_EXEC, 42, 42, 7, 1000, 0, 5_000_000_000, len(args), flags,
                      len(fname), len(blob), comm)
    return memoryview(head + fname + blob + b"\xff" * 8)


def test_exec_text_line() -> None:
    tool, out = _tool()
    tool._on_record(_exec([b"echo", b"hi", b"caf\xc3\xa9"]))
    assert out.getvalue() == f"{'echo':<16} {42:<6} {7:<6} {0:>3} echo hi café\n"


def test_exec_truncated_quoted_and_bad_utf8() -> None:
    tool, out = _tool(quote=True)
    tool._on_record(_exec([b'a"b', b"\xff"], flags=1))
    assert out.getvalue().endswith('"a\\"b" "\ufffd" ...\n')


def test_exec_filters_by_name_and_line() -> None:
    tool, out = _tool(name="ech", line="needle")
    tool._on_record(_exec([b"echo", b"hay"]))
    tool._on_record(_exec([b"echo", b"needle"], comm=b"cat"))
    assert out.getvalue() == ""
    tool._on_record(_exec([b"echo", b"a-needle"]))
    assert "a-needle" in out.getvalue()


def test_exec_and_exit_json() -> None:
    tool, out = _tool(as_json=True)
    tool._on_record(_exec([b"echo", b"x"]))
    rec = _EXIT.pack(EVENT_EXIT, 42, 42, 7, 1000, 3, 1_500_000, 0, 0, 6_000_000_000,
                     b"echo\0junk")
    tool._on_record(memoryview(rec))
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {"event": "exec", "time": 1005.0, "pid": 42, "ppid": 7, "uid": 1000,
                     "comm": "echo", "filename": "/bin/echo", "args": ["echo", "x"],
                     "args_truncated": False, "retval": 0}
    assert second["event"] == "exit" and second["exit_code"] == 3
    assert second["comm"] == "echo" and second["duration_ns"] == 1_500_000


def test_exit_ignored_without_exits_option() -> None:
    tool, out = _tool(exits=False)
    rec = _EXIT.pack(EVENT_EXIT, 1, 1, 1, 0, 0, 0, 0, 0, 0, b"x")
    tool._on_record(memoryview(rec))
    assert out.getvalue() == ""
