"""The Python interpreters on this machine that coreframe supports (3.9 to 3.13).

    python3 tools/pythons.py          # VERSION PATH, or VERSION - why not, per version
    .venv/bin/python tools/pythons.py venv 3.9   # matrix venv's python, made if missing

One answer for the test matrix (noxfile.py), the start-up bench
(bench/pythons_bench.py) and the 5.10 guest of make test-kernels, which runs under
the matrix's 3.9 venv: which interpreters there are, and where each version's venv
and cache directory are. Where to look, in order: pyenv's builds
(``$PYENV_ROOT/versions/X.Y.*``, newest patch first), then ``pythonX.Y`` on PATH
(pyenv's shims skipped: a shim of a version that is not selected fails instead of
running), then /usr/bin and /usr/local/bin. Each candidate is run once to check it
is that version and can make a venv (Debian splits ``venv`` into python3-venv).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

SUPPORTED = ("3.9", "3.10", "3.11", "3.12", "3.13")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYSTEM_DIRS = ("/usr/bin", "/usr/local/bin")

_PROBE = ("import sys, ensurepip, venv; "
          "print('%d.%d' % sys.version_info[:2], sys.version.split()[0])")


def _pyenv_root() -> str:
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def _patch_key(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", name))


def candidates(version: str) -> list[str]:
    """Paths that may be Python ``version`` (not yet checked), best first."""
    out = []
    versions = os.path.join(_pyenv_root(), "versions")
    if os.path.isdir(versions):
        builds = [d for d in os.listdir(versions)
                  if re.fullmatch(re.escape(version) + r"\.\d+", d)]
        for d in sorted(builds, key=_patch_key, reverse=True):
            out.append(os.path.join(versions, d, "bin", f"python{version}"))
    shims = os.path.join(_pyenv_root(), "shims")
    path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep)
                           if p and os.path.realpath(p) != os.path.realpath(shims)
                           and "pyenv" not in p.split(os.sep)[-2:])
    found = shutil.which(f"python{version}", path=path)
    if found:
        out.append(found)
    out += [os.path.join(d, f"python{version}") for d in SYSTEM_DIRS]
    seen: set[str] = set()
    return [p for p in out if os.path.isfile(p) and not (p in seen or seen.add(p))]


def find(version: str) -> tuple[str | None, str]:
    """(path, full version) of a working Python ``version``, or (None, why not)."""
    tried = []
    for path in candidates(version):
        try:
            proc = subprocess.run([path, "-c", _PROBE], capture_output=True, text=True,
                                  timeout=30)
        except OSError as exc:
            tried.append(f"{path}: {exc.strerror}")
            continue
        words = proc.stdout.split()
        if proc.returncode == 0 and words[:1] == [version]:
            return path, words[1]
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        tried.append(f"{path}: {last if proc.returncode else 'is ' + proc.stdout.strip()}")
    if not tried:
        return None, (f"no Python {version} here (looked in {_pyenv_root()}/versions, "
                      f"for python{version} on PATH, in {', '.join(SYSTEM_DIRS) or '-'})")
    return None, f"no working Python {version}: " + "; ".join(tried)


def venv_dir(version: str) -> str:
    """The venv of the matrix's session ``tests-X.Y`` (nox names it ``.nox/tests-X-Y``)."""
    return os.path.join(ROOT, ".nox", f"tests-{version.replace('.', '-')}")


def cache_dir(version: str) -> str:
    """The user cache directory for ``version``: one per interpreter, outside the
    repository (``$COREFRAME_CACHE_DIR-pyX.Y``). The caches are checked when read, but
    sharing them would only make each interpreter rebuild the other's."""
    base = os.environ.get("COREFRAME_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "coreframe")
    return f"{base.rstrip('/')}-py{version}"


def ensure_venv(version: str) -> tuple[str | None, str]:
    """(the matrix venv's python, "") for ``version``, made with ``nox --install-only``
    when missing (coreframe installed as the session installs it); (None, why not)."""
    if version not in SUPPORTED:
        return None, f"{version} is not a supported version ({', '.join(SUPPORTED)})"
    py = os.path.join(venv_dir(version), "bin", "python")
    if os.path.exists(os.path.join(venv_dir(version), "bin", "coreframe")):
        return py, ""
    path, info = find(version)
    if path is None:
        return None, info
    nox = os.path.join(os.path.dirname(sys.executable), "nox")
    if not os.path.exists(nox):
        return None, f"no {venv_dir(version)} and no nox to make it (./setup.sh --dev)"
    proc = subprocess.run([nox, "--no-color", "--install-only", "-s", f"tests-{version}"],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(py):
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"nox --install-only -s tests-{version} failed: {tail}"
    return py, ""


def main() -> int:
    if sys.argv[1:2] == ["venv"] and len(sys.argv) == 3:
        py, why = ensure_venv(sys.argv[2])
        print(py or why)
        return 0 if py else 1
    for v in SUPPORTED:
        path, info = find(v)
        print(f"{v:5} {path} ({info})" if path else f"{v:5} - {info}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
