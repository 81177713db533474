"""Reports of the kernel matrix (kernels/test-kernels.sh), host and guest side.

    report.py features               this kernel's coreframe.features.all_features(), flat JSON
    report.py diff NAME=FILE ...     the features whose value differs between those dumps
    report.py junit FILE             one line: pytest counts, and which tests took the
                                     FeatureMissing path (tests/kernel records it)

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
                                                   zip(named, cols, strict=True))]
    for key in keys:
        values = [str(table.get(key, "-")) for _, table in named]
        if len(set(values)) > 1:
            rows.append(f"{key:<{width}}  " + "  ".join(f"{v:<{c}}" for v, c in
                                                        zip(values, cols, strict=True)))
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
    if missing:
        line += "; FeatureMissing path: " + ", ".join(f"{k} x{v}" for k, v in
                                                      sorted(missing.items()))
    elif passed:
        line += "; every feature exercised"
    return line


def main(argv: list[str]) -> int:
    if argv[:1] == ["junit"] and len(argv) == 2:
        print(junit(argv[1]))
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
