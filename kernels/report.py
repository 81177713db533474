"""Reports of the kernel matrix (kernels/test-kernels.sh), host and guest side.

    report.py features               this kernel's coreframe.features.all_features(), flat JSON
    report.py diff NAME=FILE ...     the features whose value differs between those dumps
    report.py junit FILE             one line: pytest counts, and which tests took the
                                     FeatureMissing path (tests/kernel records it)
    report.py oracles FILE [--guest] what the oracles compared (CO-RE relocations and
                                     kinds, xlated programs, tools against
                                     libbpf-tools/bpftrace) and every skip with its
                                     reason; --guest exits 1 if the comparisons a guest
                                     must make are not all there
    report.py paths FILE             the attach paths (link kinds) and tools that passed
                                     and the fallbacks coreframe took (tests/kernel
                                     records them: attach, tool, fallback)

test-kernels.sh dumps the host's and every guest's feature table and prints the
diff after the per-kernel summary, so a feature that differs is visible.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from typing import Any


def flat() -> dict[str, Any]:
    """``group.name -> value`` for every probe coreframe.features knows."""
    from coreframe import features

    out: dict[str, Any] = {"kernel": os.uname().release}
    for group, values in features.all_features().items():
        if isinstance(values, dict):
            for name, value in values.items():
                out[f"{group}.{name}"] = value
        else:
            out[group] = values
    return out


def diff(named: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Rows of a table of the keys whose values are not all equal."""
    keys = sorted({k for _, table in named for k in table} - {"kernel"})
    width = max([len(k) for k in keys] + [7])
    cols = [max(len(name), 5) for name, _ in named]
    rows = [f"{'feature':<{width}}  " + "  ".join(f"{n:<{c}}" for (n, _), c in
                                                   zip(named, cols))]
    for key in keys:
        values = [str(table.get(key, "-")) for _, table in named]
        if len(set(values)) > 1:
            rows.append(f"{key:<{width}}  " + "  ".join(f"{v:<{c}}" for v, c in
                                                        zip(values, cols)))
    return rows if len(rows) > 1 else ["(no feature differs)"]


def junit(path: str) -> str:
    """``N passed, ...`` from a junit XML report, plus the features found missing."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return "no junit report"
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return "no junit report"
    n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    line = (f"{passed} passed, {n['failures']} failed, {n['errors']} errors, "
            f"{n['skipped']} skipped")
    missing = Counter(p.get("value") for p in suite.iter("property")
                      if p.get("name") == "feature_missing")
    lacking = Counter(p.get("value") for p in suite.iter("property")
                      if p.get("name") == "feature_lacking_expected")
    if missing:
        line += "; FeatureMissing path: " + ", ".join(f"{k} x{v}" for k, v in
                                                      sorted(missing.items()))
    elif passed and not lacking:
        line += "; every feature exercised"
    if lacking:
        line += ("; lacking, as listed for this series (tests took the missing-feature "
                 "path): " + ", ".join(f"{k} x{v}" for k, v in sorted(lacking.items())))
    return line


def _passed(case: ET.Element) -> bool:
    return all(case.find(tag) is None for tag in ("failure", "error", "skipped"))


def paths(path: str) -> list[str]:
    """Lines: the link kinds made by passing tests (with how many tests made each), the
    tools that passed and how they attached, and every fallback taken (with why)."""
    suite = _suite(path)
    if suite is None:
        return ["no junit report"]
    kinds: Counter[str] = Counter()
    tools: dict[str, list[str]] = {}
    fallbacks: Counter[str] = Counter()
    for case in suite.iter("testcase"):
        for f in _props(case, "fallback"):
            fallbacks[f] += 1
        if not _passed(case):
            continue
        for k in _props(case, "attach"):
            kinds[k] += 1
        for t in _props(case, "tool"):
            name, _, how = t.partition(" ")
            how = how.strip()
            if how.startswith("(") and how.endswith(")"):
                how = how[1:-1]
            variants = tools.setdefault(name, [])
            if how and how not in variants:
                variants.append(how)
    lines = ["attach paths passed (tests): " + (", ".join(
        f"{k} x{n}" for k, n in sorted(kinds.items())) or "-")]
    lines.append("tools passed: " + (", ".join(
        f"{name} [{'; '.join(v)}]" if v else name for name, v in sorted(tools.items()))
        or "-"))
    if fallbacks:
        lines.append("fallbacks taken:")
        lines += [f"  {f} (in {n} tests)" for f, n in sorted(fallbacks.items())]
    else:
        lines.append("fallbacks taken: none")
    return lines


def _suite(path: str) -> ET.Element | None:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return None
    return root if root.tag == "testsuite" else root.find("testsuite")


def _props(case: ET.Element, name: str) -> list[str]:
    return [p.get("value", "") for p in case.iter("property") if p.get("name") == name]


def oracles(path: str, guest: bool) -> tuple[list[str], list[str]]:
    """(lines describing what the oracles compared and what was skipped, problems).

    The tests record ``core_relos``/``core_kinds`` (tests/kernel/test_kern_core.py)
    and ``xlated`` (tests/kernel/test_kern_xlated.py) per comparison made. A guest
    must compare relocations of every kind clang emits and at least one trampoline
    and one kprobe program: anything less is a problem, whatever pytest said.
    """
    from coreframe.btf.relo import BPF_CORE_TYPE_MATCHES, KIND_NAMES
    from coreframe.object.sections import TRAMPOLINE_ATTACH_KINDS

    suite = _suite(path)
    if suite is None:
        return ["no junit report"], ["no junit report"]
    relos = objects = unsatisfied = 0
    kinds: set[str] = set()
    xlated: list[tuple[str, str, str]] = []
    tools: list[str] = []
    skips: dict[str, list[str]] = {}
    for case in suite.iter("testcase"):
        counts = _props(case, "core_relos")
        if counts:
            objects += 1
            relos += sum(int(c) for c in counts)
        unsatisfied += sum(int(c) for c in _props(case, "core_unsatisfied"))
        for k in _props(case, "core_kinds"):
            kinds.update(filter(None, k.split(",")))
        for x in _props(case, "xlated"):
            fields = x.split()
            xlated.append((fields + ["?", "?"])[:3] if len(fields) != 3 else
                          (fields[0], fields[1], fields[2]))
        tools += _props(case, "tool_oracle")
        skipped = case.find("skipped")
        if skipped is not None:
            reason = (skipped.get("message") or skipped.text or "?").strip()
            reason = reason.removeprefix("Skipped: ")
            test = f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}"
            skips.setdefault(reason, []).append(test)
    emitted = {KIND_NAMES[k] for k in KIND_NAMES if k != BPF_CORE_TYPE_MATCHES}
    lines = [f"CO-RE vs libbpf: {relos} relocations in {objects} objects ({unsatisfied} "
             f"unsatisfiable on this kernel, handled as libbpf does); kinds {len(kinds & emitted)}/"
             f"{len(emitted)}: {', '.join(sorted(kinds)) or '-'}"]
    if emitted - kinds:
        lines.append(f"  kinds not compared: {', '.join(sorted(emitted - kinds))}")
    lines.append(f"xlated vs libbpf: {len(xlated)} fentry/fexit/kprobe programs identical"
                 + (":" if xlated else ""))
    lines += [f"  {prog} ({kind}, {n} insns)" for prog, kind, n in xlated]
    if tools:       # tests/kernel/test_kern_oracle_tools.py
        lines.append("tools vs libbpf-tools/bpftrace:")
        lines += [f"  {t}" for t in tools]
    n_skips = sum(map(len, skips.values()))
    lines.append(f"skipped: {n_skips}" + (", by reason:" if skips else ""))
    for reason, tests in sorted(skips.items()):
        lines.append(f"  {reason}: {', '.join(tests)}")
    problems = []
    if guest:
        if not relos:
            problems.append("no CO-RE relocation was compared with libbpf")
        if emitted - kinds:
            problems.append(f"CO-RE kinds not compared: {', '.join(sorted(emitted - kinds))}")
        xkinds = {kind for _, kind, _ in xlated}
        if not xkinds & TRAMPOLINE_ATTACH_KINDS:
            problems.append("no fentry/fexit program was compared with libbpf")
        if "kprobe" not in xkinds:
            problems.append("no kprobe program was compared with libbpf")
    return lines, problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["junit"] and len(argv) == 2:
        print(junit(argv[1]))
        return 0
    if argv[:1] == ["oracles"] and len(argv) in (2, 3) and argv[2:] in ([], ["--guest"]):
        lines, problems = oracles(argv[1], guest=argv[2:] == ["--guest"])
        print("\n".join(lines))
        for p in problems:
            print(f"PROBLEM: {p}")
        return 1 if problems else 0
    if argv[:1] == ["paths"] and len(argv) == 2:
        print("\n".join(paths(argv[1])))
        return 0
    if argv[:1] == ["features"]:
        json.dump(flat(), sys.stdout, indent=1, sort_keys=True, default=str)
        print()
        return 0
    if argv[:1] == ["diff"] and len(argv) > 1:
        named = []
        for arg in argv[1:]:
            name, _, path = arg.partition("=")
            try:
                with open(path) as f:
                    named.append((name, json.load(f)))
            except (OSError, ValueError) as e:
                print(f"report.py: skipping {name}: {e}", file=sys.stderr)
        print("\n".join(diff(named)))
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
