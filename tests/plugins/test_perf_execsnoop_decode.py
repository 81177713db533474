"""execsnoop's record decoding: one unpack and one decode per exec event, and output equal
to what the straightforward decoding (each string alone, json.dumps) gives."""

from __future__ import annotations

import json
from typing import Any

from coreframe_plugins.execsnoop import _EXEC, _EXIT, EVENT_EXEC, EVENT_EXIT, ExecSnoop
from hypothesis import given, settings
from hypothesis import strategies as st

OPTS = {"time": False, "timestamp": False, "fails": False, "uid": None, "quote": False,
        "name": None, "line": None, "print_uid": False, "cgroup": None, "max_args": 20,
        "exits": True, "as_json": False, "buffer": "auto"}
MONO_TO_WALL = 1000.0


def _tool(**over: object) -> tuple[Any, list[str]]:
    """The tool's record callback, and the list its output lines go to."""
    lines: list[str] = []
    handler = ExecSnoop(**dict(OPTS, **over))._handler(lines.append, MONO_TO_WALL, 0)
    return handler, lines


def _exec(args: list[bytes], filename: bytes | None = b"/bin/echo", flags: int = 0,
          comm: bytes = b"echo", ts: int = 5_000_000_000, retval: int = 0) -> memoryview:
    """An exec record as the BPF program lays it out (filename None: it was unreadable)."""
    fname = b"" if filename is None else filename + b"\0"
    blob = b"".join(a + b"\0" for a in args)
    head = _EXEC.pack(EVENT_EXEC, 42, 42, 7, 1000, retval, ts, len(args), flags,
                      len(fname), len(blob), comm)
    # perf samples may carry padding after the strings: it must be ignored
    return memoryview(head + fname + blob + b"\xff" * 8)


def test_exec_text_line() -> None:
    on_record, out = _tool()
    on_record(_exec([b"echo", b"hi", b"caf\xc3\xa9"]))
    assert out == [f"{'echo':<16} {42:<6} {7:<6} {0:>3} echo hi café\n"]


def test_exec_text_without_arguments() -> None:
    on_record, out = _tool()
    on_record(_exec([], flags=1))
    assert out == [f"{'echo':<16} {42:<6} {7:<6} {0:>3}  ...\n"]


def test_exec_truncated_quoted_and_bad_utf8() -> None:
    on_record, out = _tool(quote=True)
    on_record(_exec([b'a"b', b"\xff"], flags=1))
    assert out[0].endswith('"a\\"b" "\ufffd" ...\n')


def test_exec_prefix_columns() -> None:
    on_record, out = _tool(timestamp=True, print_uid=True)
    on_record(_exec([b"echo"], ts=2_500_000_000))
    assert out == [f"{'2.500':<8} {1000:<6} {'echo':<16} {42:<6} {7:<6} {0:>3} echo\n"]


def test_exec_filters_by_name_and_line() -> None:
    for as_json in (False, True):
        on_record, out = _tool(name="ech", line="needle", as_json=as_json)
        on_record(_exec([b"echo", b"hay"]))
        on_record(_exec([b"echo", b"needle"], comm=b"cat"))
        assert out == []
        on_record(_exec([b"echo", b"a-needle"]))
        assert len(out) == 1 and "a-needle" in out[0]


def test_exec_and_exit_json() -> None:
    on_record, out = _tool(as_json=True)
    on_record(_exec([b"echo", b"x"]))
    rec = _EXIT.pack(EVENT_EXIT, 42, 42, 7, 1000, 3, 1_500_000, 0, 1, 6_000_000_000,
                     b"echo\0junk")
    on_record(memoryview(rec))
    first, second = (json.loads(line) for line in out)
    assert first == {"event": "exec", "time": 1005.0, "pid": 42, "ppid": 7, "uid": 1000,
                     "comm": "echo", "filename": "/bin/echo", "args": ["echo", "x"],
                     "args_truncated": False, "retval": 0}
    assert second == {"event": "exit", "time": 1006.0, "pid": 42, "ppid": 7, "uid": 1000,
                      "comm": "echo", "duration_ns": 1_500_000, "exit_code": 3, "signal": 0,
                      "core_dumped": True}


def test_exit_text_line() -> None:
    on_record, out = _tool()
    rec = _EXIT.pack(EVENT_EXIT, 42, 42, 7, 1000, 0, 1_500_000, 9, 0, 6_000_000_000, b"sh")
    on_record(memoryview(rec))
    assert out == [f"{'sh':<16} {42:<6} {7:<6} {'EXIT':>3} signal 9, lifetime 1.500 ms\n"]


def test_exit_ignored_without_exits_option() -> None:
    for as_json in (False, True):
        on_record, out = _tool(exits=False, as_json=as_json)
        rec = _EXIT.pack(EVENT_EXIT, 1, 1, 1, 0, 0, 0, 0, 0, 0, b"x")
        on_record(memoryview(rec))
        assert out == []


# Strings as the kernel hands them over: any bytes but NUL, so quotes, backslashes,
# control characters, text to escape ("\u0000" spelled out) and invalid UTF-8.
_ARG = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\0", b"")),
    st.text(max_size=20).map(lambda t: t.replace("\0", "").encode()),
    st.sampled_from([b"", b'"', b"\\", b"\\u0000", b'","', b"\x1f", b"\x7f", b"\xc3",
                     b"caf\xc3\xa9", b"\xe2\x80\xa8", b"\xf0\x9f\x98\x80"]),
)


def _decoded(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@settings(max_examples=400, deadline=None)
@given(args=st.lists(_ARG, max_size=8), filename=st.one_of(st.none(), _ARG),
       truncated=st.booleans(), ts=st.integers(0, 2**63), retval=st.integers(-4095, 0))
def test_json_equals_json_dumps(args: list[bytes], filename: bytes | None, truncated: bool,
                                ts: int, retval: int) -> None:
    """The hand-built line is byte for byte what json.dumps makes of the same event."""
    on_record, out = _tool(as_json=True)
    on_record(_exec(args, filename, flags=int(truncated), comm=b'a"\\\x01', ts=ts,
                    retval=retval))
    want = {"event": "exec", "time": ts / 1e9 + MONO_TO_WALL, "pid": 42, "ppid": 7,
            "uid": 1000, "comm": 'a"\\\x01',
            "filename": "" if filename is None else _decoded(filename),
            "args": [_decoded(a) for a in args], "args_truncated": truncated,
            "retval": retval}
    assert out == [json.dumps(want, separators=(",", ":"), ensure_ascii=False) + "\n"]


@settings(max_examples=200, deadline=None)
@given(args=st.lists(_ARG, max_size=8), quote=st.booleans())
def test_text_equals_joined_arguments(args: list[bytes], quote: bool) -> None:
    on_record, out = _tool(quote=quote)
    on_record(_exec(args))
    words = [_decoded(a) for a in args]
    if quote:
        words = ['"' + w.replace('"', '\\"') + '"' for w in words]
    assert out == [f"{'echo':<16} {42:<6} {7:<6} {0:>3} {' '.join(words)}\n"]
