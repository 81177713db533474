"""docs/deploy.md: the systemd unit verifies, the Kubernetes manifest fits the API schema,
and the agent runs with exactly the capabilities both grant."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from servekit import free_port, http_get, wait_for, write_config
from tool_proc import COREFRAME, ToolProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC.read_text(), re.S)


def _unit() -> str:
    [unit] = _blocks("ini")
    return unit


def _unit_caps() -> set[str]:
    [line] = [x for x in _unit().splitlines() if x.startswith("CapabilityBoundingSet=")]
    return set(line.split("=", 1)[1].split())


def _manifests() -> list[dict]:
    yaml = pytest.importorskip("yaml")
    [text] = _blocks("yaml")
    return [d for d in yaml.safe_load_all(text) if d]


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = _unit().replace("/opt/coreframe/bin/coreframe", COREFRAME)
    path = tmp_path / "coreframe.service"
    path.write_text(unit)
    proc = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    mine = [x for x in proc.stderr.splitlines() if "coreframe.service" in x]
    assert mine == [], mine


def test_manifest_fits_the_kubernetes_schema() -> None:
    kv = pytest.importorskip("kubernetes_validate")
    docs = _manifests()
    assert [d["kind"] for d in docs] == ["ConfigMap", "DaemonSet"]
    for doc in docs:
        # strict: unknown fields are errors too
        kv.validate(doc, kv.latest_version(), strict=True)
    ds = docs[1]["spec"]["template"]["spec"]
    assert ds["hostPID"] is True
    [agent] = ds["containers"]
    caps = agent["securityContext"]["capabilities"]
    assert caps["drop"] == ["ALL"]
    assert {f"CAP_{c}" for c in caps["add"]} == _unit_caps()
    mounts = {m["mountPath"] for m in agent["volumeMounts"]}
    assert {"/sys/kernel/tracing", "/sys/fs/bpf"} <= mounts
    # the config it ships is one `coreframe serve --check` accepts
    cfg = docs[0]["data"]["agent.toml"]
    assert 'listen = "0.0.0.0:9477"' in cfg


def test_manifest_config_checks(tmp_path: Path) -> None:
    cfg = write_config(tmp_path / "agent.toml", _manifests()[0]["data"]["agent.toml"])
    proc = subprocess.run([COREFRAME, "serve", "--check", str(cfg)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.usefixtures("need_root")
def test_agent_runs_with_only_the_units_capabilities(tmp_path: Path) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    port = free_port()
    cfg = write_config(tmp_path / "agent.toml", f"""
[serve]
listen = "127.0.0.1:{port}"
events = "none"
[tools.execsnoop]
exits = true
[tools.readhist]
per_comm = true
""")
    caps = ",".join("+" + c.removeprefix("CAP_").lower() for c in sorted(_unit_caps()))
    argv = [setpriv, "--inh-caps=-all", f"--bounding-set=-all,{caps}", COREFRAME, "serve",
            str(cfg)]
    with ToolProcess([], argv=argv, ready="execsnoop: Tracing") as proc:
        assert wait_for(lambda: http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200,
                        timeout=30), proc.stderr
        assert proc.stop(signal.SIGTERM) == 0, proc.stderr
    assert not [x for x in proc.stderr if "failed" in x], proc.stderr
