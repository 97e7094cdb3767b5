"""年度绩效考核 (第二十一条): each unit's score for a year = base − Σ deductions, explained case by
case; the centre admin's rules; the year-end report (PDF and Excel) for 督查室."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessment.models import AssessmentRules
from app.assessment.rules import RULE_LABELS, RULES, Points, Window, counts_query, for_unit, rule_query, show
from app.audit.services import record
from app.cases.vocab import QUALITY_FLAGS
from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.tenants.models import Workspace, WorkspaceKind
from app.tenants.scope import cross_workspace
from app.workflows.deadlines import local_date

UNIT_KINDS = (WorkspaceKind.COUNTY.value, WorkspaceKind.BUREAU.value, WorkspaceKind.VERTICAL.value)
FIRST_YEAR = 2023  # the regulation's year


def today() -> date:
    return local_date(datetime.now(UTC))


def parse_year(raw: Any, default: int | None = None) -> int:
    text = str(raw or "").strip()
    if not text and default is not None:
        return default
    if not text.isdigit() or not FIRST_YEAR <= int(text) <= today().year:
        raise InvalidInput(f"请选择 {FIRST_YEAR} 到 {today().year} 年之间的年度。", field="year")
    return int(text)


# --- the rules --------------------------------------------------------------------------------------


def points(db: Session, year: int) -> Points:
    """The year's rules, or the defaults when the centre has not set them."""
    row = db.get(AssessmentRules, year)
    if row is None:
        return Points()
    return Points(**{name: getattr(row, name) for name in Points.__dataclass_fields__})


def set_points(db: Session, year: int, new: Points, *, actor_id: int, workspace_id: int | None) -> None:
    """The centre admin sets a year's rules; audited with the values before and after."""
    before = points(db, year)
    row = db.get(AssessmentRules, year) or AssessmentRules(year=year)
    for name in Points.__dataclass_fields__:
        setattr(row, name, getattr(new, name))
    row.updated_at, row.updated_by_id = utcnow(), actor_id
    db.add(row)
    record(
        db,
        "assessment.rules",
        actor_id=actor_id,
        workspace_id=workspace_id,
        target=f"assessment_rules:{year}",
        before=before.as_points(),
        after=new.as_points(),
    )


# --- scores -----------------------------------------------------------------------------------------


@dataclass
class UnitScore:
    workspace_id: int
    name: str
    kind: str
    counts: dict[str, int] = field(default_factory=dict)
    deducted: int = 0  # tenths
    score: int = 0  # tenths
    rank: int = 0

    @property
    def score_text(self) -> str:
        return show(self.score)

    @property
    def deducted_text(self) -> str:
        return show(self.deducted)


@dataclass
class Ranking:
    year: int
    as_of: date
    final: bool  # the year is over
    points: Points
    units: list[UnitScore]
    rules: tuple[Any, ...] = RULES


def _dialect(db: Session) -> str:
    return db.get_bind().dialect.name


def units(db: Session) -> list[Workspace]:
    with cross_workspace(db):
        return list(
            db.scalars(
                select(Workspace)
                .where(Workspace.kind.in_(UNIT_KINDS), Workspace.is_active)
                .order_by(Workspace.id)
            )
        )


def ranking(db: Session, year: int, *, on: date | None = None) -> Ranking:
    """Every unit's score for ``year`` (to date while the year runs): one GROUP BY query per rule."""
    on = on or today()
    p = points(db, year)
    w = Window(year, on)
    scores = {u.id: UnitScore(u.id, u.name, WorkspaceKind(u.kind).label) for u in units(db)}
    with cross_workspace(db):
        for rule in RULES:
            query = counts_query(rule.key, w, _dialect(db))
            for unit_id, n in db.execute(query).all() if query is not None else ():
                if unit_id in scores:
                    scores[unit_id].counts[rule.key] = int(n)
    for s in scores.values():
        s.deducted = sum(n * p.of(key) for key, n in s.counts.items())
        s.score = p.base - s.deducted
    ordered = sorted(scores.values(), key=lambda s: (-s.score, s.workspace_id))
    for i, s in enumerate(ordered):
        s.rank = ordered[i - 1].rank if i and ordered[i - 1].score == s.score else i + 1
    return Ranking(year, min(on, date(year, 12, 31)), on > date(year, 12, 31), p, ordered)


@dataclass(frozen=True)
class Deduction:
    rule: str
    label: str
    case_id: int
    sheet_number: str
    title: str
    day: date
    points: int  # tenths
    note: str

    @property
    def points_text(self) -> str:
        return show(self.points)


@dataclass
class Explanation:
    unit: Workspace
    year: int
    as_of: date
    points: Points
    deductions: list[Deduction]

    @property
    def deducted(self) -> int:
        return sum(d.points for d in self.deductions)

    @property
    def score(self) -> int:
        return self.points.base - self.deducted

    def subtotals(self) -> list[tuple[str, int, int]]:
        """(label, count, tenths) per rule, in the rules' order."""
        out = []
        for rule in RULES:
            mine = [d for d in self.deductions if d.rule == rule.key]
            out.append((rule.label, len(mine), sum(d.points for d in mine)))
        return out


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return local_date(value if value.tzinfo else value.replace(tzinfo=UTC))
    if isinstance(value, str):  # SQLite returns a subquery's dates as text
        return date.fromisoformat(value[:10]) if len(value) <= 10 else _day(datetime.fromisoformat(value))
    return value  # type: ignore[no-any-return]


def _note(rule: str, value: Any) -> str:
    if rule == "overdue":
        return f"签发于 {_day(value).isoformat()}" if value else "尚未答复"
    if rule == "quality":
        return QUALITY_FLAGS.get(str(value or ""), "")
    return str(value or "")


def unit_workspace(db: Session, workspace_id: int) -> Workspace:
    """A handling unit (404 for anything else: the centre, the office or nothing)."""
    with cross_workspace(db):
        unit = db.get(Workspace, workspace_id)
    if unit is None or unit.kind not in UNIT_KINDS:
        raise NotFound()
    return unit


def explain(db: Session, unit: Workspace, year: int, *, on: date | None = None) -> Explanation:
    """The unit's deductions for ``year``, one row per failing, with its case: the score explains itself."""
    on = on or today()
    p = points(db, year)
    w = Window(year, on)
    found: list[Deduction] = []
    with cross_workspace(db):
        for rule in RULES:
            query = rule_query(rule.key, w, _dialect(db))
            if query is None:
                continue
            for row in db.execute(for_unit(query, unit.id)).all():
                _, case_id, _, sheet, title, day, note = row
                found.append(
                    Deduction(
                        rule.key,
                        RULE_LABELS[rule.key],
                        case_id,
                        sheet or "",
                        title,
                        _day(day),
                        p.of(rule.key),
                        _note(rule.key, note),
                    )
                )
    found.sort(key=lambda d: (d.day, d.sheet_number, d.rule))
    return Explanation(unit, year, min(on, date(year, 12, 31)), p, found)


# --- the year-end report for 督查室 (a job) ---------------------------------------------------------

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Progress = Callable[[int, int], None]


def report_data(db: Session, year: int, progress: Progress) -> tuple[Ranking, list[Explanation]]:
    board = ranking(db, year)
    by_id = {u.id: u for u in units(db)}
    explained = []
    for i, s in enumerate(board.units):
        if s.deducted:
            explained.append(explain(db, by_id[s.workspace_id], year))
        progress(i + 1, len(board.units))
    return board, explained


def report_pdf(board: Ranking, explained: list[Explanation]) -> bytes:
    from app.documents.render import render_pdf

    return render_pdf(
        "documents/assessment_report.html",
        doc={"title": f"{board.year}年度留言办理考核意见", "number": f"考核〔{board.year}〕"},
        board=board,
        explained=explained,
        show=show,
        compiled_on=today(),
    )


def report_xlsx(board: Ranking, explained: list[Explanation]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    from app.security.spreadsheet import append_row

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "排名"
    sheet.append([f"{board.year}年度留言办理考核排名（截至{board.as_of.isoformat()}）"])
    sheet.append(["名次", "单位", "类别", "基础分", *(r.label for r in RULES), "扣分合计", "得分"])
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for s in board.units:
        counts = [s.counts.get(r.key, 0) for r in RULES]
        append_row(
            sheet,
            [
                s.rank,
                s.name,
                s.kind,
                float(show(board.points.base)),
                *counts,
                float(s.deducted_text),
                float(s.score_text),
            ],
        )
    sheet.column_dimensions["B"].width = 36
    detail = book.create_sheet("扣分明细")
    detail.append(["单位", "日期", "承办单号", "留言标题", "扣分项", "扣分", "说明"])
    for cell in detail[1]:
        cell.font = Font(bold=True)
    for e in explained:
        for d in e.deductions:
            append_row(
                detail, [e.unit.name, d.day, d.sheet_number, d.title, d.label, float(d.points_text), d.note]
            )
    rules = book.create_sheet("扣分规则")
    rules.append(["扣分项", "计扣单位", "分值"])
    rules.append(["基础分", "", float(show(board.points.base))])
    for r in RULES:
        rules.append([r.label, r.unit_label, float(show(board.points.of(r.key)))])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def build_report(db: Session, params: dict[str, Any], progress: Progress) -> tuple[str, str, bytes]:
    """(filename, content type, bytes) of the year's report; ``params``: year, format (pdf | xlsx)."""
    year = int(params["year"])
    fmt = params.get("format", "pdf")
    if fmt not in ("pdf", "xlsx"):
        raise InvalidInput("报告格式只能是 PDF 或 Excel。")
    board, explained = report_data(db, year, progress)
    if fmt == "xlsx":
        return f"{year}年度考核意见.xlsx", XLSX, report_xlsx(board, explained)
    return f"{year}年度考核意见.pdf", "application/pdf", report_pdf(board, explained)
