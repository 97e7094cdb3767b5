"""附件1 (the flow chart), drawn from the transition table itself so it can never be out of date.

The table becomes a Graphviz graph (one cluster per machine, one edge per transition, labelled
with its Chinese name and article); ``dot`` lays it out as SVG. Cached per process: the table
only changes with a deployment.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import lru_cache

from app.cases.vocab import ASSIGNMENT_STATES, CASE_STATES
from app.permissions import ROLE_LABELS, Role
from app.workflows.engine import SYSTEM
from app.workflows.transitions import TABLE

FONT = "Noto Sans CJK SC"


def _roles(roles: tuple[str, ...]) -> str:
    return "、".join("系统" if r == SYSTEM else ROLE_LABELS[Role(r)] for r in roles)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot_source(machine: str) -> str:
    """One machine's states and transitions as a Graphviz graph."""
    states = CASE_STATES if machine == "case" else ASSIGNMENT_STATES
    lines = [
        "digraph workflow {",
        f"  graph [rankdir={'LR' if machine == 'case' else 'TB'}, fontname={_quote(FONT)}, nodesep=0.5,"
        ' ranksep=0.5, bgcolor="white"];',
        f'  node [shape=box, style="rounded,filled", fillcolor="#fff7f7", color="#a8151b",'
        f" fontname={_quote(FONT)},"
        " fontsize=14];",
        f'  edge [fontname={_quote(FONT)}, fontsize=12, color="#5c6370", fontcolor="#1f2329"];',
    ]
    for key, label in states.items():
        lines.append(f"  {key} [label={_quote(label)}];")
    for t in TABLE:
        if t.machine != machine:
            continue
        style = ', style="dashed"' if t.roles == (SYSTEM,) else ""
        sources = t.sources
        if len(sources) > 3:
            # One arrow from "any of these states" keeps the chart readable.
            pseudo = f"any_{t.action}"
            names = "、".join(states[s] for s in sources)
            lines.append(
                f"  {pseudo} [label={_quote('任一未办结状态')}, tooltip={_quote(names)}, shape=note,"
                ' fillcolor="#f7f8fa", color="#8b929c"];'
            )
            sources = (pseudo,)
        for source in sources:
            tooltip = f"{t.label}：{_roles(t.roles)}（{t.article}）"
            lines.append(
                f"  {source} -> {t.target} [label={_quote(t.label)}, tooltip={_quote(tooltip)}{style}];"
            )
    lines.append("}")
    return "\n".join(lines)


@lru_cache(maxsize=2)
def flow_chart_svg(machine: str) -> str:
    dot = shutil.which("dot")
    if dot is None:
        raise RuntimeError("Graphviz `dot` is not installed (scripts/install.sh installs it)")
    # Our own table on stdin to a fixed binary: no untrusted input reaches the command line.
    result = subprocess.run(  # noqa: S603
        [dot, "-Tsvg"], input=dot_source(machine), capture_output=True, text=True, check=True, timeout=30
    )
    svg = result.stdout
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: it is inlined in a page
