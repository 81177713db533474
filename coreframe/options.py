"""Tool options declared without importing click.

``coreframe run NAME ARGS`` must attach about as fast as a C tool, and importing
click (inspect, ast, dis, platform, uuid, datetime, gettext...) costs more than
loading and attaching execsnoop. Tools therefore declare their options with
:class:`Option`, which :func:`parse` understands for the plain cases (flags,
``--opt value``, ``--opt=value``, ``-o value``, ``-ovalue``, clustered short
flags). Anything else — ``--help``, an unknown option, a value that does not
convert, a value starting with ``-`` — returns None, and the caller hands the
whole command line to click, which builds the same options with
:meth:`Option.to_click` and owns help text and error messages. So the fast
path only ever accepts what click would accept, with the same result (a
differential test checks this).
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any


class IntRange:
    """An int within [min, max] (either bound may be None), like click.IntRange."""

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        self.min = min
        self.max = max

    def convert(self, text: str) -> int:
        value = int(text)
        if (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max):
            raise ValueError(text)
        return value

    def to_click(self, click: Any) -> Any:
        return click.IntRange(min=self.min, max=self.max)


class FloatRange:
    """A float within [min, max] (either bound may be None), like click.FloatRange."""

    def __init__(self, min: float | None = None, max: float | None = None) -> None:
        self.min = min
        self.max = max

    def convert(self, text: str) -> float:
        value = float(text)
        if value != value or (self.min is not None and value < self.min) or (
                self.max is not None and value > self.max):
            raise ValueError(text)
        return value

    def to_click(self, click: Any) -> Any:
        return click.FloatRange(min=self.min, max=self.max)


class Choice:
    """One of a fixed set of strings (case-sensitive), like click.Choice."""

    def __init__(self, choices: Sequence[str]) -> None:
        self.choices = tuple(choices)

    def convert(self, text: str) -> str:
        if text not in self.choices:
            raise ValueError(text)
        return text

    def to_click(self, click: Any) -> Any:
        return click.Choice(self.choices)


class Directory:
    """An existing directory, given back as typed (click.Path(exists=True, file_okay=False))."""

    def convert(self, text: str) -> str:
        if not text or not os.path.isdir(text):
            raise ValueError(text)
        return text

    def to_click(self, click: Any) -> Any:
        return click.Path(exists=True, file_okay=False)


class File:
    """An existing file (not a directory), given back as typed
    (click.Path(exists=True, dir_okay=False))."""

    def convert(self, text: str) -> str:
        if not text or not os.path.isfile(text):
            raise ValueError(text)
        return text

    def to_click(self, click: Any) -> Any:
        return click.Path(exists=True, dir_okay=False)


class _ClickAdapter:
    """A click.ParamType built (on first use) from a ``convert`` whose ValueError
    message says what is wrong: click then prints it as a usage error (exit 2)."""

    _click_type: Any = None

    def to_click(self, click: Any) -> Any:
        outer = self

        class _Type(click.ParamType):
            name = outer.metavar

            def convert(self, value: Any, param: Any, ctx: Any) -> Any:
                try:
                    return outer.convert(value)
                except ValueError as exc:
                    self.fail(str(exc), param, ctx)

        return _Type()


def split_host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as (host, port); ValueError naming the fix."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host:
        raise ValueError(f"{text!r} is not HOST:PORT: give the address to listen on too, "
                         f"e.g. 127.0.0.1:{port or text} (or 0.0.0.0:{port or text} for "
                         "every interface)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


class HostPort(_ClickAdapter):
    """An address to listen on, ``HOST:PORT``; a bare port is refused (which interface
    to expose metrics on is the user's choice, not ours)."""

    metavar = "HOST:PORT"

    def convert(self, text: str) -> str:
        split_host_port(text)
        return str(text)


class Url(_ClickAdapter):
    """An ``http://`` or ``https://`` URL (an OTLP/HTTP endpoint)."""

    metavar = "URL"

    def convert(self, text: str) -> str:
        text = str(text)
        scheme, sep, rest = text.partition("://")
        if not sep or scheme not in ("http", "https") or not rest.strip("/"):
            raise ValueError(f"{text!r} is not an http:// or https:// URL "
                             "(e.g. http://127.0.0.1:4318)")
        return text


class Text:
    """Any string (click's default type)."""

    def convert(self, text: str) -> str:
        return text

    def to_click(self, click: Any) -> Any:
        return click.STRING


class _Builtin:
    """``int`` or ``float`` given as the type, as click accepts them."""

    def __init__(self, kind: type) -> None:
        self.kind = kind

    def convert(self, text: str) -> Any:
        value = self.kind(text)
        if value != value:
            raise ValueError(text)
        return value

    def to_click(self, click: Any) -> Any:
        return self.kind


def _as_type(kind: Any) -> Any:
    if kind is None or kind is str:
        return Text()
    if kind in (int, float):
        return _Builtin(kind)
    if hasattr(kind, "convert") and hasattr(kind, "to_click"):
        return kind
    raise TypeError(f"unsupported option type {kind!r}; use a click.Option instead")


class Option:
    """One ``--long``/``-s`` option of a tool: a flag, or one value of ``type``.

    The declarations follow click: ``Option("-u", "--uid", type=IntRange(0))``;
    a bare identifier among them names the keyword argument (``"as_json"``),
    otherwise the first long name does, with dashes turned into underscores.
    """

    def __init__(self, *decls: str, is_flag: bool = False, type: Any = None,
                 default: Any = None, help: str | None = None, metavar: str | None = None,
                 show_default: bool = False) -> None:
        self.decls = decls
        self.is_flag = is_flag
        self.type = _as_type(type)
        self.default = False if is_flag and default is None else default
        self.help = help
        self.metavar = metavar
        self.show_default = show_default
        self.opts = [d for d in decls if d.startswith("-")]
        names = [d for d in decls if not d.startswith("-")]
        if len(names) > 1 or not self.opts:
            raise TypeError(f"option declarations {decls!r}: want -x/--xx names and at most "
                            "one identifier")
        if names:
            self.name = names[0]
        else:
            longs = [d for d in self.opts if d.startswith("--")]
            self.name = (longs or self.opts)[0].lstrip("-").replace("-", "_").lower()

    def to_click(self, click: Any) -> Any:
        """The equivalent click.Option, for help output and error messages."""
        kwargs: dict[str, Any] = {"help": self.help, "show_default": self.show_default}
        if self.metavar is not None:
            kwargs["metavar"] = self.metavar
        if self.is_flag:
            return click.Option(list(self.decls), is_flag=True, **kwargs)
        return click.Option(list(self.decls), type=self.type.to_click(click),
                            default=self.default, **kwargs)


class Exclusive:
    """Options of a tool that cannot be given together, and what to do instead.

    ``Exclusive("per_process", "per_thread", fix="pick one grouping")`` names the
    options by their keyword names (``Option.name``; ``duration`` for the
    ``--duration`` every tool has). A tool lists them in ``Tool.conflicts``;
    ``coreframe run`` refuses a command line that gives more than one of a group
    as a usage error (exit 2) before anything is loaded, ``coreframe serve`` as a
    configuration error.
    """

    def __init__(self, *names: str, fix: str = "") -> None:
        if len(names) < 2:
            raise TypeError(f"Exclusive{names!r}: name at least two options")
        self.names = names
        self.fix = fix or "give one of them"

    def __repr__(self) -> str:
        return f"Exclusive{self.names!r}"


def _given(param: Any, value: Any) -> bool:
    """Whether an option was set on the command line (or in a config): not its default."""
    if value is None or value is False:
        return False
    return value != getattr(param, "default", None)


def _label(param: Any, name: str) -> str:
    """How the user spells an option: its first declaration (``-P``), or an argument's
    metavar (``[DURATION]`` without brackets)."""
    opts = list(getattr(param, "opts", ()) or ())
    if getattr(param, "param_type_name", "") == "argument":
        return (getattr(param, "metavar", None) or name.upper()).strip("[]")
    return opts[0] if opts else name


def conflict_error(params: Sequence[Any], conflicts: Sequence[Exclusive],
                   values: dict[str, Any], spell: Callable[[str], str] | None = None) -> str:
    """The first conflict among ``values`` ("" when none): ``"-P and -L cannot be used
    together: pick one grouping"``. ``params`` are the options the values were
    parsed with (``coreframe.tool.run_params``), for how each is spelt on a command
    line; ``spell(name)`` spells them otherwise (a config file's keys)."""
    by_name = {getattr(p, "name", None): p for p in params}
    for group in conflicts:
        given = [n for n in group.names if _given(by_name.get(n), values.get(n))]
        if len(given) < 2:
            continue
        labels = [spell(n) if spell else _label(by_name.get(n), n) for n in given]
        listed = ", ".join(labels[:-1]) + " and " + labels[-1]
        return f"{listed} cannot be used together: {group.fix}"
    return ""


def unknown_conflict_names(params: Sequence[Any], conflicts: Sequence[Exclusive]) -> str:
    """Names in ``conflicts`` that are no option of the tool ("" when all are)."""
    known = {getattr(p, "name", None) for p in params}
    bad = [n for group in conflicts for n in group.names if n not in known]
    return ", ".join(repr(n) for n in bad)


def to_click_params(params: Sequence[Any], click: Any) -> list[Any]:
    """click parameters for a mix of :class:`Option` and click.Parameter objects."""
    return [p.to_click(click) if isinstance(p, Option) else p for p in params]


# What `coreframe run NAME` adds to every tool's own options.
RESERVED = ("-h", "--help", "--duration")


def option_conflicts(params: Sequence[Any]) -> str:
    """What collides among a tool's options ("" when nothing does).

    click accepts an option string (``-p``) or a keyword name declared twice with
    a UserWarning per ``--help`` and lets the last declaration win; coreframe
    refuses such a tool instead (``coreframe list`` shows it as broken).
    ``params`` are the tool's own (``Tool.params()``), without what ``coreframe
    run`` adds (RESERVED).
    """
    seen_opts: dict[str, str] = dict.fromkeys(RESERVED, "")
    seen_names: dict[str, str] = {"duration": ""}
    problems: list[str] = []
    for p in params:
        opts = list(getattr(p, "opts", ())) + list(getattr(p, "secondary_opts", ()))
        name = getattr(p, "name", None) or ""
        label = "/".join(opts) or name
        clash = [o for o in opts if o in seen_opts]
        if clash and not seen_opts[clash[0]]:
            problems.append(f"option {'/'.join(clash)} is coreframe's own (every `coreframe "
                            f"run NAME` has it) and is declared again ({label})")
        elif clash:
            problems.append(f"option {'/'.join(clash)} is declared twice "
                            f"({seen_opts[clash[0]]} and {label})")
        elif name and name in seen_names and not seen_names[name]:
            problems.append(f"option name {name!r} is coreframe's own (--duration) and is "
                            f"declared again ({label})")
        elif name and name in seen_names:
            problems.append(f"option name {name!r} is declared twice "
                            f"({seen_names[name]} and {label})")
        for o in opts:
            seen_opts.setdefault(o, label)
        if name:
            seen_names.setdefault(name, label)
    return "; ".join(problems)


def parse(params: Sequence[Any], args: Sequence[str]) -> dict[str, Any] | None:
    """Keyword arguments for ``args``, or None when click should handle them.

    None is returned for anything this parser does not handle exactly as click
    would: a click.Parameter among ``params``, ``--help``, unknown options,
    positional arguments, a value that fails to convert or that starts with ``-``,
    and options declared twice (click's path refuses the tool, see ``option_conflicts``).
    """
    by_opt: dict[str, Option] = {}
    values: dict[str, Any] = {}
    for p in params:
        if not isinstance(p, Option) or p.name in values:
            return None
        for opt in p.opts:
            if opt in by_opt:
                return None
            by_opt[opt] = p
        values[p.name] = p.default
    i = 0
    n = len(args)
    try:
        while i < n:
            arg = args[i]
            i += 1
            if arg.startswith("--"):
                name, eq, inline = arg.partition("=")
                option = by_opt.get(name)
                if option is None:
                    return None
                if option.is_flag:
                    if eq:
                        return None
                    values[option.name] = True
                    continue
                if not eq:
                    if i >= n or args[i].startswith("-"):
                        return None
                    inline = args[i]
                    i += 1
                values[option.name] = option.type.convert(inline)
            elif arg.startswith("-") and len(arg) > 1:
                j = 1
                while j < len(arg):
                    option = by_opt.get("-" + arg[j])
                    if option is None:
                        return None
                    j += 1
                    if option.is_flag:
                        values[option.name] = True
                        continue
                    text = arg[j:]
                    if not text:
                        if i >= n or args[i].startswith("-"):
                            return None
                        text = args[i]
                        i += 1
                    values[option.name] = option.type.convert(text)
                    break
            else:
                return None
    except (ValueError, OverflowError):
        return None
    return values
