"""Text streams a tool writes its output to, that hand complete lines on.

Tools write with ``ctx.out.write`` (a whole line, or a line in pieces); these
sinks cut the text into lines and pass each to a callback, so the agent can tag
lines with their tool and the OTLP exporter can queue them as log records.
Nothing is kept but an unfinished line, so memory does not grow with the rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


class LineSink:
    """``write(text)`` → ``emit(line)`` for every complete line (without its newline)."""

    def __init__(self, emit: Callable[[str], None],
                 flush: Callable[[], None] | None = None) -> None:
        self._emit = emit
        self._flush = flush
        self._buf = ""

    def write(self, text: str) -> int:
        if "\n" not in text:
            self._buf += text
            return len(text)
        data = self._buf + text if self._buf else text
        *lines, self._buf = data.split("\n")
        emit = self._emit
        for line in lines:
            emit(line)
        return len(text)

    def flush(self) -> None:
        if self._flush is not None:
            self._flush()

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        if self._buf:
            self._emit(self._buf)
            self._buf = ""


class Tee:
    """Write through to ``out`` and hand every complete line to ``offer(line)`` too."""

    def __init__(self, out: Any, offer: Callable[[str], None]) -> None:
        self.out = out
        self._lines = LineSink(offer)

    def write(self, text: str) -> int:
        self.out.write(text)
        return self._lines.write(text)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)
