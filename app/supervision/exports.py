"""The supervision tables and the statistics as Excel, built by a job (``supervision_export``).

The job's parameters are set by the route, never by the person: ``unit_id`` is the asking unit's
own workspace for a unit's statistics. The worker's session is trusted; the queries restrict
themselves (``unit_id``) exactly as the pages do.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.orm import Session

from app.cases.vocab import ASSIGNMENT_STATES
from app.errors import InvalidInput
from app.escalation.services import RUNG_TITLES
from app.security.spreadsheet import append_row
from app.supervision import queries, stats

TABLES: Final = {"dashboard": "督查统计", "quality": "办理质效问题清单", "stats": "留言统计分析"}
BOLD: Final = Font(bold=True)


def _sheet(book: Workbook, title: str, header: list[str], rows: list[list[Any]]) -> Worksheet:
    sheet = book.create_sheet(title[:31])
    sheet.append(header)
    for cell in sheet[1]:
        cell.font = BOLD
    for row in rows:
        append_row(sheet, row)
    sheet.freeze_panes = "A2"
    return sheet


def _dashboard(book: Workbook, db: Session, today: date) -> None:
    header = ["分组", *queries.STATUSES.values()]
    totals = queries.totals(db, today)
    _sheet(book, "合计", header, [["全市", *(totals[k] for k in queries.STATUSES)]])
    for dimension, label in queries.DIMENSIONS.items():
        rows = queries.breakdown(db, dimension, today)
        _sheet(
            book,
            f"按{label}",
            [label, *queries.STATUSES.values()],
            [[r.label, *(r.counts[k] for k in queries.STATUSES)] for r in rows],
        )


def _quality(book: Workbook, db: Session, today: date) -> None:
    rows = queries.quality_list(db, today)
    _sheet(
        book,
        "问题清单",
        ["承办单号", "标题", "承办单位", "办理期限", "状态", "问题", "三单一函最高", "催办未果次数"],
        [
            [
                r.sheet_number,
                r.title,
                r.unit_name,
                r.due_date,
                ASSIGNMENT_STATES.get(r.state, r.state),
                "、".join(queries.QUALITY_LABELS[f] for f in r.flags),
                RUNG_TITLES.get(r.top_rung or "", "—"),
                r.urges_without_result,
            ]
            for r in rows
        ],
    )


def stats_rows(s: stats.PeriodStats) -> list[list[Any]]:
    """The summary table (the page shows the same rows)."""
    rows: list[list[Any]] = [
        ["统计期间", f"{s.start} 至 {s.end}"],
        ["留言总量", s.volume],
        ["不予受理", s.declined],
        ["已交办", s.dispatched],
        ["已答复（牵头单位）", s.replied],
        ["答复用时中位数（工作日）", s.median_days if s.median_days is not None else "—"],
        ["答复用时平均（工作日）", s.average_days if s.average_days is not None else "—"],
        ["按时答复", s.on_time],
        ["逾期（已答复逾期及逾期未答复）", s.late],
        ["按时答复率（%）", s.on_time_rate if s.on_time_rate is not None else "—"],
        ["退办同意（有效退办）", s.returns_valid],
        ["退办不同意（无效退办）", s.returns_invalid],
        ["延期获批", s.extensions],
    ]
    if s.ratings is not None:
        rows.append(["回访评价数", sum(s.ratings.values())])
        rows.append(["满意率（%）", s.satisfaction_rate if s.satisfaction_rate is not None else "—"])
    return rows


def _stats(book: Workbook, db: Session, params: dict[str, Any], today: date) -> None:
    start, end = date.fromisoformat(params["start"]), date.fromisoformat(params["end"])
    s = stats.period_stats(db, start, end, today, unit_id=params.get("unit_id"))
    _sheet(book, "概况", ["指标", "数值"], stats_rows(s))
    for title, table in (("按类别", s.by_category), ("按主题", s.by_topic), ("按地区", s.by_region)):
        _sheet(book, title, [title[1:], "件数"], [[label, n] for _, label, n in table])
    _sheet(book, "热点词", ["词", "涉及留言数"], [list(t) for t in s.hot_terms])


def build(db: Session, params: dict[str, Any], progress: Callable[[int, int], None]) -> tuple[str, bytes]:
    """The workbook of one table; ``InvalidInput`` for parameters that name none."""
    table = params.get("table")
    if table not in TABLES:
        raise InvalidInput("没有这个统计表。")
    today = date.fromisoformat(params["today"])
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type,unused-ignore]
    progress(0, 1)
    if table == "dashboard":
        _dashboard(book, db, today)
    elif table == "quality":
        _quality(book, db, today)
    else:
        _stats(book, db, params, today)
    progress(1, 1)
    out = io.BytesIO()
    book.save(out)
    suffix = f"_{params['start']}_{params['end']}" if table == "stats" else f"_{today}"
    return f"{TABLES[table]}{suffix}.xlsx", out.getvalue()
