"""Options a tool declares as conflicting (``Tool.conflicts``): a usage error naming
the conflict and the fix, exit 2, before anything is loaded, whichever way
``coreframe run`` parses the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from coreframe.options import Exclusive, Option, conflict_error
from coreframe.tool import Tool, run_params, usage_error

# (tool, arguments, the message's words): every conflict the first-party tools declare
CASES = [
    ("runqlat", ["-P", "-L"], "-P and -L cannot be used together: pick one grouping"),
    ("runqlat", ["-L", "--pidnss", "-P"],
     "-P, -L and --pidnss cannot be used together: pick one grouping"),
    ("cpudist", ["-P", "-L", "-m"], "-P and -L cannot be used together: pick one grouping"),
    ("tcplife", ["-4", "-6"], "-4 and -6 cannot be used together: leave both out"),
    ("syscount", ["-d", "1", "--duration", "1"], "-d and --duration cannot be used together"),
    ("profile", ["-U", "-K"], "-U and -K cannot be used together"),
    ("profile", ["-F", "99", "-c", "1000"], "-F and -c cannot be used together"),
    ("profile", ["1", "--duration", "1"], "DURATION and --duration cannot be used together"),
    # the click path (an option click must parse: --prometheus) reports the same
    ("runqlat", ["-P", "-L", "--prometheus", "127.0.0.1:1"],
     "-P and -L cannot be used together"),
]

# Runs `coreframe run ...` in this process and reports, after it exits, whether any
# part of the BPF object reader or loader was even imported.
PROBE = """
import json, sys
from coreframe.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as e:
    code = e.code
touched = sorted(m for m in sys.modules
                 if m.startswith(("coreframe.object.", "coreframe.link.", "coreframe.btf.")))
print(json.dumps({"code": code, "touched": touched}))
"""


@pytest.mark.parametrize("tool,args,says", CASES, ids=[" ".join([c[0], *c[1]]) for c in CASES])
def test_conflict_is_a_usage_error_before_loading(tool: str, args: list[str],
                                                   says: str) -> None:
    proc = subprocess.run([sys.executable, "-c", PROBE, "run", tool, *args],
                          capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 2, proc.stderr
    errors = [x for x in proc.stderr.splitlines() if x.startswith("Error:")]
    assert len(errors) == 1 and says in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "Tracing" not in proc.stderr
    # nothing was parsed, loaded or attached: not even the modules that would do it
    assert result["touched"] == [], result["touched"]


def test_one_of_each_is_fine() -> None:
    from coreframe_plugins.runqlat import RunqLat

    params = run_params(RunqLat)
    defaults = {p.name: p.default for p in params}
    assert usage_error(RunqLat, dict(defaults, per_process=True)) == ""
    assert usage_error(RunqLat, dict(defaults, per_process=True, per_pidns=True)) == (
        "-P and --pidnss cannot be used together: pick one grouping")


def test_conflict_error_spells_options_as_declared() -> None:
    params = [Option("-a", "--alpha", is_flag=True), Option("--beta", type=int),
              Option("-g", "--gamma", type=int, default=3)]
    group = (Exclusive("alpha", "beta", "gamma", fix="give one"),)
    assert conflict_error(params, group, {"alpha": True, "beta": None, "gamma": 3}) == ""
    assert conflict_error(params, group, {"alpha": True, "beta": 0, "gamma": 3}) == (
        "-a and --beta cannot be used together: give one")
    # a value equal to the default is not "given"; another one is
    assert conflict_error(params, group, {"alpha": False, "beta": 1, "gamma": 4}) == (
        "--beta and -g cannot be used together: give one")
    assert conflict_error(params, group, {"alpha": True, "beta": 1, "gamma": 3},
                          spell=lambda n: n.upper()) == (
        "ALPHA and BETA cannot be used together: give one")
    with pytest.raises(TypeError):
        Exclusive("alone")


def test_a_conflict_naming_no_option_marks_the_tool_broken() -> None:
    from coreframe.cli.registry import tool_problem

    class Broken(Tool):
        name = "broken"

        @classmethod
        def params(cls) -> list[Option]:
            return [Option("-a", "--alpha", is_flag=True)]

        conflicts = (Exclusive("alpha", "alpah"),)

    assert "names no option of the tool: 'alpah'" in tool_problem(Broken)
