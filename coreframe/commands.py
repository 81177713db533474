"""The click commands of ``coreframe`` (list, info, run, object, btf, features).

Everything heavy (BTF, ELF, pyroute2, the loader) is imported inside the
command that needs it, so ``coreframe list`` stays fast. ``coreframe.cli.main``
is the entry point; it comes here for everything but the plain
``coreframe run NAME ...``, which it serves without importing click.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from . import __version__
from .cli import fail
from .errors import Error


class _State:
    debug = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="coreframe")
@click.option("--debug", is_flag=True, help="Show tracebacks and loader debug output.")
def cli(debug: bool) -> None:
    """Run and build eBPF tools with a pure-Python CO-RE loader."""
    _State.debug = debug


# -- tools ----------------------------------------------------------------------------------


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
def list_tools(as_json: bool) -> None:
    """List installed tools and whether they can run here."""
    from .registry import discover

    rows = []
    for entry in discover().values():
        ready = entry.readiness()
        rows.append({
            "name": entry.name,
            "summary": entry.summary,
            "distribution": entry.distribution,
            "version": entry.version,
            "ready": ready.ready,
            "reason": ready.detail,
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


@cli.command("info")
@click.argument("name")
def info(name: str) -> None:
    """Describe one tool: summary, origin, object, requirements, options."""
    from .registry import get_tool

    entry = get_tool(name, with_distribution=True)
    cls = entry.cls
    assert cls is not None
    click.echo(f"name:         {entry.name}")
    click.echo(f"summary:      {cls.summary}")
    click.echo(f"from:         {entry.distribution} {entry.version}".rstrip())
    click.echo(f"entry point:  {entry.target}")
    click.echo(f"object:       {cls.object_file or '-'}")
    click.echo(f"requires:     {', '.join(cls.requires) or '-'}")
    click.echo(f"ready:        {entry.readiness()}")
    doc = (cls.__doc__ or "").strip()
    if doc:
        click.echo("")
        click.echo(doc)


class _RunGroup(click.Group):
    """`coreframe run NAME ...`: one sub-command per installed tool, built on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from .registry import discover

        return [name for name, e in discover().items() if e.cls is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from .options import to_click_params
        from .registry import find_tool
        from .tool import run_params, run_tool

        try:
            entry = find_tool(name)
        except Error as exc:
            fail(str(exc))
        cls = entry.cls
        assert cls is not None

        def callback(**options: Any) -> None:
            sys.exit(run_tool(cls, options))

        params = to_click_params(run_params(cls), click)
        return click.Command(name, params=params, callback=callback, help=cls.summary,
                             context_settings={"help_option_names": ["-h", "--help"]})


@cli.group("run", cls=_RunGroup)
def run() -> None:
    """Run a tool: coreframe run NAME [tool options] (NAME --help for them)."""


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
    from .inspect import format_inspection, inspect_object
    from .object import open as open_object

    spec = open_object(path)
    target = None
    if btf_path:
        from .btf.kernel import load_target

        target = load_target(btf_path)
    data = inspect_object(spec, target_btf=target)
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(format_inspection(data))


def _apply_sets(spec: Any, sets: tuple[str, ...]) -> None:
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep:
            raise Error(f"--set takes NAME=VALUE, got {item!r}")
        spec.set_variable(name.strip(), value)


@object_group.command("load")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
              help="Set a global variable (.rodata/.data/.bss) before load.")
@click.option("--btf", "btf_path", type=click.Path(exists=True, dir_okay=False),
              help="Relocate against this BTF instead of the running kernel's.")
@click.option("--attach", is_flag=True, help="Attach every program by its SEC() and hold.")
@click.option("--duration", type=click.FloatRange(min=0), default=None, metavar="SECONDS")
@click.option("--stats", is_flag=True, help="Report run counts/times (BPF_ENABLE_STATS).")
@click.option("--json", "as_json", is_flag=True)
def object_load(path: str, sets: tuple[str, ...], btf_path: str | None, attach: bool,
                duration: float | None, stats: bool, as_json: bool) -> None:
    """Load every program of an object (like bpftool prog loadall) and report each."""
    from .loadcmd import load_command

    code = load_command(path, sets=sets, btf_path=btf_path, attach=attach, duration=duration,
                        stats=stats, as_json=as_json, apply_sets=_apply_sets,
                        install_handlers=lambda ctx: ctx.install_signal_handlers())
    sys.exit(code)


# -- BTF and features -----------------------------------------------------------------------


@cli.group("btf")
def btf_group() -> None:
    """Read BTF from a raw file or an object's .BTF section."""


@btf_group.command("dump")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["raw", "json"]), default="raw")
def btf_dump(path: str, fmt: str) -> None:
    """Dump every type (raw matches `bpftool btf dump file F format raw`)."""
    from .btf.dump import dump_btf_file

    dump_btf_file(path, fmt)


@cli.command("cflags")
@click.option("--clang", default="clang", show_default=True, help="The clang to ask.")
def cflags_cmd(clang: str) -> None:
    """Print the flags that compile BPF C for coreframe (clang $(coreframe cflags) -c ...)."""
    import shlex

    from .build import bpf_cflags

    click.echo(shlex.join(bpf_cflags(clang)))


@cli.command("new")
@click.argument("name")
@click.argument("directory", required=False, metavar="[DIR]")
def new_cmd(name: str, directory: str | None) -> None:
    """Write a new tool package NAME (in DIR, default ./coreframe-NAME): make && pip install ."""
    from .scaffold import ScaffoldError, new_package

    try:
        root, files = new_package(name, directory)
    except ScaffoldError as exc:
        fail(str(exc), 2)
    for path in files:
        click.echo(f"  wrote {path}")
    click.echo(f"Next: cd {root} && make && pip install . && sudo coreframe run {name}")


@cli.command("features")
@click.option("--json", "as_json", is_flag=True)
def features_cmd(as_json: bool) -> None:
    """What this kernel supports (probed by loading tiny programs)."""
    from .features import all_features

    data = all_features()
    if as_json:
        import json

        click.echo(json.dumps(data, indent=2))
        return
    for group, values in data.items():
        if isinstance(values, dict):
            click.echo(f"{group}:")
            for key, value in values.items():
                shown = {True: "yes", False: "no"}.get(value, value) if isinstance(
                    value, bool) else value
                click.echo(f"  {key:<32} {shown}")
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
