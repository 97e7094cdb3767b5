"""The ledger (台账): every case registered in a period as one Excel workbook, for the centre's staff.

Sheet 台账 has one row per case registered in [start, end] (dates in Tongliao), optionally only the
cases of one unit (lead or co-unit in any round), of one category or in one state. Sheet 汇总 totals
the same rows by unit and by category. Nothing is masked: this is a staff-only export, behind the
caller's permission check.

The centre's cases are read together with the units' assignments and timeline, which live in the
units' workspaces, so the read runs inside ``cross_workspace``. Rows are read in chunks of
``CHUNK`` cases and written to a streaming (write-only) workbook, so 100k+ cases fit in memory.

Definitions (each row; see ``LedgerRow``):

- the current round is the case's latest dispatch; 承办单号, 牵头单位, 协办单位, 交办时间 and
  办理期限 are that round's (办理期限 includes an approved extension, 第十四条);
- 答复时间: when the lead unit's signed reply reached the centre (第十一条);
- 是否逾期: a case with a unit (办理中) past its due date today, or a reply that reached the centre
  after its due date (第十条, 第十一条); a case not dispatched, declined or sent back for re-dispatch
  is never overdue;
- 是否延期: an extension was approved for an assignment of the case in any round (第十四条);
- 是否退办: a unit's return was accepted in any round (第十五条).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.cases.models import Assignment, Case, TimelineEntry
from app.cases.vocab import BOARDS, CASE_STATES, CATEGORIES
from app.errors import InvalidInput
from app.security.spreadsheet import text_cell
from app.settings import get_settings
from app.tenants.models import Workspace
from app.tenants.scope import cross_workspace
from app.workflows.deadlines import is_overdue, local_date

CHUNK = 1000
DbRow = Any  # a Row of selected columns, read by attribute name
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"
YES, NO = "是", "否"

# (header, column width); the order of the columns of sheet 台账.
COLUMNS: tuple[tuple[str, float], ...] = (
    ("序号", 6),
    ("留言编号", 18),
    ("标题", 40),
    ("留言时间", 17),
    ("板块", 14),
    ("类别", 8),
    ("领域/主题", 14),
    ("地区", 12),
    ("状态", 12),
    ("承办单号", 18),
    ("牵头单位", 24),
    ("协办单位", 30),
    ("交办时间", 17),
    ("办理期限", 12),
    ("答复时间", 17),
    ("是否逾期", 9),
    ("是否延期", 9),
    ("是否退办", 9),
    ("发布时间", 17),
)
UNIT_SUMMARY_HEADER = ("承办单位", "交办件数", "牵头件数", "协办件数", "已答复", "逾期", "延期", "退办")
CATEGORY_SUMMARY_HEADER = ("类别", "件数", "已交办", "已答复", "逾期", "延期", "退办")
SUMMARY_NOTE = "注：一件留言由多个单位办理的，各单位分别计数；合计按件计算，不重复计数。"


@dataclass
class LedgerRow:
    """One case as the ledger shows it, with the per-unit facts the summary needs."""

    case_id: int
    source_id: str
    title: str
    posted_at: datetime
    board: str
    category: str
    topic: str
    region: str
    state: str
    sheet_number: str
    lead_unit_id: int | None  # of the current round
    co_unit_ids: list[int]  # of the current round
    dispatched_at: datetime | None
    due_date: date | None
    replied_at: datetime | None
    reply_unit_id: int | None
    published_at: datetime | None
    overdue: bool
    extended: bool
    returned: bool
    # Every unit that held an assignment of the case, in any round, and in which role.
    lead_units: set[int] = field(default_factory=set)
    co_units: set[int] = field(default_factory=set)
    extended_units: set[int] = field(default_factory=set)
    returned_units: set[int] = field(default_factory=set)

    @property
    def units(self) -> set[int]:
        return self.lead_units | self.co_units


# --- reading --------------------------------------------------------------------------------------


def period_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in Tongliao's time, as UTC instants."""
    zone = ZoneInfo(get_settings().timezone)
    low = datetime.combine(start, time.min, tzinfo=zone).astimezone(UTC)
    high = datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone).astimezone(UTC)
    return low, high


def check_filters(start: date, end: date, category: str | None, state: str | None) -> None:
    if start > end:
        raise InvalidInput("开始日期不能晚于结束日期。", field="start")
    if category is not None and category not in CATEGORIES:
        raise InvalidInput("没有这个类别。", field="category")
    if state is not None and state not in CASE_STATES:
        raise InvalidInput("没有这个状态。", field="state")


_CASE_COLUMNS = (
    Case.id,
    Case.source_id,
    Case.title,
    Case.posted_at,
    Case.board,
    Case.category,
    Case.topic,
    Case.region,
    Case.state,
    Case.sheet_number,
    Case.dispatched_at,
    Case.due_date,
    Case.reply_submitted_at,
    Case.reply_unit_id,
    Case.published_at,
)


def _ledger_rows(
    db: Session,
    *,
    start: date,
    end: date,
    unit_id: int | None,
    category: str | None,
    state: str | None,
    today: date,
) -> Iterator[LedgerRow]:
    """The ledger's rows in registration order, read ``CHUNK`` cases at a time.

    Runs inside the caller's ``cross_workspace`` block (the assignments are the units' rows).
    """
    low, high = period_bounds(start, end)
    stmt = (
        select(*_CASE_COLUMNS)
        .where(Case.registered_at >= low, Case.registered_at < high)
        .order_by(Case.registered_at, Case.id)
        .execution_options(yield_per=CHUNK)
    )
    if unit_id is not None:
        stmt = stmt.where(Case.id.in_(select(Assignment.case_id).where(Assignment.workspace_id == unit_id)))
    if category is not None:
        stmt = stmt.where(Case.category == category)
    if state is not None:
        stmt = stmt.where(Case.state == state)
    for chunk in db.execute(stmt).partitions():
        yield from _rows_of(db, chunk, today)


def _rows_of(db: Session, cases: Sequence[DbRow], today: date) -> Iterator[LedgerRow]:
    ids = [c.id for c in cases]
    by_case: dict[int, list[DbRow]] = defaultdict(list)
    for a in db.execute(
        select(
            Assignment.id,
            Assignment.case_id,
            Assignment.workspace_id,
            Assignment.round,
            Assignment.is_lead,
            Assignment.state,
            Assignment.sheet_number,
            Assignment.dispatched_at,
            Assignment.due_date,
        ).where(Assignment.case_id.in_(ids))
    ):
        by_case[a.case_id].append(a)
    extended = set(
        db.scalars(
            select(TimelineEntry.assignment_id).where(
                TimelineEntry.case_id.in_(ids), TimelineEntry.action == "extension_approved"
            )
        )
    )
    for case in cases:
        yield _row(case, by_case.get(case.id, []), extended, today)


def _row(case: DbRow, assignments: list[DbRow], extended: set[int | None], today: date) -> LedgerRow:
    latest = max((a.round for a in assignments), default=None)
    current = [a for a in assignments if a.round == latest]
    lead = next((a for a in current if a.is_lead), None)
    due = case.due_date or (lead.due_date if lead else None)
    row = LedgerRow(
        case_id=case.id,
        source_id=case.source_id,
        title=case.title,
        posted_at=case.posted_at,
        board=case.board,
        category=case.category,
        topic=case.topic,
        region=case.region,
        state=case.state,
        sheet_number=case.sheet_number or (lead.sheet_number if lead else ""),
        lead_unit_id=lead.workspace_id if lead else None,
        co_unit_ids=sorted(a.workspace_id for a in current if not a.is_lead),
        dispatched_at=lead.dispatched_at if lead else case.dispatched_at,
        due_date=due,
        replied_at=case.reply_submitted_at,
        reply_unit_id=case.reply_unit_id if case.reply_submitted_at else None,
        published_at=case.published_at,
        overdue=_overdue(case.state, due, case.reply_submitted_at, today),
        extended=False,
        returned=False,
        lead_units={a.workspace_id for a in assignments if a.is_lead},
        co_units={a.workspace_id for a in assignments if not a.is_lead},
        extended_units={a.workspace_id for a in assignments if a.id in extended},
        returned_units={a.workspace_id for a in assignments if a.state == "returned"},
    )
    row.extended = bool(row.extended_units)
    row.returned = bool(row.returned_units)
    return row


def _overdue(state: str, due: date | None, replied_at: datetime | None, today: date) -> bool:
    if state == "assigned":  # with the units now (also a reply sent back to them, 第十九条)
        return is_overdue(due, today)
    if state in ("under_review", "published", "archived") and replied_at is not None:
        return is_overdue(due, local_date(replied_at))
    return False  # not dispatched, declined, or returned and waiting for re-dispatch


# --- the workbook ---------------------------------------------------------------------------------


PROGRESS_EVERY = 1000


def build_ledger(
    db: Session,
    *,
    start: date,
    end: date,
    unit_id: int | None = None,
    category: str | None = None,
    state: str | None = None,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> bytes:
    """The ledger of [start, end] as .xlsx bytes: sheets 台账 and 汇总 (see the module docstring).

    ``today`` (default: today in Tongliao) decides what is overdue among the cases still open;
    ``progress`` is told the number of rows written, every ``PROGRESS_EVERY`` rows.
    """
    check_filters(start, end, category, state)
    today = today or local_date(datetime.now(UTC))
    book = Workbook(write_only=True)
    summary = Summary()
    # The centre's ledger reads its cases with the units' assignments (the units' workspaces).
    with cross_workspace(db):
        units = {w.id: w.name for w in db.execute(select(Workspace.id, Workspace.name))}
        rows = _ledger_rows(
            db, start=start, end=end, unit_id=unit_id, category=category, state=state, today=today
        )
        title = f"通辽市人民网地方领导留言板留言办理台账（{start}至{end}）"
        _write_ledger(book.create_sheet("台账"), title, rows, units, summary, progress)
    filters = _describe_filters(units, unit_id, category, state)
    _write_summary(book.create_sheet("汇总"), start, end, filters, summary, units)
    out = BytesIO()
    book.save(out)
    return out.getvalue()


def _write_ledger(
    ws: WriteOnlyWorksheet,
    title: str,
    rows: Iterable[LedgerRow],
    units: dict[int, str],
    summary: Summary,
    progress: Callable[[int], None] | None = None,
) -> None:
    last = get_column_letter(len(COLUMNS))
    for i, (_, width) in enumerate(COLUMNS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "D3"  # title and header rows, 序号 / 留言编号 / 标题 stay in view
    ws.page_setup.orientation = "landscape"
    ws.append([_title_cell(ws, title)])
    ws.merged_cells.add(f"A1:{last}1")
    ws.append([_header_cell(ws, name) for name, _ in COLUMNS])
    cells = _RowCells(ws, units)
    count = 0
    for count, row in enumerate(rows, start=1):
        summary.add(row)
        ws.append(cells.of(count, row))
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
    ws.auto_filter.ref = f"A2:{last}{count + 2}"


class _RowCells:
    """The cells of one ledger row. The date cells are made once per column and refilled for each
    row: ``append`` writes a row out before it returns, and a styled cell costs more than the rest
    of the row (100k rows: see the module docstring)."""

    def __init__(self, ws: WriteOnlyWorksheet, units: dict[int, str]) -> None:
        self.ws = ws
        self.units = units
        self.zone = ZoneInfo(get_settings().timezone)
        self.moments = [_formatted(ws, DATETIME_FORMAT) for _ in range(4)]
        self.day = _formatted(ws, DATE_FORMAT)

    def of(self, number: int, row: LedgerRow) -> list[Any]:
        posted, dispatched, replied, published = (
            self._moment(cell, value)
            for cell, value in zip(
                self.moments,
                (row.posted_at, row.dispatched_at, row.replied_at, row.published_at),
                strict=True,
            )
        )
        cells = [
            number,
            text_cell(self.ws, row.source_id),
            text_cell(self.ws, row.title),
            posted,
            BOARDS.get(row.board, row.board),
            CATEGORIES.get(row.category, row.category),
            text_cell(self.ws, row.topic),
            text_cell(self.ws, row.region),
            CASE_STATES.get(row.state, row.state),
            row.sheet_number,
            text_cell(self.ws, self.units.get(row.lead_unit_id, "") if row.lead_unit_id else ""),
            text_cell(self.ws, "、".join(self.units.get(u, str(u)) for u in row.co_unit_ids)),
            dispatched,
            _fill(self.day, row.due_date),
            replied,
            YES if row.overdue else NO,
            YES if row.extended else NO,
            YES if row.returned else NO,
            published,
        ]
        return [None if value == "" else value for value in cells]  # an empty cell, not an empty string

    def _moment(self, cell: WriteOnlyCell, value: datetime | None) -> WriteOnlyCell | None:
        """A real Excel date-time in Tongliao's time (Excel has no time zones)."""
        if value is None:
            return None
        return _fill(cell, value.astimezone(self.zone).replace(tzinfo=None, microsecond=0))


def _formatted(ws: WriteOnlyWorksheet, number_format: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws)
    cell.number_format = number_format
    return cell


def _fill(cell: WriteOnlyCell, value: date | None) -> WriteOnlyCell | None:
    if value is None:
        return None
    cell.value = value  # keeps the cell's date format (openpyxl only replaces a non-date format)
    return cell


_BOLD = Font(bold=True)
_HEADER_FILL = PatternFill("solid", fgColor="DDE4EE")
_CENTRE = Alignment(horizontal="center", vertical="center", wrap_text=True)


def _title_cell(ws: WriteOnlyWorksheet, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=text)
    cell.font = Font(bold=True, size=14)
    cell.alignment = Alignment(horizontal="center", vertical="center")
    return cell


def _header_cell(ws: WriteOnlyWorksheet, text: str) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=text)
    cell.font = _BOLD
    cell.fill = _HEADER_FILL
    cell.alignment = _CENTRE
    return cell


def _bold(ws: WriteOnlyWorksheet, value: Any) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=value)
    cell.font = _BOLD
    return cell


# --- the summary ----------------------------------------------------------------------------------


class Summary:
    """Totals of the ledger's rows, by unit and by category, gathered while the rows stream past.

    A unit counts every row it holds an assignment in; 合计 counts each row once.
    """

    def __init__(self) -> None:
        self.by_unit: dict[int, Counter[str]] = defaultdict(Counter)
        self.by_category: dict[str, Counter[str]] = defaultdict(Counter)
        self.total: Counter[str] = Counter()

    def add(self, row: LedgerRow) -> None:
        facts = {
            "rows": True,
            "assigned": bool(row.units),
            "lead": bool(row.lead_units),
            "co": bool(row.co_units),
            "replied": row.replied_at is not None,
            "overdue": row.overdue,
            "extended": row.extended,
            "returned": row.returned,
        }
        self.total.update(k for k, v in facts.items() if v)
        self.by_category[row.category].update(k for k, v in facts.items() if v)
        for unit in row.units:
            self.by_unit[unit].update(
                k
                for k, v in {
                    "assigned": True,
                    "lead": unit in row.lead_units,
                    "co": unit in row.co_units,
                    "replied": unit == row.reply_unit_id,
                    "overdue": row.overdue and unit == row.lead_unit_id,
                    "extended": unit in row.extended_units,
                    "returned": unit in row.returned_units,
                }.items()
                if v
            )


def _write_summary(
    ws: WriteOnlyWorksheet,
    start: date,
    end: date,
    filters: str,
    summary: Summary,
    units: dict[int, str],
) -> None:
    ws.column_dimensions["A"].width = 30
    for letter in "BCDEFGH":
        ws.column_dimensions[letter].width = 11
    ws.append([_title_cell(ws, f"留言办理情况汇总（{start}至{end}）")])
    ws.merged_cells.add("A1:H1")
    ws.append([f"筛选条件：{filters}"])
    ws.append([])
    ws.append([_bold(ws, "按承办单位")])
    ws.append([_header_cell(ws, h) for h in UNIT_SUMMARY_HEADER])
    unit_measures = ("assigned", "lead", "co", "replied", "overdue", "extended", "returned")
    for unit in sorted(summary.by_unit, key=lambda u: (units.get(u, ""), u)):
        counts = summary.by_unit[unit]
        ws.append([text_cell(ws, units.get(unit, str(unit))), *(counts[m] for m in unit_measures)])
    ws.append([_bold(ws, "合计"), *(_bold(ws, summary.total[m]) for m in unit_measures)])
    ws.append([])
    ws.append([_bold(ws, "按类别")])
    ws.append([_header_cell(ws, h) for h in CATEGORY_SUMMARY_HEADER])
    category_measures = ("rows", "assigned", "replied", "overdue", "extended", "returned")
    known = [c for c in CATEGORIES if c in summary.by_category] + sorted(
        c for c in summary.by_category if c not in CATEGORIES
    )
    for category in known:
        counts = summary.by_category[category]
        ws.append([CATEGORIES.get(category, category), *(counts[m] for m in category_measures)])
    ws.append([_bold(ws, "合计"), *(_bold(ws, summary.total[m]) for m in category_measures)])
    ws.append([])
    ws.append([SUMMARY_NOTE])


def _describe_filters(
    units: dict[int, str], unit_id: int | None, category: str | None, state: str | None
) -> str:
    parts = []
    if unit_id is not None:
        parts.append(f"承办单位 {units.get(unit_id, unit_id)}")
    if category is not None:
        parts.append(f"类别 {CATEGORIES[category]}")
    if state is not None:
        parts.append(f"状态 {CASE_STATES[state]}")
    return "；".join(parts) or "全部留言"
