"""`coreframe serve` reads TOML with tomllib (3.11+) or tomli (3.9/3.10, extra 'serve')."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from coreframe.cli.serve import ConfigError, load_config

BLOCK = "import sys; sys.modules['tomllib'] = None; sys.modules['tomli'] = None\n"


def test_no_toml_reader_is_one_line_naming_the_package(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text("[tools.execsnoop]\n")
    code = BLOCK + (
        "from coreframe.cli.serve import main\n"
        f"sys.exit(main({str(cfg)!r}, check=True))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 2, r.stderr
    [line] = r.stderr.splitlines()
    assert line.startswith(f"coreframe: error: {cfg}: reading TOML needs the tomli package")
    assert "pip install 'coreframe[serve]'" in line


def test_bad_toml_names_the_line_once(tmp_path: Path) -> None:
    cfg = tmp_path / "agent.toml"
    cfg.write_text("[serve]\nlisten = \n")
    with pytest.raises(ConfigError) as exc:
        load_config(str(cfg))
    assert exc.value.where == f"{cfg}:2"
    assert "not valid TOML" in exc.value.message and "at line" not in exc.value.message
