"""Finding tools: stevedore over the ``coreframe.tools`` entry-point group.

A plugin whose import fails, or whose entry point is not a ``Tool`` subclass,
is reported as broken with its error; it never stops the others from listing
or running.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass

from .errors import ToolError
from .tool import Readiness, Tool

NAMESPACE = "coreframe.tools"


@dataclass
class ToolEntry:
    """One installed tool, loaded or broken."""

    name: str
    target: str
    distribution: str = ""
    version: str = ""
    cls: type[Tool] | None = None
    error: str = ""

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
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for ep in importlib.metadata.entry_points(group=NAMESPACE):
        dist = getattr(ep, "dist", None)
        if dist is not None:
            found[(ep.name, ep.value)] = (dist.metadata["Name"] or "", dist.version or "")
    return found


def discover() -> dict[str, ToolEntry]:
    """Every tool in the entry-point group, keyed by name, broken ones included."""
    from stevedore import ExtensionManager

    failures: dict[str, str] = {}

    def on_failure(_manager: object, ep: importlib.metadata.EntryPoint, exc: BaseException) -> None:
        failures[ep.name] = f"{type(exc).__name__}: {exc}"

    manager = ExtensionManager(
        namespace=NAMESPACE,
        invoke_on_load=False,
        on_load_failure_callback=on_failure,
    )
    dists = _distributions()
    entries: dict[str, ToolEntry] = {}
    loaded = {ext.name: ext for ext in manager.extensions}
    for ep in manager.list_entry_points():
        dist, version = dists.get((ep.name, ep.value), ("", ""))
        entry = ToolEntry(ep.name, ep.value, dist, version)
        ext = loaded.get(ep.name)
        if ext is None:
            entry.error = failures.get(ep.name, "failed to load")
        elif not (isinstance(ext.plugin, type) and issubclass(ext.plugin, Tool)):
            entry.error = f"{ep.value} is not a coreframe.tool.Tool subclass"
        else:
            entry.cls = ext.plugin
        if ep.name not in entries or entries[ep.name].cls is None:
            entries[ep.name] = entry
    return dict(sorted(entries.items()))


def get_tool(name: str) -> ToolEntry:
    """The named tool, or ``ToolError`` saying it is unknown or broken."""
    entries = discover()
    entry = entries.get(name)
    if entry is None:
        known = ", ".join(entries) or "none installed"
        raise ToolError(f"unknown tool {name!r} (installed: {known})")
    if entry.cls is None:
        raise ToolError(f"tool {name!r} is broken: {entry.error}")
    return entry
