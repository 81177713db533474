"""``coreframe serve CONFIG``: several tools in one process, as a node agent.

The TOML file (docs/serve.md) names the tools and their options, where events
go (JSON lines, each tagged with its tool, on stdout or appended to a file),
the HTTP endpoint (``/metrics`` with a ``tool`` label, ``/healthz``, ``/readyz``)
and an optional OTLP/HTTP endpoint. The steps:

1. ``load_config``: read, parse and check everything (tool names, option names
   and values, keys, addresses); a mistake is one line naming the file, line and
   table, and the exit code is 2, before anything is loaded.
2. ``Agent.prepare``: bind the HTTP port and open the events file (a port in use
   is also a config error, exit 2, still before anything is loaded).
3. ``Agent.run``: start each tool on a thread of its own (``ToolRunner``), then
   wait for signals: SIGTERM/SIGINT stop every tool (each leaves its ``with``
   blocks, so every link, program and map is closed; nothing is pinned) and exit
   0; SIGHUP reloads the file (a bad file is reported and the running
   configuration kept).

A tool that fails to start or crashes is reported (a log line on stderr, the
``coreframe_serve_tool_failures`` counter, ``coreframe_serve_tool_up`` 0, and
``/readyz`` 503) and restarted with back-off; the others keep running. Memory
does not grow with the event rate: lines are written through to the
destination (a slow reader slows the tool, and the kernel counts what it could
not send), the OTLP queue is bounded and counts what it drops, and metric label
sets are bounded (docs/metrics.md).
"""

from __future__ import annotations

import difflib
import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import Error
from ..metrics import DEFAULT_TOP, Counter, Gauge, MetricSet

if TYPE_CHECKING:
    from ..tool import Tool

SERVE_KEYS = {
    "listen": "HOST:PORT for /metrics, /healthz and /readyz (omit: no HTTP endpoint)",
    "events": '"-" for stdout (default), "none", or a file to append JSON lines to',
    "otlp": "OTLP/HTTP endpoint URL, e.g. http://127.0.0.1:4318",
    "otlp_interval": "seconds between OTLP metric exports (default 10)",
    "otlp_events": "export events as OTLP log records too (default true)",
    "top": f"series kept per metric family, plus 'other' (default {DEFAULT_TOP})",
    "restart_delay": "seconds before restarting a failed tool, doubling up to 60 (default 1)",
}
TOOL_KEYS = {"tool", "enabled"}
# Set for the whole agent in [serve], never per tool.
AGENT_OPTIONS = {"prometheus": "listen", "otlp": "otlp", "as_json": "events"}
RESTART_MAX_S = 60.0

AGENT_METRICS = (
    Gauge("coreframe_serve_tool_up", "1 while the tool is running, 0 once it failed or ended",
          ("tool",)),
    Counter("coreframe_serve_tool_failures",
            "Times the tool failed to start or crashed (it is restarted with back-off)",
            ("tool",)),
    Counter("coreframe_serve_events", "Event lines written", ("tool",)),
    Counter("coreframe_serve_reloads", "Configuration reloads (SIGHUP)", ("result",)),
)


class ConfigError(Error):
    """A mistake in the config file: ``where`` is ``FILE:LINE`` (or ``FILE``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


# -- 1. the config ---------------------------------------------------------------------------


class ToolSpec:
    """One ``[tools.NAME]`` table, checked: the tool class and its full options."""

    def __init__(self, name: str, cls: type[Tool], options: dict[str, Any],
                 raw: dict[str, Any]) -> None:
        self.name = name
        self.cls = cls
        self.options = options
        self.raw = raw

    def same_as(self, other: ToolSpec) -> bool:
        return self.cls is other.cls and self.raw == other.raw


class Config:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.listen: str | None = None
        self.events = "-"
        self.otlp: str | None = None
        self.otlp_interval = 10.0
        self.otlp_events = True
        self.top = DEFAULT_TOP
        self.restart_delay = 1.0
        self.tools: dict[str, ToolSpec] = {}

    def where(self, table: str | None = None, key: str | None = None) -> str:
        line = locate(self.text, table, key)
        return f"{self.path}:{line}" if line else self.path


def _header(line: str) -> str | None:
    s = line.strip()
    if not s.startswith("[") or s.startswith("[["):
        return None
    end = s.find("]")
    if end < 0:
        return None
    return ".".join(p.strip().strip('"').strip("'") for p in s[1:end].split("."))


def locate(text: str, table: str | None, key: str | None = None) -> int | None:
    """The line (1-based) of ``key`` in ``[table]`` (or of the table's header)."""
    current = ""
    header_line = None
    for n, line in enumerate(text.splitlines(), 1):
        h = _header(line)
        if h is not None:
            current = h
            if table is not None and h == table:
                header_line = n
            continue
        if key is None or current != (table or ""):
            continue
        k = line.split("=", 1)[0].strip().strip('"').strip("'")
        if "=" in line and k == key:
            return n
    return header_line


def _suggest(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_config(path: str) -> Config:
    """Read and check the whole file; ConfigError names the first mistake."""
    text = _read(path)
    doc = _parse(path, text)
    cfg = Config(path, text)
    _check_top(cfg, doc)
    _check_serve(cfg, doc.get("serve", {}))
    _check_tools(cfg, doc.get("tools", {}))
    return cfg


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as exc:
        raise ConfigError(path, f"cannot read the config: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(path, f"not UTF-8 text: {exc.reason}") from None


def _parse(path: str, text: str) -> dict[str, Any]:
    try:
        import tomllib
    except ImportError:  # Python < 3.11: tomli is the package 3.11 adopted as tomllib
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(path, "reading TOML needs the tomli package on Python "
                              f"{sys.version_info[0]}.{sys.version_info[1]} (tomllib is "
                              "3.11+): pip install 'coreframe[serve]'") from None

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        line = getattr(exc, "lineno", None)  # tomli 2.1+ (3.9/3.10) has it, and says it too
        if "(at line " in msg:
            if line is None:
                line = msg.rsplit("(at line ", 1)[1].split(",")[0]
            msg = msg.rsplit(" (at line ", 1)[0]
        where = f"{path}:{line}" if line else path
        raise ConfigError(where, f"not valid TOML: {msg}") from None


def _check_top(cfg: Config, doc: dict[str, Any]) -> None:
    for key, value in doc.items():
        if key not in ("serve", "tools"):
            raise ConfigError(cfg.where(key, None) if isinstance(value, dict)
                              else cfg.where(None, key),
                              f"unknown key {key!r}{_suggest(key, ('serve', 'tools'))}: "
                              "the file has a [serve] table and [tools.NAME] tables")
        if not isinstance(value, dict):
            raise ConfigError(cfg.where(None, key), f"{key} must be a table ([{key}])")


def _check_serve(cfg: Config, serve: dict[str, Any]) -> None:
    from ..options import HostPort, Url

    for key, value in serve.items():
        where = cfg.where("serve", key)
        if key not in SERVE_KEYS:
            raise ConfigError(where, f"[serve] unknown key {key!r}{_suggest(key, SERVE_KEYS)}; "
                              f"known: {', '.join(SERVE_KEYS)}")
        want_str = key in ("listen", "events", "otlp")
        if want_str and not isinstance(value, str):
            raise ConfigError(where, f"[serve] {key} must be a string: {SERVE_KEYS[key]}")
        try:
            if key == "listen":
                cfg.listen = HostPort().convert(value)
                from ..export.prometheus import require

                require()
            elif key == "otlp":
                cfg.otlp = Url().convert(value)
                from ..export.otlp import require as require_otlp

                require_otlp()
            elif key == "events":
                cfg.events = value
            elif key == "otlp_events":
                if not isinstance(value, bool):
                    raise ValueError("must be true or false")
                cfg.otlp_events = value
            elif key == "top":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError("must be an integer of at least 1")
                cfg.top = value
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                    raise ValueError("must be a number of seconds above 0")
                setattr(cfg, key, float(value))
        except ValueError as exc:
            raise ConfigError(where, f"[serve] {key}: {exc}") from None
        except Error as exc:
            raise ConfigError(where, f"[serve] {key}: {exc}") from None


def _option_text(opt: Any) -> str:
    """What an option takes, for error messages."""
    from ..options import Choice, Directory, FloatRange, IntRange

    t = getattr(opt, "type", None)
    if getattr(opt, "is_flag", False):
        return "true or false"
    if isinstance(t, IntRange):
        lo = "" if t.min is None else f" from {t.min}"
        hi = "" if t.max is None else f" to {t.max}"
        return f"an integer{lo}{hi}"
    if isinstance(t, FloatRange):
        return "a number" + ("" if t.min is None else f" of at least {t.min}")
    if isinstance(t, Choice):
        return "one of " + ", ".join(map(repr, t.choices))
    if isinstance(t, Directory):
        return "an existing directory"
    return "a string"


def _convert(opt: Any, value: Any) -> Any:
    """``value`` from TOML for one tool option; ValueError when it does not fit."""
    from ..options import Option

    if isinstance(opt, Option):
        if opt.is_flag:
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise ValueError
        return opt.type.convert(value if isinstance(value, str) else str(value))
    # a click.Parameter (tools that declare click options)
    import click

    if getattr(opt, "is_flag", False):
        if not isinstance(value, bool):
            raise ValueError
        return value
    try:
        return opt.type.convert(value, opt, None)
    except click.BadParameter:
        raise ValueError from None


def _check_tools(cfg: Config, tools: dict[str, Any]) -> None:
    from ..tool import run_params
    from .registry import discover, find_tool

    if not tools:
        raise ConfigError(cfg.path, "no tools to run: add a [tools.NAME] table, e.g. "
                          "[tools.execsnoop]")
    for name, table in tools.items():
        tname = f"tools.{name}"
        if not isinstance(table, dict):
            raise ConfigError(cfg.where("tools", name) or cfg.where(None, "tools"),
                              f"[tools] {name} must be a table ([tools.{name}])")
        which = table.get("tool", name)
        if not isinstance(which, str):
            raise ConfigError(cfg.where(tname, "tool"), f"[{tname}] tool must be a tool name")
        try:
            entry = find_tool(which)
        except Error:
            entry = None
        if entry is None or entry.cls is None:
            known = [n for n, e in discover().items() if e.cls is not None]
            key = "tool" if "tool" in table else None
            raise ConfigError(cfg.where(tname, key),
                              f"[{tname}] unknown tool {which!r}{_suggest(which, known)}; "
                              f"installed: {', '.join(known) or 'none'}")
        cls = entry.cls
        params = {}
        for p in run_params(cls):
            pname = getattr(p, "name", None)
            if pname:
                params[pname] = p
        params.pop("core_btf", None)  # one target BTF per process: COREFRAME_BTF
        options: dict[str, Any] = {}
        for pname, p in params.items():
            if pname in ("prometheus", "otlp"):
                continue
            options[pname] = getattr(p, "default", None)
            if getattr(p, "is_flag", False) and options[pname] is None:
                options[pname] = False
        if "as_json" in params:
            options["as_json"] = True
        enabled = True
        for key, value in table.items():
            where = cfg.where(tname, key)
            if key == "tool":
                continue
            if key == "enabled":
                if not isinstance(value, bool):
                    raise ConfigError(where, f"[{tname}] enabled must be true or false")
                enabled = value
                continue
            pname = key.replace("-", "_")
            if pname in ("json",):
                pname = "as_json"
            if pname in AGENT_OPTIONS:
                raise ConfigError(where, f"[{tname}] {key} is set for every tool in [serve] "
                                  f"({AGENT_OPTIONS[pname]} = ...), not per tool")
            opt = params.get(pname)
            if opt is None:
                known = sorted(n for n in params if n not in AGENT_OPTIONS)
                raise ConfigError(where, f"[{tname}] {which} has no option {key!r}"
                                  f"{_suggest(pname, known)}; its options: {', '.join(known)}")
            try:
                options[pname] = _convert(opt, value)
            except (ValueError, OverflowError, TypeError):
                raise ConfigError(where, f"[{tname}] {key} = {value!r}: want "
                                  f"{_option_text(opt)}") from None
        if cls.conflicts:
            from ..options import conflict_error

            problem = conflict_error(run_params(cls), cls.conflicts, options,
                                     spell=lambda n: n.replace("_", "-"))
            if problem:
                raise ConfigError(cfg.where(tname, None) or cfg.where(None, "tools"),
                                  f"[{tname}] {problem}")
        if enabled:
            cfg.tools[name] = ToolSpec(name, cls, options, dict(table))


# -- 2. and 3. the agent -------------------------------------------------------------------


def _log(message: str) -> None:
    with _LOG_LOCK:
        sys.stderr.write(f"coreframe serve: {message}\n")
        sys.stderr.flush()


_LOG_LOCK = threading.Lock()


class EventWriter:
    """Tool lines → one destination, each tagged ``"tool":NAME`` first, whole lines only."""

    def __init__(self, dest: Any, owned: bool) -> None:
        self.dest = dest
        self.owned = owned
        self.lock = threading.Lock()
        self.otlp: Any = None

    def line_for(self, tool: str, counter: MetricSet) -> Any:
        from ..output import encode_json

        prefix = '{"tool":' + encode_json(tool) + ","
        whole = '{"tool":' + encode_json(tool) + ',"text":'
        values = counter.values["coreframe_serve_events"]
        key = (tool,)
        values.setdefault(key, 0)

        def emit(line: str) -> None:
            if not line:
                return
            if line.startswith('{"'):
                tagged = prefix + line[1:]
            else:  # a text line (a tool without JSON output)
                tagged = whole + encode_json(line) + "}"
            values[key] += 1
            dest = self.dest
            if dest is not None:
                with self.lock:
                    dest.write(tagged + "\n")
            otlp = self.otlp
            if otlp is not None:
                otlp.offer(tool, line)

        return emit

    def flush(self) -> None:
        if self.dest is not None:
            with self.lock:
                try:
                    self.dest.flush()
                except (OSError, ValueError):
                    pass

    def close(self) -> None:
        self.flush()
        if self.owned and self.dest is not None:
            self.dest.close()


class ToolRunner:
    """One tool on its own thread, restarted with back-off when it fails."""

    def __init__(self, agent: Agent, spec: ToolSpec) -> None:
        from ..tool import StopEvent

        self.agent = agent
        self.spec = spec
        self.name = spec.name
        self.stop = StopEvent()
        self.state = "starting"
        self.failures = 0
        self.last_error = ""
        families = spec.cls(**dict(spec.options)).metric_families()
        self.metrics = MetricSet(families, top=agent.config.top)
        self.thread = threading.Thread(target=self._main, name=f"tool-{self.name}", daemon=True)

    def start(self) -> None:
        self.agent.stats.set("coreframe_serve_tool_up", (self.name,), 0)
        self.agent.stats.inc("coreframe_serve_tool_failures", (self.name,), 0)
        self.thread.start()

    def _set_state(self, state: str) -> None:
        self.state = state
        self.agent.stats.set("coreframe_serve_tool_up", (self.name,),
                             1 if state == "running" else 0)

    def _main(self) -> None:
        from ..export.sinks import LineSink
        from ..tool import RunContext

        delay = self.agent.config.restart_delay
        emit = self.agent.events.line_for(self.name, self.agent.stats)
        name = self.name
        while not self.stop.is_set():
            out = LineSink(emit, self.agent.events.flush)
            err = LineSink(lambda line: _log(f"{name}: {line}") if line else None)
            opts = dict(self.spec.options)
            ctx = RunContext(out=out, err=err, duration=opts.pop("duration", None),
                             stop_event=self.stop)
            ctx.metrics = self.metrics
            self._set_state("running")
            try:
                tool = self.spec.cls(**opts)
                ctx.tool = tool
                code = tool.run(ctx) or 0
                problem = "" if code == 0 else f"exited with code {code}"
            except Exception as exc:
                problem = str(exc) if isinstance(exc, Error) else \
                    f"{type(exc).__name__}: {exc}"
                if self.agent.debug:
                    import traceback

                    traceback.print_exc()
            finally:
                out.close()
                err.close()
                self.agent.events.flush()
            if self.stop.is_set():
                break
            if not problem:
                self._set_state("finished")
                _log(f"{name}: finished")
                return
            self.failures += 1
            self.last_error = problem
            self._set_state("failed")
            self.agent.stats.inc("coreframe_serve_tool_failures", (name,))
            _log(f"{name}: failed: {problem}; restarting in {delay:g} s (the other tools "
                 "keep running)")
            if self.stop.wait(delay):
                break
            delay = min(delay * 2, RESTART_MAX_S)
        self._set_state("stopped")

    def request_stop(self) -> None:
        self.stop.set()

    def join(self, timeout: float) -> bool:
        self.thread.join(timeout)
        return not self.thread.is_alive()


class Agent:
    def __init__(self, config: Config, *, debug: bool = False) -> None:
        self.config = config
        self.debug = debug
        self.stats = MetricSet(AGENT_METRICS)
        self.runners: dict[str, ToolRunner] = {}
        self.server: Any = None
        self.otlp: Any = None
        self.events: EventWriter = EventWriter(None, False)
        self._wake = threading.Event()
        self._stop_requested = False
        self._reload_requested = False

    # -- 2. prepare: everything that can fail on the config, before any load --

    def prepare(self) -> None:
        cfg = self.config
        self.events = self._open_events(cfg)
        if cfg.listen:
            from ..export.http import MetricsServer
            from ..export.prometheus import registry

            try:
                self.server = MetricsServer(cfg.listen, registry(self.sources), self.health)
            except OSError as exc:
                raise ConfigError(cfg.where("serve", "listen"),
                                  f"[serve] listen = {cfg.listen!r}: cannot listen: "
                                  f"{exc.strerror or exc} (pick another port)") from None

    def _open_events(self, cfg: Config) -> EventWriter:
        if cfg.events == "none":
            return EventWriter(None, False)
        if cfg.events == "-":
            return EventWriter(sys.stdout, False)
        try:
            f = open(cfg.events, "a", encoding="utf-8", buffering=1 << 16)
        except OSError as exc:
            raise ConfigError(cfg.where("serve", "events"),
                              f"[serve] events = {cfg.events!r}: cannot open: "
                              f"{exc.strerror or exc}") from None
        return EventWriter(f, True)

    def sources(self) -> list[tuple[dict[str, str], MetricSet]]:
        out = [({"tool": r.name}, r.metrics) for r in list(self.runners.values())]
        out.append(({}, self.stats))
        if self.otlp is not None:
            out.append(({}, self.otlp.stats))
        return out

    def health(self) -> tuple[bool, dict[str, Any]]:
        tools = {r.name: {"state": r.state, "failures": r.failures,
                          **({"error": r.last_error} if r.last_error else {})}
                 for r in list(self.runners.values())}
        ready = bool(tools) and all(t["state"] == "running" for t in tools.values())
        return ready, {"tools": tools}

    # -- 3. run --

    def _start_otlp(self) -> None:
        cfg = self.config
        if not cfg.otlp:
            return
        from ..export.otlp import OtlpExporter

        self.otlp = OtlpExporter(
            cfg.otlp, lambda: [({"tool": r.name}, r.metrics)
                               for r in list(self.runners.values())] + [({}, self.stats)],
            interval=cfg.otlp_interval, events=cfg.otlp_events, log=_log)
        if cfg.otlp_events:
            self.events.otlp = self.otlp
        self.otlp.start()

    def _start_tools(self, specs: list[ToolSpec]) -> None:
        for spec in specs:
            try:
                runner = ToolRunner(self, spec)
            except Exception as exc:  # e.g. a third-party tool whose __init__ raises
                self.stats.inc("coreframe_serve_tool_failures", (spec.name,))
                self.stats.set("coreframe_serve_tool_up", (spec.name,), 0)
                _log(f"{spec.name}: failed to start: {type(exc).__name__}: {exc}")
                continue
            self.runners[spec.name] = runner
            runner.start()

    def run(self) -> int:
        import signal

        def on_stop(signum: int, _frame: Any) -> None:
            if self._stop_requested:
                _log("still stopping (tools are closing their programs and links)")
            self._stop_requested = True
            self._wake.set()

        def on_hup(signum: int, _frame: Any) -> None:
            self._reload_requested = True
            self._wake.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        self._start_otlp()
        if self.server is not None:
            self.server.start()
            _log(f"serving metrics on {self.server.url()} (health: {self.server.url('/healthz')},"
                 f" {self.server.url('/readyz')})")
        if self.otlp is not None:
            _log(f"exporting over OTLP/HTTP to {self.otlp.url}")
        where = {"-": "stdout", "none": "nowhere"}.get(self.config.events, self.config.events)
        _log(f"running {', '.join(self.config.tools)}; events as JSON lines to {where}")
        self._start_tools(list(self.config.tools.values()))
        while not self._stop_requested:
            self._wake.wait(0.5)
            self._wake.clear()
            if self._reload_requested and not self._stop_requested:
                self._reload_requested = False
                self.reload()
        return self.shutdown()

    def _stop_runners(self, names: list[str], timeout: float = 30.0) -> bool:
        runners = [self.runners[n] for n in names]
        for r in runners:
            r.request_stop()
        deadline = time.monotonic() + timeout
        ok = True
        for r in runners:
            if not r.join(max(0.0, deadline - time.monotonic())):
                _log(f"{r.name}: did not stop within {timeout:g} s")
                ok = False
        for n in names:
            del self.runners[n]
        return ok

    def shutdown(self) -> int:
        _log("stopping")
        ok = self._stop_runners(list(self.runners))
        if self.otlp is not None:
            self.otlp.close(timeout=5.0)
        if self.server is not None:
            self.server.close()
        self.events.close()
        _log("stopped" if ok else "stopped (a tool did not finish in time)")
        return 0 if ok else 1

    def reload(self) -> None:
        path = self.config.path
        try:
            new = load_config(path)
        except ConfigError as exc:
            self.stats.inc("coreframe_serve_reloads", ("error",))
            _log(f"reload failed, keeping the running configuration: {exc}")
            return
        old = self.config
        for key in ("listen", "otlp", "otlp_interval", "otlp_events", "events"):
            if getattr(old, key) != getattr(new, key):
                _log(f"reload: [serve] {key} changes only on restart; still "
                     f"{getattr(old, key)!r}")
                setattr(new, key, getattr(old, key))
        stop = [n for n, r in self.runners.items()
                if n not in new.tools or not new.tools[n].same_as(r.spec)]
        start = [s for n, s in new.tools.items()
                 if n not in self.runners or n in stop]
        self._stop_runners(stop)
        self.config = new
        self._start_tools(start)
        self.stats.inc("coreframe_serve_reloads", ("ok",))
        _log(f"reloaded {path}: {len(new.tools)} tools"
             + (f"; stopped {', '.join(stop)}" if stop else "")
             + (f"; started {', '.join(s.name for s in start)}" if start else ""))


def main(path: str, *, check: bool = False, debug: bool = False) -> int:
    """``coreframe serve``: exit 2 on a config mistake, before anything is loaded."""
    try:
        config = load_config(path)
        if check:
            print(f"{path}: ok ({', '.join(config.tools)})")
            return 0
        agent = Agent(config, debug=debug)
        agent.prepare()
    except ConfigError as exc:
        sys.stderr.write(f"coreframe: error: {exc}\n")
        return 2
    os.environ.setdefault("COREFRAME_SERVE", "1")
    return agent.run()
