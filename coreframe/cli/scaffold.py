"""``coreframe new NAME [DIR]``: write a complete, buildable plugin package.

The package holds a BPF C program (a tracepoint handler sending one ring-buffer
record per event, with a ``const volatile`` filter set from Python before load), a
Makefile that builds it with coreframe's compile flags (``coreframe cflags``) and
generates ``vmlinux.h`` from the running kernel's BTF with ``coreframe btf dump
--format c``, the tool class on the output layer, pyproject.toml declaring the
``coreframe.tools`` entry point, a test and a README. ``make && pip install . &&
coreframe run NAME`` works as written.

The steps, as a pipeline: :func:`check_name` → :func:`plan` (every file's path and
text) → :func:`write` (refuses to overwrite anything).
"""

from __future__ import annotations

import keyword
import os

from ..errors import Error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence


class ScaffoldError(Error):
    """The name or directory given to ``coreframe new`` cannot be used (a usage error)."""


# The tracepoint the template traces: every exec() of a new program, so a test can
# trigger it by running one. Its raw layout (struct trace_event_raw_sched_process_exec)
# comes from vmlinux.h and is relocated by CO-RE at load.
TRACEPOINT = "sched/sched_process_exec"

_BPF_C = r"""// SPDX-License-Identifier: GPL-2.0
/* @NAME@: one ring-buffer record per exec() of a new program.
 *
 * Written by `coreframe new`; built by the Makefile (`make`) into
 * @PKG@/objects/@NAME@.bpf.o with coreframe's compile flags.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define TASK_COMM_LEN 16
#define FILENAME_LEN 256

/* What user space reads, decoded by its BTF name ("struct event"). */
struct event {
	__u64 ts;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 pid;
	__u32 ppid;
	__u32 uid;
	char comm[TASK_COMM_LEN];
	char filename[FILENAME_LEN];
};

/* A type only local variables use is not in the object's BTF: this global puts
 * struct event there, so Python can ask for it by name. */
const struct event *unused_event __attribute__((unused));

/* Set from Python before load (spec.rodata.targ_pid): the verifier sees the
 * constant, so with 0 the filter costs nothing. */
const volatile __u32 targ_pid = 0;

/* Records the ring buffer had no room for: reported by the tool, never silent. */
__u64 dropped = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tracepoint/@TRACEPOINT@")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct task_struct *task;
	struct event *e;
	unsigned int off;

	if (targ_pid && pid != targ_pid)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	task = (struct task_struct *)bpf_get_current_task();
	e->ts = bpf_ktime_get_ns();
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* __data_loc: the low 16 bits are the string's offset in the record */
	off = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""

_TOOL_PY = '''"""@NAME@: trace exec() of new programs (written by `coreframe new`; edit freely)."""

from __future__ import annotations

from coreframe.options import IntRange, Option
from coreframe.output import Col
from coreframe.tool import RunContext, Tool


class @CLASS@(Tool):
    """One line per exec(): pid, parent, uid, command and the program's path."""

    name = "@NAME@"
    summary = "Trace exec() of new programs"
    object_file = "@NAME@.bpf.o"
    requires = ("bpf", "btf", "ringbuf", "tracepoint:@TRACEPOINT@")
    # text columns (libbpf-tools style), --json keys, and -T/-t from the record's ts
    columns = (Col("PID", "pid", -7), Col("PPID", "ppid", -7), Col("UID", "uid", -6),
               Col("COMM", "comm", -16), Col("FILENAME", "filename"))
    time_field = "ts"
    time_columns = True

    @classmethod
    def params(cls) -> list[Option]:
        return [Option("-p", "--pid", type=IntRange(min=1), default=None,
                       help="Only this process (filtered in the kernel).")]

    def run(self, ctx: RunContext) -> int:
        import coreframe  # imported here: `coreframe list` imports this module

        spec = coreframe.open(self.object_path())
        if self.options["pid"] is not None:
            spec.rodata.targ_pid = self.options["pid"]
        with spec.load() as obj:
            obj.attach()
            ctx.status("Tracing exec()... Ctrl-C to end.")
            for event in ctx.records(obj.maps.events, "struct event"):
                ctx.emit(event)
            dropped = obj.bss.dropped
            ctx.lost(dropped, message=f"Lost {dropped} events (ring buffer full).")
        return 0
'''

_INIT_PY = '''"""coreframe-@NAME@: a coreframe tool package (see README.md)."""
'''

_PYPROJECT = '''[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "@DIST@"
version = "0.1.0"
description = "@NAME@: a coreframe eBPF tool"
readme = "README.md"
requires-python = ">=3.9"
dependencies = ["coreframe>=0.1,<0.2"]

# The whole plugin mechanism: `coreframe run @NAME@` finds the class through this.
[project.entry-points."coreframe.tools"]
@NAME@ = "@PKG@.tool:@CLASS@"

[tool.setuptools]
packages = ["@PKG@", "@PKG@.objects"]

# The prebuilt BPF object ships inside the package (run `make` before building it).
[tool.setuptools.package-data]
"@PKG@.objects" = ["*.bpf.o"]
'''

_MAKEFILE = '''# Build @NAME@'s BPF object with coreframe's compile flags, then `pip install .`.
#
# vmlinux.h (every kernel type, for CO-RE) is generated from the running kernel's BTF
# by coreframe itself; <bpf/*.h> come from libbpf-dev at build time only.

COREFRAME ?= coreframe
CLANG ?= clang
LLVM_STRIP ?= llvm-strip
VMLINUX_BTF ?= /sys/kernel/btf/vmlinux

BPF_CFLAGS := $(shell $(COREFRAME) cflags --clang $(CLANG))
OBJ := @PKG@/objects/@NAME@.bpf.o

.PHONY: all clean test

all: $(OBJ)

vmlinux.h:
\t$(COREFRAME) btf dump $(VMLINUX_BTF) --format c > $@.tmp
\tmv -f $@.tmp $@

# compile, drop DWARF (BTF stays: CO-RE needs it), then move into place
$(OBJ): bpf/@NAME@.bpf.c vmlinux.h
\t@mkdir -p $(@D)
\t$(CLANG) $(BPF_CFLAGS) -I. -c $< -o $@.tmp
\t$(LLVM_STRIP) -g $@.tmp
\tmv -f $@.tmp $@

test: $(OBJ)
\tpython3 -m pytest -q tests

clean:
\trm -f $(OBJ) vmlinux.h
'''

_TEST_PY = '''"""@NAME@ against the real kernel: run it, exec() a program, see that exec()."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

COREFRAME = shutil.which("coreframe") or os.path.join(os.path.dirname(sys.executable),
                                                      "coreframe")


@pytest.mark.skipif(os.geteuid() != 0, reason="loading BPF programs needs root")
def test_sees_its_own_exec() -> None:
    tool = subprocess.Popen([COREFRAME, "run", "@NAME@", "--json", "--duration", "30"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # attached once the tool says so on stderr
        assert "Tracing" in tool.stderr.readline()
        child = subprocess.run(["/bin/sh", "-c", "exec /bin/true @NAME@-marker"], check=True)
        assert child.returncode == 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = tool.stdout.readline()
            assert line, "tool exited before the exec() showed up"
            event = json.loads(line)
            if event.get("filename") == "/bin/true":
                assert event["comm"] == "true" and event["pid"] > 0
                return
        pytest.fail("the exec() of /bin/true never showed up")
    finally:
        tool.terminate()
        tool.wait(30)
'''

_README = '''# @DIST@

`@NAME@`, a [coreframe](https://pypi.org/project/coreframe/) tool: one line per exec() of a
new program (pid, parent pid, uid, command, path), traced on the `@TRACEPOINT@`
tracepoint and read from a BPF ring buffer.

## Build, install, run

```sh
make                      # vmlinux.h from this kernel's BTF, then @PKG@/objects/@NAME@.bpf.o
pip install .             # into the environment coreframe is installed in
sudo coreframe run @NAME@     # add -T/-t for time columns, --json for JSON lines, -p PID
```

Building needs `clang`, `llvm` (llvm-strip) and `libbpf-dev` (the `<bpf/*.h>` headers);
running needs none of them: the object is relocated to the running kernel (CO-RE) when
it loads. `make test` runs `tests/` (as root) against the real kernel.

## Layout

| file | what |
|---|---|
| `bpf/@NAME@.bpf.c` | the BPF program: tracepoint handler, `struct event`, `targ_pid` filter |
| `@PKG@/tool.py` | the tool: options, columns, load/attach, the record loop |
| `Makefile` | builds the object with `coreframe cflags`; generates `vmlinux.h` |
| `pyproject.toml` | the `coreframe.tools` entry point and the object as package data |
| `tests/test_@NAME@.py` | runs the tool and checks it sees an exec() it caused |
'''

_GITIGNORE = """vmlinux.h
*.tmp
build/
*.egg-info/
"""


def check_name(name: str) -> str:
    """The tool name, or ScaffoldError saying what a name may be."""
    ok = bool(name) and name.isascii() and name[0].isalpha() and all(
        c.isalnum() or c == "_" for c in name) and name == name.lower()
    if not ok or keyword.iskeyword(name) or len(name) > 40:
        raise ScaffoldError(f"tool name {name!r}: use lower-case letters, digits and '_', "
                            "starting with a letter (e.g. opensnoop)")
    return name


def plan(name: str) -> list[tuple[str, str]]:
    """Every file of the package for tool ``name``: (path relative to its root, text)."""
    check_name(name)
    pkg = f"coreframe_{name}"
    subst = {
        "@NAME@": name,
        "@PKG@": pkg,
        "@DIST@": f"coreframe-{name.replace('_', '-')}",
        "@CLASS@": "".join(p.capitalize() for p in name.split("_") if p) + "Tool",
        "@TRACEPOINT@": TRACEPOINT,
    }

    def fill(text: str) -> str:
        for key, value in subst.items():
            text = text.replace(key, value)
        return text

    return [
        ("pyproject.toml", fill(_PYPROJECT)),
        ("Makefile", fill(_MAKEFILE).replace("\\t", "\t")),
        ("README.md", fill(_README)),
        (".gitignore", _GITIGNORE),
        (f"bpf/{name}.bpf.c", fill(_BPF_C)),
        (f"{pkg}/__init__.py", fill(_INIT_PY)),
        (f"{pkg}/tool.py", fill(_TOOL_PY)),
        (f"{pkg}/objects/.gitkeep", ""),
        (f"tests/test_{name}.py", fill(_TEST_PY)),
    ]


def write(root: str, files: Sequence[tuple[str, str]]) -> list[str]:
    """Write ``files`` under ``root`` (created; must be absent or empty); return the paths."""
    if os.path.exists(root) and (not os.path.isdir(root) or os.listdir(root)):
        raise ScaffoldError(f"{root}: exists and is not an empty directory; "
                            "give a new DIR (coreframe new NAME DIR)")
    written = []
    for rel, text in files:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:
            f.write(text)
        written.append(path)
    return written


def new_package(name: str, directory: str | None = None) -> tuple[str, list[str]]:
    """``coreframe new``: the package's root and the files written there."""
    files = plan(name)
    root = directory or f"coreframe-{name.replace('_', '-')}"
    return root, write(root, files)
