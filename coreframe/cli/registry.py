"""Finding tools: stevedore over the ``coreframe.tools`` entry-point group.

A plugin whose import fails, or whose entry point is not a ``Tool`` subclass,
is reported as broken with its error; it never stops the others from listing
or running.

``coreframe run NAME`` needs one entry point, and importing stevedore (which
pulls in importlib.metadata, email and zipfile) costs more than loading and
attaching execsnoop. So :func:`find_tool` first reads the ``entry_points.txt``
files on ``sys.path`` directly, in the order importlib.metadata would, and
only falls back to stevedore when the name is not found there or its entry
point fails to load (stevedore then produces the listing or the error).
"""

from __future__ import annotations

import os
import sys

from ..errors import ToolError
from ..tool import Readiness, Tool

TYPE_CHECKING = False
if TYPE_CHECKING:
    import importlib.metadata
    from typing import Any

NAMESPACE = "coreframe.tools"


class ToolEntry:
    """One installed tool, loaded or broken."""

    def __init__(self, name: str, target: str, distribution: str = "", version: str = "",
                 cls: type[Tool] | None = None, error: str = "") -> None:
        self.name = name
        self.target = target
        self.distribution = distribution
        self.version = version
        self.cls = cls
        self.error = error

    def __repr__(self) -> str:
        state = "broken" if self.cls is None else "ok"
        return f"ToolEntry({self.name!r}, {self.target!r}, {state})"

    @property
    def summary(self) -> str:
        return self.cls.summary if self.cls else ""

    def readiness(self) -> Readiness:
        if self.cls is None:
            return Readiness(False, f"broken plugin: {self.error}")
        try:
            return self.cls.readiness()
        except Exception as exc:  # a plugin's own check must not break the listing
            return Readiness(False, f"readiness check failed: {exc}")


def reset_cache() -> None:
    """Forget stevedore's in-process entry-point cache (a plugin was just installed)."""
    from stevedore import _cache

    _cache._c._internal.clear()


def _distributions() -> dict[tuple[str, str], tuple[str, str]]:
    """Map (entry name, target) to (distribution name, version) from importlib.metadata."""
    import importlib.metadata

    found: dict[tuple[str, str], tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=NAMESPACE):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            found[(ep.name, ep.value)] = (dist.metadata["Name"] or "", dist.version or "")
    return found


def _load(names: list[str] | None) -> dict[str, ToolEntry]:
    """Load the named entry points (all when ``names`` is None) through stevedore."""
    from stevedore import ExtensionManager
    from stevedore.named import NamedExtensionManager

    failures: dict[str, str] = {}

    def on_failure(_manager: object, ep: importlib.metadata.EntryPoint, exc: BaseException) -> None:
        failures[ep.name] = f"{type(exc).__name__}: {exc}"

    manager: ExtensionManager[Any]
    if names is None:
        manager = ExtensionManager(NAMESPACE, invoke_on_load=False,
                                   on_load_failure_callback=on_failure)
    else:
        manager = NamedExtensionManager(NAMESPACE, names=names, invoke_on_load=False,
                                        on_load_failure_callback=on_failure,
                                        on_missing_entrypoints_callback=lambda _missing: None)
    loaded = {ext.name: ext for ext in manager.extensions}
    entries: dict[str, ToolEntry] = {}
    for ep in manager.list_entry_points():
        if names is not None and ep.name not in names:
            continue
        entry = ToolEntry(ep.name, ep.value)
        ext = loaded.get(ep.name)
        if ext is None:
            entry.error = failures.get(ep.name, "failed to load")
        elif not (isinstance(ext.plugin, type) and issubclass(ext.plugin, Tool)):
            entry.error = f"{ep.value} is not a coreframe.tool.Tool subclass"
        else:
            entry.cls = ext.plugin
        if ep.name not in entries or entries[ep.name].cls is None:
            entries[ep.name] = entry
    return entries


def discover() -> dict[str, ToolEntry]:
    """Every tool in the entry-point group, keyed by name, broken ones included."""
    entries = _load(None)
    dists = _distributions()
    for entry in entries.values():
        entry.distribution, entry.version = dists.get((entry.name, entry.target), ("", ""))
    return dict(sorted(entries.items()))


def get_tool(name: str, *, with_distribution: bool = False) -> ToolEntry:
    """The named tool, or ``ToolError`` saying it is unknown or broken.

    Only that tool's entry point is imported (``coreframe run`` start-up time);
    the distribution lookup, which reads every installed package's metadata, is
    done only when asked for.
    """
    entry = _load([name]).get(name)
    if entry is None:
        known = ", ".join(discover()) or "none installed"
        raise ToolError(f"unknown tool {name!r} (installed: {known})")
    if entry.cls is None:
        raise ToolError(f"tool {name!r} is broken: {entry.error}")
    if with_distribution:
        entry.distribution, entry.version = _distributions().get((entry.name, entry.target),
                                                                 ("", ""))
    return entry


def _dist_name(dirname: str) -> str:
    """The normalized distribution name of a ``NAME-VERSION.dist-info`` directory."""
    name = dirname.rpartition(".")[0].partition("-")[0]
    return name.lower().replace("_", "-").replace(".", "-")


def entry_point_targets(name: str, group: str = NAMESPACE) -> list[str]:
    """Targets (``module:attr``) of entry point ``name`` in ``group``, read from disk.

    Walks ``sys.path`` like importlib.metadata: the first distribution of a given
    name wins, ``.dist-info`` and ``.egg-info`` directories alike. Cheap enough
    for every start: one directory listing per path entry, one small file read
    per installed distribution that declares entry points.
    """
    seen: set[str] = set()
    targets: list[str] = []
    header = f"[{group}]"
    raw_header = header.encode()
    for base in sys.path:
        try:
            names = os.listdir(base or ".")
        except OSError:
            continue
        for entry in names:
            if not entry.endswith((".dist-info", ".egg-info")):
                continue
            dist = _dist_name(entry)
            if dist in seen:
                continue
            seen.add(dist)
            try:  # bytes first: most distributions declare no coreframe tools
                with open(os.path.join(base or ".", entry, "entry_points.txt"), "rb") as f:
                    raw = f.read()
            except OSError:
                continue
            if raw_header not in raw:
                continue
            text = raw.decode("utf-8", "replace")
            section = ""
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("["):
                    section = line
                elif section == header and "=" in line:
                    key, _, value = line.partition("=")
                    if key.strip() == name:
                        targets.append(value.partition("[")[0].strip())
    return targets


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module_name = module_name.strip()
    __import__(module_name)  # importlib.import_module would import importlib (+warnings)
    obj: Any = sys.modules[module_name]
    for part in attr.strip().split(".") if attr.strip() else ():
        obj = getattr(obj, part)
    return obj


def find_tool_direct(name: str) -> ToolEntry | None:
    """The named tool from its entry point read off disk, or None when that fails.

    None covers an unknown name, an import error and a non-Tool target alike:
    the caller then asks stevedore, whose answer carries the listing or error.
    """
    for target in entry_point_targets(name):
        try:
            plugin = _import_target(target)
        except Exception:  # noqa: BLE001 - stevedore reports the failure properly
            return None
        if isinstance(plugin, type) and issubclass(plugin, Tool):
            return ToolEntry(name, target, cls=plugin)
        return None
    return None


def find_tool(name: str) -> ToolEntry:
    """The named tool for ``coreframe run``: entry points read directly, stevedore as fallback.

    Both routes honour the same entry-point group; the direct one only skips the
    cost of importing stevedore and importlib.metadata when the plugin loads.
    """
    return find_tool_direct(name) or get_tool(name)
