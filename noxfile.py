"""The test matrix: the whole suite under every supported Python found on this machine.

    make test-matrix                    # every version, then a summary per version
    make test-matrix PY="3.9 3.13"      # some of them
    .venv/bin/nox -s tests-3.9          # one, by hand (nox -l lists them)
    .venv/bin/nox -s tests-3.9 -- tests/cli -x     # arguments after -- go to pytest

One session per version, ``tests-X.Y``, in its own venv under .nox/ with the package
installed as ``./setup.sh --dev`` does (strict editable, extra ``test``, byte-compiled)
and the suite run as the README runs it (as root: BPF needs it). Interpreters are
found by tools/pythons.py (pyenv builds, ``pythonX.Y`` on PATH); a version that is not
here is a skipped session that says where it looked, never a failure. Each session
writes its counts next to its junit XML (.nox/matrix/); the ``summary`` session prints
them per version, with whether ``coreframe run execsnoop`` saw a real exec() under it.
The cache directory is one per version (``$COREFRAME_CACHE_DIR-pyX.Y``, outside the
repository): the caches are checked when read, but sharing them would only make each
interpreter rebuild the other's.
"""

from __future__ import annotations

import json
import os
import sys
import time
import xml.etree.ElementTree as ET

import nox

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tools"))
import pythons  # noqa: E402

ROOT = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(ROOT, ".nox", "matrix")
# The tests in which `coreframe run execsnoop` (the console script of the session's
# venv) traces an exec() the test itself makes: the summary's "execsnoop" column.
EXECSNOOP_TESTS = ("tests/tools/test_execsnoop_cli.py",)

nox.options.sessions = [f"tests-{v}" for v in pythons.SUPPORTED] + ["summary"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = False


def _write(version: str, result: dict[str, object]) -> None:
    os.makedirs(RESULTS, exist_ok=True)
    result.update(version=version, finished=time.time())
    with open(os.path.join(RESULTS, f"{version}.json"), "w") as f:
        json.dump(result, f)


def counts(junit: str) -> dict[str, object]:
    """passed/failed/errors/skipped (and the execsnoop tests' outcome) of a junit XML."""
    tree = ET.parse(junit)
    out = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "seconds": 0.0}
    execsnoop = {"passed": 0, "not passed": 0}
    for suite in tree.iter("testsuite"):
        out["seconds"] = float(out["seconds"]) + float(suite.get("time") or 0)
    for case in tree.iter("testcase"):
        kinds = {child.tag for child in case}
        if "failure" in kinds:
            kind = "failed"
        elif "error" in kinds:
            kind = "errors"
        elif "skipped" in kinds:
            kind = "skipped"
        else:
            kind = "passed"
        out[kind] = int(out[kind]) + 1  # type: ignore[call-overload]
        module = (case.get("classname") or "").split(".")
        path = "/".join(module[:-1] if module and module[-1][:1].isupper() else module)
        if f"{path}.py" in EXECSNOOP_TESTS:
            execsnoop["passed" if kind == "passed" else "not passed"] += 1
    out["execsnoop"] = execsnoop
    return out


def _make_session(version: str) -> None:
    path, info = pythons.find(version)

    @nox.session(name=f"tests-{version}", python=path or False)
    def tests(session: nox.Session) -> None:
        if path is None:
            _write(version, {"status": "skipped", "why": info})
            session.skip(info)
        # as setup.sh: the tests build example plugin packages without build
        # isolation, and venvs from 3.12 on come without setuptools
        session.install("-q", "-U", "pip", "setuptools", "wheel")
        session.install("-q", "-e", ".[test]", "--config-settings", "editable_mode=strict")
        # setup.sh's reason: with PYTHONDONTWRITEBYTECODE set, every `coreframe`
        # the tests start would recompile the loader from source
        session.run("python", "-m", "compileall", "-q", "coreframe", "plugins", silent=True)
        junit = os.path.join(RESULTS, f"junit-{version}.xml")
        os.makedirs(RESULTS, exist_ok=True)
        if os.path.exists(junit):
            os.unlink(junit)
        env = {"COREFRAME_CACHE_DIR": pythons.cache_dir(version)}
        args = session.posargs or []
        try:
            ran = session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              f"--junitxml={junit}", *args, env=env)
        except BaseException:  # failed tests, or pytest could not start
            _record(session, version, info, path, args, junit)
            raise
        if ran is not None:  # None: nothing ran (--install-only)
            _record(session, version, info, path, args, junit)

    tests.__doc__ = f"The suite under Python {version}" + (f" ({path})" if path else
                                                             f": skipped, {info}")


def _record(session: nox.Session, version: str, info: str, path: str | None,
            args: list[str], junit: str) -> None:
    result: dict[str, object] = {"status": "ran", "python": info, "path": path, "args": args}
    if os.path.exists(junit):
        result.update(counts(junit))
    else:
        result["status"] = "no junit XML (pytest did not get to run)"
    _write(version, result)
    session.log(_line(version, result))


for _v in pythons.SUPPORTED:
    _make_session(_v)


def _line(version: str, r: dict[str, object]) -> str:
    if r.get("status") == "skipped":
        return f"{version:5}  skipped: {r.get('why')}"
    if "passed" not in r:
        return f"{version:5}  {r.get('status')}"
    ex = r.get("execsnoop") or {}
    assert isinstance(ex, dict)
    seen = ("-" if not (ex["passed"] or ex["not passed"]) else
            "yes" if not ex["not passed"] else f"NO ({ex['not passed']} not passed)")
    extra = f"  (pytest {' '.join(r['args'])})" if r.get("args") else ""  # type: ignore[arg-type]
    return (f"{version:5}  {str(r.get('python')):8} {r['passed']:5} passed  "
            f"{r['skipped']:4} skipped  {r['failed']:3} failed  {r['errors']:3} errors  "
            f"{float(r['seconds']):7.0f} s  execsnoop: {seen}{extra}")  # type: ignore[arg-type]


@nox.session(python=False)
def summary(session: nox.Session) -> None:
    """Counts per Python version from the tests-X.Y sessions (their last run)."""
    lines = ["Python test matrix (passed / skipped / failed per version):"]
    bad = []
    for v in pythons.SUPPORTED:
        try:
            with open(os.path.join(RESULTS, f"{v}.json")) as f:
                r = json.load(f)
        except FileNotFoundError:
            lines.append(f"{v:5}  not run (nox -s tests-{v})")
            continue
        age = time.time() - float(r.get("finished", 0))
        lines.append(_line(v, r) + (f"  [from a run {age / 3600:.1f} h ago]" if age > 3600
                                    else ""))
        if r.get("status") != "skipped" and (r.get("failed") or r.get("errors")
                                              or "passed" not in r):
            bad.append(v)
    text = "\n".join(lines)
    with open(os.path.join(RESULTS, "summary.txt"), "w") as f:
        f.write(text + "\n")
    print(text, flush=True)
    if bad:
        session.error(f"failures under Python {', '.join(bad)}")
