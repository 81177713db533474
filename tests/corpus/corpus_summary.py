"""The corpus summary: objects counted by what was compared with libbpf, not by what was found.

tests/corpus/conftest.py prints it at the end of a run from corpus_oracle.OUTCOMES.
"""

from __future__ import annotations

import re
from pathlib import Path


def short_reason(outcome: str, detail: str) -> str:
    """``EPERM: kernel feature missing: BPF trampolines`` from check_program's skip text."""
    if outcome != "skipped":
        return outcome
    errno_name = re.search(r"libbpf cannot load it here \((\w+)\)", detail)
    ours = detail.partition("; coreframe: ")[2]
    ours = re.sub(r"^\w+: ", "", ours).split(" (")[0]
    return f"{errno_name[1] if errno_name else '?'}: {ours[:140]}"


def corpus_summary(outcomes: dict[str, dict[str, tuple[str, str]]], cache: Path) -> list[str]:
    """Lines counting, per corpus (libbpf-tools, variants), the objects that had at
    least one program compared with libbpf and the ones that had none, with why."""
    groups: dict[str, dict[str, dict[str, tuple[str, str]]]] = {}
    for path, progs in outcomes.items():
        try:
            rel = Path(path).relative_to(cache)
            group, name = rel.parts[0], str(Path(*rel.parts[1:]))
        except ValueError:
            group, name = "other", path
        groups.setdefault(group, {})[name.removesuffix(".bpf.o")] = progs
    lines = []
    for group, objs in sorted(groups.items()):
        def count(progs: dict[str, tuple[str, str]], outcome: str) -> int:
            return sum(o == outcome for o, _ in progs.values())

        covered = [n for n, progs in objs.items() if count(progs, "compared")]
        progs_compared = sum(count(progs, "compared") for progs in objs.values())
        progs_total = sum(len(progs) for progs in objs.values())
        lines.append(
            f"corpus {group}: {len(objs)} objects checked, {len(covered)} with programs "
            f"compared with libbpf ({progs_compared} of {progs_total} programs), "
            f"{len(objs) - len(covered)} with none compared")
        for name, progs in sorted(objs.items()):
            if name in covered:
                continue
            why = sorted({short_reason(o, d) for o, d in progs.values()})
            lines.append(f"  {name} ({len(progs)} program{'s' * (len(progs) != 1)}): "
                         f"{'; '.join(why)}")
    return lines
