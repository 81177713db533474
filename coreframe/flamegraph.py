"""An interactive flame graph (SVG, or HTML around it) from folded stacks, with no Perl.

``render_svg(stacks, title=...)`` takes ``(frames, count)`` pairs, frames root first (as
in a folded line ``comm;main;f;g 42``), each frame a name or a ``(name, kind)`` pair
(kind ``"kernel"``, ``"user"``, ``"comm"`` or ``"delim"``, which picks its colours), and
returns one self-contained SVG document: every frame drawn as a box whose width is its
share of the samples, a ``<title>`` per box (the browser's hover tooltip), and a small
script for what flamegraph.pl's SVGs offer: click a box to zoom into it (its ancestors
stay, full width), "Reset Zoom", "Search" (a regular expression; matches turn magenta
and the matched share of all samples is shown), and a details line for the box under the
pointer. The boxes are positioned in the SVG itself, so a viewer without scripts still
shows the graph; the script only re-lays them out. ``render_html`` puts the same SVG in
an HTML page.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from typing import Any

WIDTH = 1200
FRAME_H = 16
PAD_TOP = 60
PAD_BOTTOM = 36
PAD_SIDE = 10
FONT_W = 0.59 * 12  # average glyph width of the 12px monospace font, for cutting labels
MIN_W = 0.1         # boxes narrower than this (pixels, unzoomed) are left out

_PALETTES = {
    # (red base, red spread, green base, green spread, blue base, blue spread)
    "user": (205, 50, 0, 230, 0, 55),       # flamegraph.pl's warm colours
    "kernel": (0, 0, 140, 90, 200, 55),     # kernel code in blue-green (its --colors=java)
    "comm": (200, 40, 200, 40, 200, 40),    # the process name row in grey
    "delim": (220, 0, 220, 0, 220, 0),
}


class _Node:
    __slots__ = ("name", "kind", "count", "children")

    def __init__(self, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.count = 0
        self.children: dict[tuple[str, str], _Node] = {}


def _frame(f: Any) -> tuple[str, str]:
    return (f, "user") if isinstance(f, str) else (str(f[0]), str(f[1]))


def build_tree(stacks: Iterable[tuple[Sequence[Any], int]]) -> _Node:
    root = _Node("all", "comm")
    for frames, count in stacks:
        if count <= 0:
            continue
        root.count += count
        node = root
        for f in frames:
            key = _frame(f)
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node(*key)
            child.count += count
            node = child
    return root


def _colour(name: str, kind: str) -> str:
    # deterministic per name (as flamegraph.pl's --hash), so a function keeps its colour
    h = 0
    for ch in name:
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    v1, v2, v3 = (h % 1000) / 1000, ((h // 1000) % 1000) / 1000, ((h // 10**6) % 1000) / 1000
    if kind in ("comm", "delim"):
        v1 = v2 = v3  # shades of grey
    rb, rs, gb, gs, bb, bs = _PALETTES.get(kind, _PALETTES["user"])
    return f"rgb({rb + int(rs * v3)},{gb + int(gs * v1)},{bb + int(bs * v2)})"


def _esc(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _label(name: str, width: float) -> str:
    chars = int((width - 6) / FONT_W)
    if chars < 3:
        return ""
    return name if len(name) <= chars else name[:chars - 2] + ".."


def render_svg(stacks: Iterable[tuple[Sequence[Any], int]], *, title: str = "Flame Graph",
               subtitle: str = "", unit: str = "samples") -> str:
    root = build_tree(stacks)
    total = root.count
    # depth-first layout: (node, depth, x in samples)
    boxes: list[tuple[_Node, int, int]] = []
    max_depth = 0
    scale = (WIDTH - 2 * PAD_SIDE) / total if total else 0.0
    todo = [(root, 0, 0)]
    while todo:
        node, depth, x = todo.pop()
        if node.count * scale < MIN_W:
            continue
        boxes.append((node, depth, x))
        max_depth = max(max_depth, depth)
        cx = x
        for child in sorted(node.children.values(), key=lambda n: (n.name, n.kind)):
            todo.append((child, depth + 1, cx))
            cx += child.count
    height = PAD_TOP + (max_depth + 1) * FRAME_H + PAD_BOTTOM
    out = [
        '<?xml version="1.0" standalone="no"?>\n',
        f'<svg version="1.1" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}"'
        ' xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"'
        f' data-total="{total}" data-unit="{_esc(unit)}">\n',
        "<style>text{font-family:monospace;font-size:12px;fill:#000}"
        "#title{font-size:17px;text-anchor:middle}#subtitle{fill:#555;text-anchor:middle}"
        ".btn{cursor:pointer;fill:#333}.btn:hover{text-decoration:underline}"
        "g.f:hover rect{stroke:#000;stroke-width:0.5;cursor:pointer}"
        "g.f text{pointer-events:none}.hide{display:none}</style>\n",
        f'<rect width="{WIDTH}" height="{height}" fill="#f8f8f8"/>\n',
        f'<text id="title" x="{WIDTH / 2}" y="24">{_esc(title)}</text>\n',
        f'<text id="subtitle" x="{WIDTH / 2}" y="42">{_esc(subtitle)}</text>\n',
        f'<text id="reset" class="btn hide" x="{PAD_SIDE}" y="24">Reset Zoom</text>\n',
        f'<text id="search" class="btn" x="{WIDTH - PAD_SIDE - 110}" y="24">Search</text>\n',
        f'<text id="clear" class="btn hide" x="{WIDTH - PAD_SIDE - 50}" y="24">Clear</text>\n',
        f'<text id="matched" x="{WIDTH - PAD_SIDE - 110}" y="{height - 12}"></text>\n',
        f'<text id="details" x="{PAD_SIDE}" y="{height - 12}"> </text>\n',
        '<g id="frames">\n',
    ]
    base_y = height - PAD_BOTTOM
    for node, depth, x in boxes:
        w = node.count * scale
        px = PAD_SIDE + x * scale
        y = base_y - (depth + 1) * FRAME_H
        pct = 100.0 * node.count / total
        name = _esc(node.name)
        out.append(
            f'<g class="f" data-x="{x}" data-n="{node.count}" data-d="{depth}" '
            f'data-k="{node.kind}"><title>{name} ({node.count:,} {_esc(unit)}, '
            f'{pct:.2f}%)</title><rect x="{px:.2f}" y="{y}" width="{w:.2f}" '
            f'height="{FRAME_H - 1}" rx="2" fill="{_colour(node.name, node.kind)}"/>'
            f'<text x="{px + 3:.2f}" y="{y + FRAME_H - 4}">{_esc(_label(node.name, w))}'
            "</text></g>\n")
    out.append("</g>\n")
    out.append(f"<script type=\"text/ecmascript\"><![CDATA[\n{_SCRIPT}\n]]></script>\n")
    out.append("</svg>\n")
    return "".join(out)


def render_html(stacks: Iterable[tuple[Sequence[Any], int]], *, title: str = "Flame Graph",
                subtitle: str = "", unit: str = "samples") -> str:
    svg = render_svg(stacks, title=title, subtitle=subtitle, unit=unit)
    svg = svg.split("\n", 1)[1]  # no XML declaration inside HTML
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>{_esc(title)}</title><style>body{{margin:0;background:#f8f8f8}}</style>"
            f"</head><body>\n{svg}</body></html>\n")


# Zoom, search and details; the frames' geometry is in their data-x (first sample),
# data-n (samples) and data-d (depth) attributes.
_SCRIPT = r"""
(function () {
  "use strict";
  // the SVG document itself, or the (first) SVG element of the HTML page around it
  var svg = document.documentElement.tagName.toLowerCase() === "svg" ?
      document.documentElement : document.querySelector("svg");
  var W = @WIDTH@, SIDE = @SIDE@, FONT_W = @FONT_W@;
  var total = +svg.getAttribute("data-total") || 1;
  var unit = svg.getAttribute("data-unit") || "samples";
  var frames = Array.prototype.slice.call(svg.querySelectorAll("g.f"));
  var byId = function (id) { return svg.querySelector("#" + id); };
  var details = byId("details"), matched = byId("matched");
  var reset = byId("reset"), search = byId("search"), clear = byId("clear");
  var nodes = frames.map(function (g) {
    return { g: g, x: +g.getAttribute("data-x"), n: +g.getAttribute("data-n"),
             d: +g.getAttribute("data-d"), rect: g.querySelector("rect"),
             text: g.querySelector("text"), fill: g.querySelector("rect").getAttribute("fill"),
             name: g.querySelector("title").textContent.replace(/ \([^()]*\)$/, "") };
  });
  function label(name, w) {
    var chars = Math.floor((w - 6) / FONT_W);
    if (chars < 3) { return ""; }
    return name.length <= chars ? name : name.slice(0, chars - 2) + "..";
  }
  function layout(x0, n0, d0) {
    var scale = (W - 2 * SIDE) / n0;
    nodes.forEach(function (f) {
      var inside = f.x >= x0 && f.x + f.n <= x0 + n0 && f.d >= d0;
      var above = f.d < d0 && f.x <= x0 && f.x + f.n >= x0 + n0;
      if (!inside && !above) { f.g.classList.add("hide"); return; }
      f.g.classList.remove("hide");
      var px = above ? SIDE : SIDE + (f.x - x0) * scale;
      var w = above ? W - 2 * SIDE : f.n * scale;
      f.rect.setAttribute("x", px.toFixed(2));
      f.rect.setAttribute("width", w.toFixed(2));
      f.rect.setAttribute("opacity", above ? "0.6" : "1");
      f.text.setAttribute("x", (px + 3).toFixed(2));
      f.text.textContent = label(f.name, w);
    });
  }
  function zoom(f) {
    layout(f.x, f.n, f.d);
    reset.classList.toggle("hide", f.d === 0);
  }
  function fmt(f) {
    return f.name + " (" + f.n.toLocaleString() + " " + unit + ", " +
        (100 * f.n / total).toFixed(2) + "%)";
  }
  nodes.forEach(function (f) {
    f.g.addEventListener("click", function () { zoom(f); });
    f.g.addEventListener("mouseover", function () { details.textContent = fmt(f); });
    f.g.addEventListener("mouseout", function () { details.textContent = " "; });
  });
  reset.addEventListener("click", function () {
    layout(0, total, 0); reset.classList.add("hide");
  });
  function doSearch(term) {
    var re;
    try { re = new RegExp(term); } catch (e) { matched.textContent = "bad regex"; return; }
    var hits = [];
    nodes.forEach(function (f) {
      var hit = re.test(f.name);
      f.rect.setAttribute("fill", hit ? "rgb(230,0,230)" : f.fill);
      if (hit) { hits.push(f); }
    });
    // count each sample once: a match inside another match adds nothing
    hits.sort(function (a, b) { return a.d - b.d; });
    var kept = [], sum = 0;
    hits.forEach(function (f) {
      for (var i = 0; i < kept.length; i++) {
        var k = kept[i];
        if (f.x >= k.x && f.x + f.n <= k.x + k.n) { return; }
      }
      kept.push(f); sum += f.n;
    });
    matched.textContent = "Matched: " + (100 * sum / total).toFixed(1) + "%";
    clear.classList.remove("hide");
    svg.setAttribute("data-matched", String(sum));
  }
  function clearSearch() {
    nodes.forEach(function (f) { f.rect.setAttribute("fill", f.fill); });
    matched.textContent = "";
    clear.classList.add("hide");
    svg.removeAttribute("data-matched");
  }
  search.addEventListener("click", function () {
    var term = window.prompt("Search for (regular expression):", "");
    if (term) { doSearch(term); }
  });
  clear.addEventListener("click", clearSearch);
  window.addEventListener("keydown", function (e) {
    if ((e.ctrlKey || e.metaKey) && e.key === "f") {
      e.preventDefault();
      var term = window.prompt("Search for (regular expression):", "");
      if (term) { doSearch(term); }
    } else if (e.key === "Escape") {
      layout(0, total, 0); reset.classList.add("hide"); clearSearch();
    }
  });
  svg.setAttribute("data-ready", "1");
  // for scripts and tests: flamegraph.search("regex"), flamegraph.zoom("name")
  window.flamegraph = {
    search: doSearch, clear: clearSearch,
    zoom: function (name) {
      for (var i = 0; i < nodes.length; i++) {
        if (nodes[i].name === name) { zoom(nodes[i]); return true; }
      }
      return false;
    }
  };
})();
""".replace("@WIDTH@", str(WIDTH)).replace("@SIDE@", str(PAD_SIDE)).replace(
    "@FONT_W@", str(FONT_W))
