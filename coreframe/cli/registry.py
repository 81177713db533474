"""Finding tools: stevedore over the ``coreframe.tools`` entry-point group.

A plugin whose import fails, or whose entry point is not a ``Tool`` subclass,
is reported as broken with its error; it never stops the others from listing
or running.

``coreframe run NAME`` needs one entry point, and importing stevedore (which
pulls in importlib.metadata, email and zipfile) costs more than loading and
attaching execsnoop. So :func:`find_tool` first reads the ``entry_points.txt``
files on ``sys.path`` directly, in the order importlib.metadata would, and
only falls back to stevedore when the name is not found there or its entry
point fails to load (stevedore then produces the listing or the error). That
walk reads a file per installed distribution; its result is cached until a
``sys.path`` directory changes (:func:`_cached_group`).

A tool name claimed by two distributions is never resolved silently: the
first-party ``coreframe`` distribution's tool keeps the plain name and the
other is *shadowed*, runnable as ``DIST:NAME``; when neither claimant is
first-party, the plain name is refused as ambiguous and each runs as
``DIST:NAME``. ``list``, ``list --json`` and ``info`` show one row per
distribution's tool, never one package's name beside another's details.
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

    Stamped = tuple[str, tuple[int, int]]  # a declaring file and its (size, mtime)

NAMESPACE = "coreframe.tools"
FIRST_PARTY = "coreframe"  # the distribution whose tools win a name collision


def normalize_dist(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): lower case, ``-`` for ``_``/``.``."""
    return name.lower().replace("_", "-").replace(".", "-")


def split_qualified(name: str) -> tuple[str, str]:
    """``("dist", "tool")`` for ``DIST:TOOL``, ``("", "tool")`` for a plain name."""
    dist, sep, tool = name.partition(":")
    return (dist, tool) if sep else ("", name)


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
        # set by resolve(): the tool that keeps the plain name when this one is shadowed,
        # the tools this one shadows, and every claimant of an ambiguous name
        self.shadowed_by = ""
        self.shadows: list[ToolEntry] = []
        self.ambiguous_with: list[ToolEntry] = []

    @property
    def qualified(self) -> str:
        """``DIST:NAME``: runs this distribution's tool whatever else claims NAME."""
        return f"{self.distribution}:{self.name}" if self.distribution else self.name

    @property
    def run_name(self) -> str:
        """What to type after ``coreframe run``: the plain name unless it is shadowed/ambiguous."""
        return self.qualified if self.shadowed_by or self.ambiguous_with else self.name

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


def _distributions() -> dict[tuple[str, str], list[tuple[str, str]]]:
    """Map (entry name, target) to the (distribution, version)s declaring it, in path order."""
    from ..runtime.compat import entry_points_in

    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for ep, dist in entry_points_in(NAMESPACE):
        if dist is not None:
            found.setdefault((ep.name, ep.value), []).append(
                (dist.metadata["Name"] or "", dist.version or ""))
    return found


def _attribute(entries: list[ToolEntry]) -> None:
    """Fill in each entry's distribution and version (reads every package's metadata)."""
    dists = _distributions()
    for entry in entries:
        claims = dists.get((entry.name, entry.target), [])
        # Two distributions declaring the very same target run the same code: name the
        # first-party one when it is among them.
        own = [c for c in claims if normalize_dist(c[0]) == FIRST_PARTY]
        entry.distribution, entry.version = (own or claims or [("", "")])[0]


def tool_problem(cls: type[Tool]) -> str:
    """Why ``coreframe`` refuses this tool class ("" when it is fine).

    A tool whose options collide (the same ``-p`` declared twice, or one of the
    options ``coreframe run`` adds) would make click warn on every ``--help`` and
    silently let one declaration win, so such a tool is listed as broken instead.
    """
    from ..options import option_conflicts, unknown_conflict_names
    from ..tool import run_params

    try:
        params = cls.params()
    except Exception as exc:  # a plugin's params() failing must not break the listing
        return f"{cls.__name__}.params() failed: {type(exc).__name__}: {exc}"
    problem = option_conflicts(params)
    if not problem and getattr(cls, "conflicts", ()):
        bad = unknown_conflict_names(run_params(cls), cls.conflicts)
        if bad:
            problem = f"{cls.__name__}.conflicts names no option of the tool: {bad}"
    return problem


def _load(names: list[str] | None) -> list[ToolEntry]:
    """Load the named entry points (all when ``names`` is None) through stevedore.

    One entry per entry point, in the order the entry points are found; a name
    claimed twice gives two entries (see :func:`resolve`).
    """
    from stevedore import ExtensionManager
    from stevedore.named import NamedExtensionManager

    failures: dict[tuple[str, str], str] = {}

    def on_failure(_manager: object, ep: importlib.metadata.EntryPoint, exc: BaseException) -> None:
        failures[(ep.name, ep.value)] = f"{type(exc).__name__}: {exc}"

    manager: ExtensionManager[Any]
    if names is None:
        manager = ExtensionManager(NAMESPACE, invoke_on_load=False,
                                   on_load_failure_callback=on_failure)
    else:
        manager = NamedExtensionManager(NAMESPACE, names=names, invoke_on_load=False,
                                        on_load_failure_callback=on_failure,
                                        on_missing_entrypoints_callback=lambda _missing: None)
    loaded = {(ext.name, ext.entry_point.value): ext for ext in manager.extensions}
    entries: list[ToolEntry] = []
    for ep in manager.list_entry_points():
        if names is not None and ep.name not in names:
            continue
        entry = ToolEntry(ep.name, ep.value)
        ext = loaded.get((ep.name, ep.value))
        if ext is None:
            entry.error = failures.get((ep.name, ep.value), "failed to load")
        elif not (isinstance(ext.plugin, type) and issubclass(ext.plugin, Tool)):
            entry.error = f"{ep.value} is not a coreframe.tool.Tool subclass"
        else:
            entry.error = tool_problem(ext.plugin)
            entry.cls = None if entry.error else ext.plugin
        entries.append(entry)
    return entries


def resolve(entries: list[ToolEntry]) -> dict[str, ToolEntry]:
    """Key every entry by the name that runs it, applying the collision rule.

    A name claimed by one distribution keeps it. Claimed by several: the
    first-party distribution's tool keeps the plain name and the others are
    keyed ``DIST:NAME`` with ``shadowed_by`` set; with no first-party claimant
    every claimant is keyed ``DIST:NAME`` and lists the others in ``ambiguous_with``.
    """
    by_name: dict[str, list[ToolEntry]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    out: dict[str, ToolEntry] = {}
    for name, claims in by_name.items():
        if len(claims) == 1:
            out[name] = claims[0]
            continue
        own = [e for e in claims if normalize_dist(e.distribution) == FIRST_PARTY]
        if own:
            winner = own[0]
            out[name] = winner
            for other in claims:
                if other is not winner:
                    other.shadowed_by = winner.qualified
                    winner.shadows.append(other)
                    out[other.qualified] = other
        else:
            for entry in claims:
                entry.ambiguous_with = [e for e in claims if e is not entry]
                out[entry.qualified] = entry
    return dict(sorted(out.items()))


def discover() -> dict[str, ToolEntry]:
    """Every tool in the entry-point group keyed by the name that runs it, broken ones included.

    Shadowed and ambiguous tools are keyed ``DIST:NAME`` (see :func:`resolve`).
    """
    entries = _load(None)
    _attribute(entries)
    return resolve(entries)


def suggest(name: str, known: list[str]) -> str:
    """``"; did you mean 'x'?"`` for a near miss among ``known``, else ""."""
    import difflib  # error path only: keep it off the start-up imports

    # a shadowed or ambiguous tool is known as DIST:NAME; match its NAME too
    plain: dict[str, list[str]] = {}
    for k in known:
        if ":" in k:
            plain.setdefault(k.partition(":")[2], []).append(k)
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    for match in difflib.get_close_matches(name, [p for p in plain if p not in known], n=3,
                                           cutoff=0.6):
        close += [k for k in plain[match] if k not in close]
    return f"; did you mean {', '.join(repr(c) for c in close[:3])}?" if close else ""


def get_tool(name: str, *, with_distribution: bool = False) -> ToolEntry:
    """The named tool (``NAME`` or ``DIST:NAME``), or ``ToolError`` saying why not.

    Only that name's entry points are imported (``coreframe run`` start-up time);
    the distribution lookup, which reads every installed package's metadata, is
    done only when asked for or when it decides between claimants.
    """
    dist, tool = split_qualified(name)
    entries = _load([tool])
    if not entries:
        known = list(discover())
        raise ToolError(f"unknown tool {name!r}{suggest(name, known)} "
                        f"(installed: {', '.join(known) or 'none'})")
    if with_distribution or dist or len(entries) > 1:
        _attribute(entries)
    resolved = resolve(entries)
    if dist:
        wanted = normalize_dist(dist)
        match = [e for e in entries if normalize_dist(e.distribution) == wanted]
        if not match:
            have = ", ".join(sorted(e.qualified for e in entries))
            raise ToolError(f"no tool {tool!r} from distribution {dist!r} (installed: {have})")
        entry = match[0]
    elif tool in resolved:
        entry = resolved[tool]
    else:
        claimants = sorted(entries, key=lambda e: e.qualified)
        raise ToolError(f"tool name {tool!r} is claimed by "
                        f"{' and '.join(e.distribution or '?' for e in claimants)}, none of them "
                        f"coreframe's own: run {' or '.join(e.qualified for e in claimants)}")
    if entry.cls is None:
        raise ToolError(f"tool {entry.run_name!r} is broken: {entry.error}")
    return entry


def _dist_name(dirname: str) -> str:
    """The normalized distribution name of a ``NAME-VERSION.dist-info`` directory."""
    name = dirname.rpartition(".")[0].partition("-")[0]
    return name.lower().replace("_", "-").replace(".", "-")


def entry_point_claims(name: str, group: str = NAMESPACE) -> list[tuple[str, str]]:
    """``(distribution, target)`` of every entry point ``name`` in ``group``, read from disk.

    Walks ``sys.path`` like importlib.metadata: the first distribution of a given
    name wins, ``.dist-info`` and ``.egg-info`` directories alike; distribution
    names come normalized (:func:`normalize_dist`). The walk reads one small file per
    installed distribution, so what it found is kept in the user cache
    (:func:`_cached_group`) and reused while no ``sys.path`` directory has changed.
    """
    return list(_cached_group(group).get(name, ()))


# what the cached walk stores; bump when its shape changes
_CLAIMS_VERSION = 1


def _path_stamp() -> tuple[tuple[str, int], ...]:
    """Each ``sys.path`` directory with its mtime: installing or removing a
    distribution adds or removes a ``*.dist-info`` entry there, which changes it."""
    out = []
    for base in sys.path:
        where = base or os.getcwd()
        try:
            out.append((where, os.stat(where).st_mtime_ns))
        except OSError:
            out.append((where, -1))
    return tuple(out)


def _file_stamp(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)


def _cached_group(group: str) -> dict[str, list[tuple[str, str]]]:
    """:func:`_walk_group`, or its result from an earlier start with the same
    ``sys.path`` directories (same mtimes) and the same declaring files (an
    ``entry_points.txt`` rewritten in place, as an editable reinstall may, changes
    its size or mtime but not the directory's).

    A walk missed this way (a file edited by hand in a distribution that declared
    no tools) costs only the fast path: :func:`find_tool` then asks stevedore,
    which reads the metadata itself.
    """
    from ..runtime.cache import cache_dir, read_marshal, write_marshal

    stamp = _path_stamp()
    directory = cache_dir()
    path = None if directory is None else os.path.join(directory, f"entry-points-{group}.bin")
    if path is not None:
        stored = read_marshal(path)
        if (type(stored) is tuple and len(stored) == 4 and stored[0] == _CLAIMS_VERSION
                and stored[1] == stamp and type(stored[3]) is dict
                and all(_file_stamp(f) == tuple(st) for f, st in stored[2])):
            return stored[3]
    files, claims = _walk_group(group)
    if path is not None and not _racy([m for _, m in stamp] + [m for _, (_, m) in files]):
        write_marshal(path, (_CLAIMS_VERSION, stamp, files, claims))
    return claims


# How long after a change a directory's mtime is trusted to tell it from the next
# change: the kernel stamps files with its coarse clock (a tick: 1-10 ms), so two
# changes within one tick can leave the same mtime.
_RACY_NS = 100_000_000


def _racy(mtimes: list[int]) -> bool:
    """Whether a directory or file changed so recently that a change still to come in
    the same clock tick would leave its mtime as stamped (git's "racily clean"
    entries): such a walk is not stored."""
    import time

    recent = time.time_ns() - _RACY_NS
    return any(mtime >= recent for mtime in mtimes)


def _walk_group(group: str) -> tuple[list[Stamped], dict[str, list[tuple[str, str]]]]:
    """The ``entry_points.txt`` files declaring ``group``, each stamped as it was read
    (fstat of the open file, so the stamp is the content's), and per entry point
    name its ``(distribution, target)`` claims in ``sys.path`` order."""
    seen: set[str] = set()
    files: list[Stamped] = []
    claims: dict[str, list[tuple[str, str]]] = {}
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
            txt = os.path.join(base or os.getcwd(), entry, "entry_points.txt")
            try:  # bytes first: most distributions declare no coreframe tools
                with open(txt, "rb") as f:
                    raw = f.read()
                    st = os.fstat(f.fileno())
            except OSError:
                continue
            if raw_header not in raw:
                continue
            files.append((txt, (st.st_size, st.st_mtime_ns)))
            section = ""
            for line in raw.decode("utf-8", "replace").splitlines():
                line = line.strip()
                if line.startswith("["):
                    section = line
                elif section == header and "=" in line:
                    key, _, value = line.partition("=")
                    claims.setdefault(key.strip(), []).append(
                        (dist, value.partition("[")[0].strip()))
    return files, claims


def entry_point_targets(name: str, group: str = NAMESPACE) -> list[str]:
    """Targets (``module:attr``) of entry point ``name`` in ``group``, read from disk."""
    return [target for _dist, target in entry_point_claims(name, group)]


def _import_target(target: str) -> Any:
    module_name, _, attr = target.partition(":")
    module_name = module_name.strip()
    __import__(module_name)  # importlib.import_module would import importlib (+warnings)
    obj: Any = sys.modules[module_name]
    for part in attr.strip().split(".") if attr.strip() else ():
        obj = getattr(obj, part)
    return obj


def find_tool_direct(name: str) -> ToolEntry | None:
    """The named tool (``NAME`` or ``DIST:NAME``) from entry points read off disk, or None.

    None covers an unknown name, an import error, a non-Tool target and a name
    claimed by several distributions none of which is first-party alike: the
    caller then asks stevedore, whose answer carries the listing or error. A
    name claimed by several distributions resolves to the first-party one.
    """
    dist, tool = split_qualified(name)
    claims = entry_point_claims(tool)
    if dist:
        wanted = normalize_dist(dist)
        claims = [c for c in claims if c[0] == wanted]
    elif len({d for d, _ in claims}) > 1:
        claims = [c for c in claims if c[0] == FIRST_PARTY]
    if len(claims) != 1:
        return None
    dist, target = claims[0]
    try:
        plugin = _import_target(target)
    except Exception:  # noqa: BLE001 - stevedore reports the failure properly
        return None
    if isinstance(plugin, type) and issubclass(plugin, Tool):
        return ToolEntry(tool, target, distribution=dist, cls=plugin)
    return None


def find_tool(name: str) -> ToolEntry:
    """The named tool for ``coreframe run``: entry points read directly, stevedore as fallback.

    Both routes honour the same entry-point group; the direct one only skips the
    cost of importing stevedore and importlib.metadata when the plugin loads.
    """
    entry = find_tool_direct(name)
    if entry is None:
        return get_tool(name)
    assert entry.cls is not None
    problem = tool_problem(entry.cls)
    if problem:
        raise ToolError(f"tool {name!r} is broken: {problem}")
    return entry
