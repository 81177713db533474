"""The click commands of ``coreframe`` (list, info, run, object, btf, features).

Everything heavy (BTF, ELF, pyroute2, the loader) is imported inside the
command that needs it, so ``coreframe list`` stays fast. ``coreframe.cli.entry.main``
is the entry point; it comes here for everything but the plain
``coreframe run NAME ...``, which it serves without importing click.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..errors import Error


class _State:
    debug = False


def _set_debug(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # coreframe.cli.main already saw --debug wherever it stands (tracebacks, log level)
    if value:
        _State.debug = True


DEBUG_HELP = "Show tracebacks and loader debug output."


def _debug_option(hidden: bool = False) -> click.Option:
    """``--debug``, accepted after ``run`` and after ``run NAME`` as well as before the command."""
    return click.Option(["--debug"], is_flag=True, expose_value=False, is_eager=True,
                        hidden=hidden, callback=_set_debug, help=DEBUG_HELP)


class _UsageLine:
    """Every usage error prints the usage line.

    click's option parser raises some of them (``-p`` given without its value)
    without the context that prints ``Usage: ...``; attach it here.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click.UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise


class _Command(_UsageLine, click.Command):
    """A command whose usage errors all print the usage line."""


class _Group(_UsageLine, click.Group):
    """A group whose usage errors print the usage line; its commands and subgroups too."""

    command_class = _Command
    group_class = type

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        """click 8.2+ suggests a close command name; 8.1 (the last for Python 3.9)
        does not, so say it here the way the newer click does."""
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            name = args[0] if args else ""
            if hasattr(click.exceptions, "NoSuchCommand") or not name or exc.ctx is None:
                raise  # 8.2+: NoSuchCommand carries the suggestion
            from difflib import get_close_matches

            close = get_close_matches(name, self.list_commands(ctx))
            if close:
                exc.message = f"{exc.message} Did you mean {close[0]!r}?"
            raise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="coreframe")
@click.option("--debug", is_flag=True, help=DEBUG_HELP)
def cli(debug: bool) -> None:
    """Run and build eBPF tools with a pure-Python CO-RE loader."""
    _State.debug = debug


# -- tools ----------------------------------------------------------------------------------


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_tools(as_json: bool) -> None:
    """List installed tools and whether they can run here.

    A name claimed by two distributions is never resolved silently: coreframe's
    own tool keeps the name and the other is listed as DIST:NAME (shadowed);
    with no first-party claimant, every claimant is listed and run as DIST:NAME.
    """
    from .registry import discover

    rows = []
    tools = discover()
    for run_name, entry in tools.items():
        ready = entry.readiness()
        rows.append({
            "name": run_name,
            "summary": entry.summary,
            "distribution": entry.distribution,
            "version": entry.version,
            "ready": ready.ready,
            "reason": ready.detail,
            "shadowed_by": entry.shadowed_by or None,
            "_ready_text": str(ready),
        })
    if as_json:
        import json

        for row in rows:
            del row["_ready_text"]
        click.echo(json.dumps(rows, indent=2))
        return
    table = [("NAME", "SUMMARY", "FROM", "READY")]
    for row in rows:
        origin = f"{row['distribution']} {row['version']}".strip() or "?"
        table.append((row["name"], row["summary"], origin, row["_ready_text"]))
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    for r in table:
        click.echo(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    for note in _name_notes(tools.values()):
        click.echo(note)


def _name_notes(entries: Any) -> list[str]:
    """One line per tool name claimed by several distributions, saying who runs it how."""
    notes = []
    done: set[str] = set()
    for entry in entries:
        if entry.shadows:
            others = ", ".join(o.qualified for o in entry.shadows)
            notes.append(f"note: {entry.name!r} is also claimed by "
                         f"{', '.join(o.distribution for o in entry.shadows)}: coreframe's own "
                         f"tool keeps the name; run the other as {others}")
        elif entry.ambiguous_with and entry.name not in done:
            done.add(entry.name)
            claimants = [entry, *entry.ambiguous_with]
            notes.append(f"note: {entry.name!r} is claimed by "
                         f"{' and '.join(e.distribution for e in claimants)}, none of them "
                         f"coreframe's own: run {' or '.join(e.qualified for e in claimants)}")
    return notes


def _tool_command(name: str, cls: Any) -> click.Command:
    """The click command ``coreframe run NAME`` parses with (also what ``info`` shows)."""
    from ..options import to_click_params
    from ..tool import run_params, run_tool, usage_error

    def callback(**options: Any) -> None:
        problem = usage_error(cls, options)
        if problem:  # before the tool is made: nothing is loaded
            raise click.UsageError(problem, click.get_current_context())
        sys.exit(run_tool(cls, options))

    params = to_click_params(run_params(cls), click)
    if not any("--debug" in getattr(p, "opts", ()) for p in params):
        params.append(_debug_option(hidden=True))
    return _Command(name, params=params, callback=callback, help=cls.summary,
                    context_settings={"help_option_names": ["-h", "--help"]})


def _tool_help(run_name: str, cls: Any) -> str:
    """Exactly what ``coreframe run NAME --help`` prints."""
    command = _tool_command(run_name, cls)
    parent = click.Context(cli, info_name="coreframe")
    with click.Context(run, info_name="run", parent=parent) as run_ctx, \
            click.Context(command, info_name=run_name, parent=run_ctx,
                          **command.context_settings) as ctx:
        return command.get_help(ctx)


@cli.command("info")
@click.argument("name")
def info(name: str) -> None:
    """Describe one tool: summary, origin, object, requirements, options.

    NAME may be DIST:NAME to pick one distribution's tool when two claim the name.
    """
    from .registry import get_tool

    entry = get_tool(name, with_distribution=True)
    cls = entry.cls
    assert cls is not None
    click.echo(f"name:         {entry.name}")
    click.echo(f"run as:       coreframe run {entry.run_name}")
    click.echo(f"summary:      {cls.summary}")
    click.echo(f"from:         {entry.distribution} {entry.version}".rstrip())
    click.echo(f"entry point:  {entry.target}")
    if entry.shadowed_by:
        click.echo(f"shadowed by:  {entry.shadowed_by} (coreframe's own tool keeps the name "
                   f"{entry.name!r})")
    for other in entry.shadows:
        origin = f"{other.distribution} {other.version}".rstrip()
        click.echo(f"shadows:      {other.qualified} ({origin}; run it as "
                   f"coreframe run {other.qualified})")
    click.echo(f"object:       {cls.object_file or '-'}")
    click.echo(f"requires:     {', '.join(cls.requires) or '-'}")
    click.echo(f"ready:        {entry.readiness()}")
    doc = (cls.__doc__ or "").strip()
    if doc:
        click.echo("")
        click.echo(doc)
    click.echo("")
    click.echo(_tool_help(entry.run_name, cls), nl=False)
    click.echo("")


class _RunGroup(_Group):
    """`coreframe run NAME ...`: one sub-command per installed tool, built on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .registry import discover

        return [name for name, e in discover().items() if e.cls is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from .registry import find_tool

        entry = find_tool(name)  # an Error goes up to cli.entry.main: one line, exit 1
        return _tool_command(name, entry.cls)


def _set_btf(_ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value:
        from ..btf.locate import set_default

        set_default(value, "--btf")


@cli.group("run", cls=_RunGroup)
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help=DEBUG_HELP)
@click.option("--btf", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              expose_value=False, callback=_set_btf,
              help="Relocate against this BTF instead of the kernel's (for every tool, "
                   "even one with its own --btf option; docs/no-btf.md).")
def run() -> None:
    """Run a tool: coreframe run [--btf FILE] NAME [tool options] (NAME --help for them).

    NAME may be DIST:NAME (see `coreframe list`) to run one distribution's tool
    when two claim the same name.
    """


@cli.command("serve")
@click.argument("config", metavar="CONFIG")
@click.option("--check", is_flag=True, help="Check the config file and exit (0: fine, 2: not).")
def serve_cmd(config: str, check: bool) -> None:
    """Run several tools as one agent from a TOML file (docs/serve.md): one /metrics with
    a tool label, events as JSON lines, health endpoints; SIGHUP reloads, SIGTERM stops."""
    from .serve import main as serve_main

    sys.exit(serve_main(config, check=check, debug=_State.debug))


# -- objects --------------------------------------------------------------------------------


@cli.group("object")
def object_group() -> None:
    """Inspect or load a BPF object file."""


@object_group.command("inspect")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--btf", "btf_path", type=click.Path(exists=True, dir_okay=False),
              help="Relocate against this BTF instead of the running kernel's.")
@click.option("--json", "as_json", is_flag=True)
def object_inspect(path: str, btf_path: str | None, as_json: bool) -> None:
    """Programs, maps, variables and CO-RE relocations of an object."""
    from ..object import open as open_object
    from ..object.inspect import format_inspection, inspect_object

    target = _target_btf(btf_path)
    spec = open_object(path)
    data = inspect_object(spec, target_btf=target)
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(format_inspection(data))


def _check_set(_ctx: click.Context, _param: click.Parameter,
               items: tuple[str, ...]) -> tuple[str, ...]:
    """``--set`` values must be NAME=VALUE; checked before the object is even opened."""
    for item in items:
        name, sep, _value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE (e.g. --set "
                                     f"{name.strip() or 'NAME'}=1)")
    return items


def _apply_sets(spec: Any, sets: tuple[str, ...]) -> None:
    """Write each ``--set`` (already checked to be NAME=VALUE).

    A name the object lacks or a value its C type refuses is found by reading the
    object, so it is an error line and exit 1 (not a usage error), before anything loads.
    """
    for item in sets:
        name, _, value = item.partition("=")
        spec.set_variable(name.strip(), value)


def _target_btf(btf_path: str | None) -> Any:
    """``--btf FILE`` read once, before anything is loaded.

    A file that is not BTF is said once, not once per program that would have
    relocated against it.
    """
    if not btf_path:
        return None
    from ..btf.kernel import load_target

    try:
        return load_target(btf_path)
    except Error as exc:
        raise Error(f"--btf {btf_path}: not a BTF file (raw BTF or an ELF object with a .BTF "
                    f"section): {exc}") from None


def _check_ifname(ifname: str, attach: bool) -> None:
    """``--ifname`` names an interface of this network namespace: checked before
    anything is loaded, a usage error (exit 2) otherwise."""
    import socket

    from .report import fail

    if not attach:
        fail(f"--ifname {ifname} needs --attach (it says where the XDP and tc programs "
             "are attached)", 2)
    try:
        socket.if_nametoindex(ifname)
    except (OSError, ValueError):
        fail(f"--ifname {ifname}: no such network interface in this network namespace "
             "(`ip link` lists them)", 2)


@object_group.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", callback=_check_set,
              help="Set a global variable (.rodata/.data/.bss) before load; "
                   "SECTION:NAME=VALUE when two sections define NAME.")
@click.option("--btf", "btf_path", type=click.Path(exists=True, dir_okay=False),
              help="Relocate against this BTF instead of the running kernel's.")
@click.option("--attach", is_flag=True, help="Attach every program by its SEC() and hold.")
@click.option("--duration", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
              help="With --attach: detach and exit after SECONDS (default: at Ctrl-C).")
@click.option("--ifname", metavar="IF",
              help="With --attach: attach the XDP and tc programs (SEC xdp, tc, classifier, "
                   "tcx/ingress, tcx/egress) to interface IF; BPF links where the kernel has "
                   "them, else netlink; detached on exit.")
@click.option("--stats", is_flag=True, help="Report run counts/times (BPF_ENABLE_STATS).")
@click.option("--json", "as_json", is_flag=True)
def object_load(path: str, sets: tuple[str, ...], btf_path: str | None, attach: bool,
                duration: float | None, ifname: str | None, stats: bool,
                as_json: bool) -> None:
    """Load every program of an object (like bpftool prog loadall) and report each."""
    from .load import load_command

    if duration is not None and not attach:
        raise click.UsageError("--duration needs --attach (it is how long the programs stay "
                               "attached; without --attach they are unloaded at once)")
    if ifname is not None:
        _check_ifname(ifname, attach)
    code = load_command(path, sets=sets, btf_path=_target_btf(btf_path), attach=attach,
                        duration=duration, stats=stats, as_json=as_json, apply_sets=_apply_sets,
                        install_handlers=lambda ctx: ctx.install_signal_handlers(),
                        ifname=ifname)
    sys.exit(code)


# -- BTF and features -----------------------------------------------------------------------


@cli.group("btf")
def btf_group() -> None:
    """Read BTF from a raw file or an object's .BTF section."""


@btf_group.command("dump")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["raw", "json", "c"]), default="raw",
              help="raw: bpftool's raw text; json; c: a compilable vmlinux.h.")
def btf_dump(path: str, fmt: str) -> None:
    """Dump every type (raw and c match `bpftool btf dump file F format raw|c`)."""
    from ..btf.dump import dump_btf_file

    dump_btf_file(path, fmt)


@btf_group.command("min")
@click.argument("objects", nargs=-1, required=True, metavar="OBJECT...",
                type=click.Path(exists=True, dir_okay=False))
@click.option("--btf", "btf_path", type=click.Path(exists=True, dir_okay=False),
              metavar="VMLINUX",
              help="The full BTF to cut down (default: the running kernel's).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              metavar="OUT", help="Where to write the minimal BTF (raw BTF).")
def btf_min(objects: tuple[str, ...], btf_path: str | None, output: str) -> None:
    """Write the minimal BTF the CO-RE relocations of OBJECTs need (like `bpftool gen
    min_core_btf`): ship it for a kernel without BTF, use it with --btf."""
    import os

    from ..btf.locate import find
    from ..btf.minimize import Minimizer
    from ..object import open as open_object

    target_file = find(btf_path)
    full = _target_btf(target_file.path)
    specs = [(path, open_object(path)) for path in objects]
    minimizer = Minimizer(full)
    failed = 0
    for path, spec in specs:
        if spec.btf is None or spec.btf_ext is None:
            raise Error(f"{path}: no .BTF/.BTF.ext, so no CO-RE relocations to keep types "
                        "for (build it with clang -g)")
        outcomes = minimizer.add(spec.btf, spec.btf_ext)
        failed += sum(isinstance(v, Error) for v in outcomes.values())
    result = minimizer.build()
    try:
        with open(output, "wb") as f:
            f.write(result.data)
    except OSError as e:
        raise Error(f"cannot write {output}: {e.strerror or e}") from None
    full_size = os.path.getsize(target_file.path) if not target_file.path.endswith(
        ".tar.xz") else len(full.to_bytes())
    share = 100.0 * len(result.data) / full_size if full_size else 0.0
    click.echo(f"wrote {output}: {len(result.data)} bytes, {len(result.ids)} types for "
               f"{result.relocations} CO-RE relocations in {result.objects} object(s); "
               f"full BTF {target_file.path}: {full_size} bytes, {len(full) - 1} types "
               f"({share:.3f}%)")
    if failed:
        click.echo(f"note: {failed} relocation(s) fail against the full BTF too (they are "
                   "poisoned or refused the same way with the minimal one)", err=True)


@cli.command("cflags")
@click.option("--clang", default="clang", show_default=True, help="The clang to ask.")
def cflags_cmd(clang: str) -> None:
    """Print the flags that compile BPF C for coreframe (clang $(coreframe cflags) -c ...)."""
    import shlex

    from ..build import bpf_cflags

    click.echo(shlex.join(bpf_cflags(clang)))


@cli.command("new")
@click.argument("name")
@click.argument("directory", required=False, metavar="[DIR]")
def new_cmd(name: str, directory: str | None) -> None:
    """Write a new tool package NAME (in DIR, default ./coreframe-NAME): make && pip install ."""
    from .report import fail
    from .scaffold import ScaffoldError, new_package

    try:
        root, files = new_package(name, directory)
    except ScaffoldError as exc:
        fail(str(exc), 2)
    for path in files:
        click.echo(f"  wrote {path}")
    from .registry import entry_point_claims

    taken = sorted({dist for dist, _ in entry_point_claims(name)})
    if taken:
        # not an error (the package is written), but `coreframe run NAME` will not pick it
        click.echo(f"note: a tool named {name!r} is already installed (from "
                   f"{', '.join(taken)}); yours will be shadowed: rename it, or run it as "
                   f"coreframe-{name.replace('_', '-')}:{name}", err=True)
    click.echo(f"Next: cd {root} && make && pip install . && sudo coreframe run {name}")


@cli.command("features")
@click.option("--json", "as_json", is_flag=True)
def features_cmd(as_json: bool) -> None:
    """What this kernel supports (probed by loading tiny programs)."""
    from ..features import GROUP_TITLES, all_features, feature_label

    data = all_features()
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2))
        return
    for group, values in data.items():
        if isinstance(values, dict):
            click.echo(f"{GROUP_TITLES.get(group, group)}:")
            rows = [(feature_label(group, key), value) for key, value in values.items()]
            width = max((len(label) for label, _ in rows), default=0)
            for label, value in rows:
                shown = ({True: "yes", False: "no"}[value] if isinstance(value, bool)
                         else value)
                click.echo(f"  {label + ':':<{width + 1}} {shown}")
        else:
            click.echo(f"{group}: {values}")


def invoke(args: list[str]) -> None:
    """Run the click command line; click's own exits and usage errors end here."""
    try:
        cli.main(args=args, prog_name="coreframe", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
