"""The CLI's answers to what a new user types (issue #23 items 2-8, 10-12; #18 item 5).

Every case runs the installed console script and checks the exact line it prints and its
exit status: usage errors exit 2 (with click's usage line), runtime errors exit 1. Lines
that embed text owned by other modules (a C type's spelling, the BTF parser's message)
take that text from the same module at test time, so the line is still checked whole.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import COREFRAME, REPO, run_cli

import coreframe
from coreframe import features

EXECSNOOP = str(REPO / "plugins" / "objects" / "execsnoop.bpf.o")
ROOT = os.geteuid() == 0
HEADER = "PCOMM            PID    PPID   RET ARGS"  # coreframe's execsnoop, not an impostor
needs_root = pytest.mark.skipif(not ROOT, reason="needs root to load BPF")


def lines(text: str) -> list[str]:
    return text.splitlines()


def error_line(stderr: str) -> str:
    """The one line that names the cause (click's `Error: ...` or our `coreframe: error: ...`)."""
    found = [ln for ln in stderr.splitlines()
             if ln.startswith(("Error: ", "coreframe: error: "))]
    assert len(found) == 1, stderr
    return found[0]


def usage_error(r: subprocess.CompletedProcess[str], usage: str, error: str) -> None:
    """Exit 2 with click's usage block: usage line, help hint, blank, the cause."""
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and "Warning" not in r.stderr, r.stderr
    cmd = usage.split(" [")[0].removeprefix("Usage: ")
    got = lines(r.stderr)
    # click 8.1 (the last for Python 3.9) names the first help option and spells an
    # unknown option's suggestion without quotes; 8.2+ as expected here
    if len(got) > 1 and got[1] == f"Try '{cmd} -h' for help.":
        got[1] = f"Try '{cmd} --help' for help."
    if len(got) > 3:
        got[3] = re.sub(r"^Error: No such option: (\S+) Did you mean (\S+)\?$",
                        r"Error: No such option '\1'. Did you mean '\2'?", got[3])
    assert got == [usage, f"Try '{cmd} --help' for help.", "", error], r.stderr


def runtime_error(r: subprocess.CompletedProcess[str], error: str) -> None:
    """Exit 1 with one line on stderr."""
    assert r.returncode == 1, r.stderr
    assert lines(r.stderr) == [error], r.stderr


def installed_names(env: dict[str, str] | None = None) -> list[str]:
    r = run_cli("list", "--json", env=env)
    assert r.returncode == 0, r.stderr
    return [row["name"] for row in json.loads(r.stdout)]


# -- 2. features: a program type that loads vs an attach point this kernel lacks ----------

def test_features_rows_say_what_was_probed() -> None:
    r = run_cli("features")
    assert r.returncode == 0, r.stderr
    rows = {" ".join(ln.split()) for ln in lines(r.stdout)}
    data = features.all_features()
    yes = {True: "yes", False: "no"}
    assert "Program types (BPF_PROG_LOAD accepts the type):" in rows
    assert "Attach points and other features:" in rows
    assert f"kprobe program type: {yes[data['prog_types']['kprobe']]}" in rows
    assert (f"kprobe attach (kprobe PMU / kprobe_events): {yes[data['misc']['kprobe']]}"
            in rows)
    assert f"tracing program type: {yes[data['prog_types']['tracing']]}" in rows
    assert (f"tracing link (fentry/fexit trampolines): {yes[data['link_types']['tracing']]}"
            in rows)
    assert (f"fentry/fexit attach (BPF trampolines): {yes[data['misc']['trampoline']]}"
            in rows)
    # no bare name is printed twice: every row names its group
    names = [ln.split(":")[0].strip() for ln in lines(r.stdout) if ln.startswith("  ")]
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    # the JSON keys are unchanged (scripts keep working)
    assert set(json.loads(run_cli("features", "--json").stdout)["misc"]) == set(data["misc"])


# -- 3. info shows the tool's options -----------------------------------------------------

@pytest.mark.parametrize("tool", ["execsnoop", "readhist"])
def test_info_shows_run_help(tool: str) -> None:
    info = run_cli("info", tool)
    help_ = run_cli("run", tool, "--help")
    assert info.returncode == 0 and help_.returncode == 0, info.stderr + help_.stderr
    assert info.stdout.endswith(help_.stdout), info.stdout
    assert f"Usage: coreframe run {tool} [OPTIONS]" in lines(info.stdout)
    assert f"run as:       coreframe run {tool}" in lines(info.stdout)


# -- 4. --debug after run NAME, on the fast path and on click's ---------------------------

@needs_root
def test_debug_after_run_name_fast_path(tmp_path: Path) -> None:
    r = run_cli("run", "execsnoop", "--debug", "--duration", "0")
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0] == HEADER  # then any exec() seen meanwhile
    # and it means debug: a failure shows its traceback before the one line
    r = run_cli("run", "execsnoop", "--cgroup", str(tmp_path), "--debug", "--duration", "0")
    assert r.returncode == 1
    assert r.stderr.startswith("Traceback (most recent call last):"), r.stderr
    assert lines(r.stderr)[-1] == (f"coreframe: error: --cgroup {tmp_path}: not a cgroup v2 "
                                   "directory (no cgroup.controllers; give a path under the "
                                   "cgroup2 mount)")


@needs_root
def test_debug_after_run_name_click_path(tmp_path: Path) -> None:
    # a value starting with '-' is one the fast parser leaves to click
    r = run_cli("run", "execsnoop", "-n", "-x", "--debug", "--cgroup", str(tmp_path),
                "--duration", "0")
    assert r.returncode == 1
    assert r.stderr.startswith("Traceback (most recent call last):"), r.stderr
    r = run_cli("run", "--debug", "execsnoop", "-n", "-x", "--duration", "0")
    assert r.returncode == 0, r.stderr


@needs_root
def test_debug_keeps_the_fast_path_lean() -> None:
    code = ("import sys; from coreframe.cli import main\n"
            "try:\n    main(['run', 'execsnoop', '--debug', '-x', '--duration', '0'])\n"
            "except SystemExit as e:\n    assert not e.code, e.code\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('click', 'stevedore', 'importlib.metadata')))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[-1] == "[]", r.stdout


# -- 5. did you mean ----------------------------------------------------------------------

def test_unknown_tool_suggests() -> None:
    known = installed_names()
    r = run_cli("run", "execsnop")
    # exitsnoop (a first-party tool since issue 22) is one letter further away
    runtime_error(r, f"coreframe: error: unknown tool 'execsnop'; did you mean 'execsnoop', "
                     f"'exitsnoop'? (installed: {', '.join(known)})")
    r = run_cli("info", "readhst")
    runtime_error(r, f"coreframe: error: unknown tool 'readhst'; did you mean 'readhist'? "
                     f"(installed: {', '.join(known)})")


@pytest.mark.parametrize("argv,usage,error", [
    (["lst"], "Usage: coreframe [OPTIONS] COMMAND [ARGS]...",
     "Error: No such command 'lst'. Did you mean 'list'?"),
    (["object", "lod", EXECSNOOP], "Usage: coreframe object [OPTIONS] COMMAND [ARGS]...",
     "Error: No such command 'lod'. Did you mean 'load'?"),
    (["list", "--jsn"], "Usage: coreframe list [OPTIONS]",
     "Error: No such option '--jsn'. Did you mean '--json'?"),
    (["run", "execsnoop", "--uidd", "3"], "Usage: coreframe run execsnoop [OPTIONS]",
     "Error: No such option '--uidd'. Did you mean '--uid'?"),
], ids=["command", "subcommand", "option", "tool-option"])
def test_unknown_command_or_option_suggests(argv: list[str], usage: str, error: str) -> None:
    usage_error(run_cli(*argv), usage, error)


# -- 6. a cause shared by every program is said once --------------------------------------

def test_bad_btf_file_is_said_once() -> None:
    from coreframe.btf.kernel import load_target

    with pytest.raises(coreframe.errors.Error) as cause:
        load_target("/etc/passwd")
    r = run_cli("object", "load", EXECSNOOP, "--btf", "/etc/passwd")
    runtime_error(r, "coreframe: error: --btf /etc/passwd: not a BTF file (raw BTF or an ELF "
                     f"object with a .BTF section): {cause.value}")
    assert r.stdout == ""


@pytest.mark.unprivileged
def test_no_privilege_is_said_once() -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", str(COREFRAME), "object", "load", EXECSNOOP],
                       capture_output=True, text=True, timeout=60,
                       env={**os.environ, "COREFRAME_CACHE_DIR": "/nonexistent-cf-cache"})
    runtime_error(r, "coreframe: error: none of the 5 programs loaded: feature probe (BTF "
                     "kinds): permission denied (needs CAP_BPF; run as root)")
    assert r.stdout == ""


# -- 7. --duration without --attach ---------------------------------------------------------

def test_duration_without_attach_is_usage_error() -> None:
    usage_error(run_cli("object", "load", EXECSNOOP, "--duration", "1"),
                "Usage: coreframe object load [OPTIONS] PATH",
                "Error: --duration needs --attach (it is how long the programs stay attached; "
                "without --attach they are unloaded at once)")


@needs_root
def test_duration_with_attach_detaches_by_itself() -> None:
    r = run_cli("object", "load", EXECSNOOP, "--attach", "--duration", "0.2")
    assert r.returncode == 0, r.stderr
    assert lines(r.stderr)[0].startswith("Attached 5 programs (tracepoint "), r.stderr


# -- 8. --set as strict as spec.rodata.X = ... -------------------------------------------

def _variables() -> str:
    spec = coreframe.open(EXECSNOOP)
    return ", ".join(v for ds in spec.data_sections() for v in ds.names())


def _pointer_type() -> str:
    return coreframe.open(EXECSNOOP).rodata.variable("exit_event_type").c_type


def test_set_without_equals_is_usage_error() -> None:
    r = run_cli("object", "load", EXECSNOOP, "--set", "targ_uid")
    usage_error(r, "Usage: coreframe object load [OPTIONS] PATH",
                "Error: Invalid value for '--set': 'targ_uid' is not NAME=VALUE "
                "(e.g. --set targ_uid=1)")


# Found by reading the object (its variables and their C types): one line, exit 1, and
# nothing is loaded.
@pytest.mark.parametrize("item,error", [
    ("nosuch=1", lambda: "coreframe: error: object 'execsnoop' has no global variable 'nosuch' "
                         f"(variables: {_variables()})"),
    ("max_argz=3", lambda: "coreframe: error: object 'execsnoop' has no global variable "
                           f"'max_argz'; did you mean 'max_args'? (variables: {_variables()})"),
    ("exit_event_type=5", lambda: "coreframe: error: rodata variable 'exit_event_type' is "
                                  f"'{_pointer_type()}' (pointer, 64-bit): pointers cannot be set "
                                  "from the command line (a pointer's value is an address, not a "
                                  "setting)"),
    ("max_args=abc", lambda: "coreframe: error: rodata variable 'max_args' is 'const volatile "
                             "int' (signed 32-bit): 'abc' is not an integer"),
], ids=["unknown", "near-miss", "pointer", "bad-value"])
def test_set_errors(item: str, error) -> None:  # noqa: ANN001 - a lambda: built at run time
    r = run_cli("object", "load", EXECSNOOP, "--set", item)
    runtime_error(r, error())
    assert r.stdout == ""


# -- 10. hints name only what this kernel offers -------------------------------------------

def _offered(hint: str) -> list[str]:
    return hint.removeprefix("use ").split(" or ")


def test_hook_hint_names_only_offered_hooks() -> None:
    probes = {"fentry/fexit": features.has_trampoline, "kprobes": features.has_kprobe,
              "tracepoints": features.has_tracepoints}
    for failed in probes:
        hint = features.hook_hint(failed)
        want = [n for n, probe in probes.items() if n != failed and probe()]
        if want:
            assert hint == "use " + " or ".join(want), (failed, hint)
        else:
            assert hint.startswith("this kernel offers none of"), (failed, hint)


@needs_root
def test_readhist_fexit_failure_hint() -> None:
    if features.has_trampoline():
        pytest.skip("this kernel has BPF trampolines: fexit loads")
    r = run_cli("run", "readhist", "--method", "fexit", "--duration", "0")
    hint = features.hook_hint("fentry/fexit")
    runtime_error(r, "coreframe: error: readhist: no attach method works here (last: kernel "
                     "feature missing: BPF trampolines (fentry/fexit/fmod_ret/lsm/freplace) (the "
                     f"kernel refuses them even to root here; {hint}))")
    if not features.has_kprobe():
        assert "kprobe" not in r.stderr


@needs_root
def test_readhist_kretprobe_failure_hint() -> None:
    if features.has_kprobe():
        pytest.skip("this kernel has kprobes")
    r = run_cli("run", "readhist", "--method", "kretprobe", "--duration", "0")
    runtime_error(r, "coreframe: error: readhist: no attach method works here (last: kernel "
                     "feature missing: kprobes (kernel built without CONFIG_KPROBE_EVENTS; "
                     f"{features.hook_hint('kprobes')}))")
    if not features.has_trampoline():
        assert "fentry" not in r.stderr


# -- 12. a missing option value prints the usage line --------------------------------------

@pytest.mark.parametrize("argv,usage,error", [
    (["run", "readhist", "-p"], "Usage: coreframe run readhist [OPTIONS]",
     "Error: Option '-p' requires an argument."),
    (["object", "load", EXECSNOOP, "--btf"], "Usage: coreframe object load [OPTIONS] PATH",
     "Error: Option '--btf' requires an argument."),
    (["run", "readhist", "--pid", "0"], "Usage: coreframe run readhist [OPTIONS]",
     "Error: Invalid value for '-p' / '--pid': 0 is not in the range x>=1."),
], ids=["run-tool", "object-load", "bad-value"])
def test_missing_value_prints_usage(argv: list[str], usage: str, error: str) -> None:
    usage_error(run_cli(*argv), usage, error)


# -- 11 and #18.5: third-party packages on a private site dir -----------------------------

PACKAGES = {
    "cf-shadow": ("cf_shadow", ['execsnoop = "cf_shadow:Shadow"', 'dupopt = "cf_shadow:DupOpt"'],
                  '''
        from coreframe.options import IntRange, Option
        from coreframe.tool import Tool


        class Shadow(Tool):
            name = "execsnoop"
            summary = "cf-shadow's own execsnoop"

            def run(self, ctx):
                print("cf-shadow execsnoop ran", file=ctx.out)
                return 0


        class DupOpt(Tool):
            name = "dupopt"
            summary = "declares -p twice"

            @classmethod
            def params(cls):
                return [Option("-p", "--pid", type=IntRange(min=1)),
                        Option("-p", "--port", type=int)]

            def run(self, ctx):
                return 0
        '''),
    **{f"cf-twin-{x}": (f"cf_twin_{x}", [f'twin = "cf_twin_{x}:Twin"'], f'''
        from coreframe.tool import Tool


        class Twin(Tool):
            name = "twin"
            summary = "twin {x}"

            def run(self, ctx):
                print("twin {x} ran", file=ctx.out)
                return 0
        ''') for x in "ab"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Three real pip-installed distributions in a private site dir (on PYTHONPATH only).

    PYTHONPATH comes before the venv's site-packages, so importlib.metadata meets the
    impostor execsnoop before coreframe's own: the rule, not the path order, must decide.
    """
    root = tmp_path_factory.mktemp("thirdparty")
    for dist, (module, entries, source) in PACKAGES.items():
        pkg = root / dist
        pkg.mkdir()
        (pkg / f"{module}.py").write_text(textwrap.dedent(source).lstrip())
        (pkg / "pyproject.toml").write_text(textwrap.dedent(f"""\
            [build-system]
            requires = ["setuptools"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "{dist}"
            version = "0.1.0"

            [tool.setuptools]
            py-modules = ["{module}"]

            [project.entry-points."coreframe.tools"]
            """) + "\n".join(entries) + "\n")
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--target", str(target),
                    *(str(root / d) for d in PACKAGES)], check=True, timeout=300)
    yield {"PYTHONPATH": str(target), "XDG_CACHE_HOME": str(root / "xdg")}
    shutil.rmtree(root, ignore_errors=True)


def test_shadowed_tool_in_list_json(site: dict[str, str]) -> None:
    r = run_cli("list", "--json", env=site)
    assert r.returncode == 0, r.stderr
    rows = {row["name"]: row for row in json.loads(r.stdout)}
    assert rows["execsnoop"]["distribution"] == "coreframe"
    assert rows["execsnoop"]["summary"] == "Trace exec() calls and process lifetimes"
    assert rows["execsnoop"]["shadowed_by"] is None
    shadow = rows["cf-shadow:execsnoop"]
    assert (shadow["distribution"], shadow["summary"], shadow["shadowed_by"]) == (
        "cf-shadow", "cf-shadow's own execsnoop", "coreframe:execsnoop")
    # no first-party claimant: neither keeps the plain name
    assert "twin" not in rows
    assert rows["cf-twin-a:twin"]["summary"] == "twin a"
    assert rows["cf-twin-b:twin"]["summary"] == "twin b"


def test_shadowed_tool_in_list_table(site: dict[str, str]) -> None:
    r = run_cli("list", env=site)
    assert r.returncode == 0, r.stderr
    out = lines(r.stdout)
    rows = {ln.split()[0]: " ".join(ln.split()) for ln in out[1:] if not ln.startswith("note:")}
    assert rows["execsnoop"].startswith(
        "execsnoop Trace exec() calls and process lifetimes coreframe 0.1.0 ")
    assert rows["cf-shadow:execsnoop"] == (
        "cf-shadow:execsnoop cf-shadow's own execsnoop cf-shadow 0.1.0 yes")
    assert ("note: 'execsnoop' is also claimed by cf-shadow: coreframe's own tool keeps the "
            "name; run the other as cf-shadow:execsnoop") in out
    assert ("note: 'twin' is claimed by cf-twin-a and cf-twin-b, none of them coreframe's "
            "own: run cf-twin-a:twin or cf-twin-b:twin") in out


def test_shadowed_tool_in_info(site: dict[str, str]) -> None:
    r = run_cli("info", "execsnoop", env=site)
    assert r.returncode == 0, r.stderr
    out = lines(r.stdout)
    assert "from:         coreframe 0.1.0" in out
    assert "entry point:  coreframe_plugins.execsnoop:ExecSnoop" in out
    assert ("shadows:      cf-shadow:execsnoop (cf-shadow 0.1.0; run it as coreframe run "
            "cf-shadow:execsnoop)") in out
    r = run_cli("info", "cf-shadow:execsnoop", env=site)
    assert r.returncode == 0, r.stderr
    out = lines(r.stdout)
    assert out[:6] == [
        "name:         execsnoop",
        "run as:       coreframe run cf-shadow:execsnoop",
        "summary:      cf-shadow's own execsnoop",
        "from:         cf-shadow 0.1.0",
        "entry point:  cf_shadow:Shadow",
        "shadowed by:  coreframe:execsnoop (coreframe's own tool keeps the name 'execsnoop')",
    ]


@needs_root
def test_first_party_tool_wins_the_plain_name(site: dict[str, str]) -> None:
    r = run_cli("run", "execsnoop", "--duration", "0", env=site)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0] == HEADER  # then any exec() seen meanwhile
    # the click path too (a value the fast parser leaves to click)
    r = run_cli("run", "execsnoop", "-n", "-x", "--duration", "0", env=site)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0] == HEADER  # then any exec() seen meanwhile


@pytest.mark.parametrize("name", ["cf-shadow:execsnoop", "cf_shadow:execsnoop",
                                  "CF-Shadow:execsnoop"])
def test_shadowed_tool_runs_as_dist_name(site: dict[str, str], name: str) -> None:
    r = run_cli("run", name, env=site)
    assert (r.returncode, r.stdout) == (0, "cf-shadow execsnoop ran\n"), r.stderr
    r = run_cli("run", name, "--help", env=site)
    assert r.returncode == 0, r.stderr
    assert lines(r.stdout)[0] == f"Usage: coreframe run {name} [OPTIONS]"


def test_ambiguous_name_is_refused(site: dict[str, str]) -> None:
    for argv in (["run", "twin"], ["info", "twin"]):
        runtime_error(run_cli(*argv, env=site),
                      "coreframe: error: tool name 'twin' is claimed by cf-twin-a and "
                      "cf-twin-b, none of them coreframe's own: run cf-twin-a:twin or "
                      "cf-twin-b:twin")
    r = run_cli("run", "cf-twin-b:twin", env=site)
    assert (r.returncode, r.stdout) == (0, "twin b ran\n"), r.stderr
    runtime_error(run_cli("run", "cf-nope:twin", env=site),
                  "coreframe: error: no tool 'twin' from distribution 'cf-nope' (installed: "
                  "cf-twin-a:twin, cf-twin-b:twin)")


DUP = "option -p is declared twice (-p/--pid and -p/--port)"


def test_duplicate_option_listed_as_broken(site: dict[str, str]) -> None:
    r = run_cli("list", "--json", env=site)
    assert r.returncode == 0 and "Warning" not in r.stderr, r.stderr
    row = {row["name"]: row for row in json.loads(r.stdout)}["dupopt"]
    assert (row["ready"], row["reason"]) == (False, f"broken plugin: {DUP}")
    r = run_cli("list", env=site)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert [" ".join(ln.split()) for ln in lines(r.stdout) if ln.startswith("dupopt ")] == [
        f"dupopt cf-shadow 0.1.0 no: broken plugin: {DUP}"]


@pytest.mark.parametrize("argv", [["info", "dupopt"], ["run", "dupopt", "-p", "1"],
                                  ["run", "dupopt", "--help"], ["run", "dupopt"]],
                         ids=["info", "run-fast", "run-help", "run-plain"])
def test_duplicate_option_refused(site: dict[str, str], argv: list[str]) -> None:
    runtime_error(run_cli(*argv, env=site), f"coreframe: error: tool 'dupopt' is broken: {DUP}")


def test_option_conflicts_cover_click_options_and_reserved_names() -> None:
    import click

    from coreframe.options import Option, option_conflicts, parse

    fine = [Option("-p", "--pid", type=int), click.Option(["-i", "--interval"], type=float)]
    assert option_conflicts(fine) == ""
    assert parse(fine[:1], ["-p", "3"]) == {"pid": 3}
    dup = [Option("-p", "--pid", type=int), click.Option(["-p", "--port"], type=int)]
    assert option_conflicts(dup) == "option -p is declared twice (-p/--pid and -p/--port)"
    same_kw = [Option("-a", "value"), Option("-b", "value")]
    assert option_conflicts(same_kw) == "option name 'value' is declared twice (-a and -b)"
    assert parse(same_kw, ["-a", "1"]) is None  # the fast path declines; click's refuses
    assert option_conflicts([Option("-h", "--hosts")]) == (
        "option -h is coreframe's own (every `coreframe run NAME` has it) and is declared "
        "again (-h/--hosts)")
    assert option_conflicts([Option("-d", "--duration", type=int)]) == (
        "option --duration is coreframe's own (every `coreframe run NAME` has it) and is "
        "declared again (-d/--duration)")
    assert option_conflicts([Option("-D", "duration", type=int)]) == (
        "option name 'duration' is coreframe's own (--duration) and is declared again (-D)")
