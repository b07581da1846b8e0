"""SVG of a NAS-Bench-201 cell for the dashboard: one arc per edge labelled with its op."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from search_spaces.nb201 import EDGES

if TYPE_CHECKING:
    from search_spaces.nb201 import NB201Space

#: Colours per op (print-safe, distinguishable for common colour-vision deficiencies).
OP_COLOURS = {"none": "#9aa0a6", "skip_connect": "#1b9e77", "nor_conv_1x1": "#d95f02",
              "nor_conv_3x3": "#7570b3", "avg_pool_3x3": "#e7298a"}
NODE_X = (60, 240, 420, 600)
NODE_Y = 150
#: Control-point offset of each edge that skips a node: above (negative) or below the row.
ARC_OFFSET = {(0, 2): -110, (1, 3): 110, (0, 3): -230}


def _edge_path(src: int, dst: int) -> tuple[str, float, float]:
    """An arc from node src to node dst; returns the SVG path and where its label goes."""
    x1, x2 = NODE_X[src] + 22, NODE_X[dst] - 22
    offset = ARC_OFFSET.get((src, dst))
    if offset is None:
        return f"M{x1},{NODE_Y} L{x2},{NODE_Y}", (x1 + x2) / 2, NODE_Y - 8
    label_y = NODE_Y + offset / 2 + (-6 if offset < 0 else 16)
    return f"M{x1},{NODE_Y} Q{(x1 + x2) / 2},{NODE_Y + offset} {x2},{NODE_Y}", (x1 + x2) / 2, label_y


def cell_svg(space: NB201Space, arch: str) -> str:
    """The 4-node cell: one arc per edge labelled with its op; dead edges drawn faint and dashed."""
    codes = space.encode(arch)
    ops = [space.choices[i][int(c)] for i, c in enumerate(codes)]
    live = space.live_edges(codes)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" class="arch-diagram" viewBox="0 0 660 300" '
             f'role="img" aria-labelledby="arch-title"><title id="arch-title">{space.name} cell {escape(arch)}</title>',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
             'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#444"/></marker></defs>']
    for i, ((src, dst), op) in enumerate(zip(EDGES, ops, strict=True)):
        path, lx, ly = _edge_path(src, dst)
        style = "" if live[i] else ' stroke-dasharray="6 4" opacity="0.45"'
        parts.append(f'<g class="edge" data-edge="{src}-{dst}" data-op="{op}" data-live="{str(live[i]).lower()}">'
                     f'<path d="{path}" fill="none" stroke="{OP_COLOURS.get(op, "#444")}" stroke-width="3" '
                     f'marker-end="url(#arrow)"{style}/>'
                     f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle" font-size="13">{escape(op)}</text></g>')
    names = ("input", "node 1", "node 2", "output")
    for n, x in enumerate(NODE_X):
        parts.append(f'<g class="node"><circle cx="{x}" cy="{NODE_Y}" r="22" fill="#fff" stroke="#222" '
                     f'stroke-width="2"/><text x="{x}" y="{NODE_Y + 5}" text-anchor="middle" '
                     f'font-size="14" font-weight="bold">{n}</text>'
                     f'<text x="{x}" y="{NODE_Y + 44}" text-anchor="middle" font-size="12">{names[n]}</text></g>')
    parts.append("</svg>")
    return "".join(parts)
