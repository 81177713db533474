"""Finding tools: stevedore over the ``coreframe.tools`` entry-point group.

A plugin whose import fails, or whose entry point is not a ``Tool`` subclass,
is reported as broken with its error; it never stops the others from listing
or running.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from typing import Any

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
