"""The ledger (台账): every case of a period in one workbook, as the centre's staff keep it
(app/documents/ledger.py). Expected rows are computed here from the raw tables, independently."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy import select

from app.cases.models import Assignment, Case, TimelineEntry
from app.cases.vocab import BOARDS, CASE_STATES, CATEGORIES
from app.db import system_session
from app.documents import ledger
from app.documents.ledger import build_ledger
from app.errors import InvalidInput
from app.tenants.models import Workspace

TZ = ZoneInfo("Asia/Shanghai")
HEADER = [name for name, _ in ledger.COLUMNS]
TAX = "国家税务总局通辽市税务局"


def _at(day: date, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    """A moment in Tongliao's time, as the aware UTC datetime the database holds."""
    return datetime.combine(day, time(hour, minute, second), tzinfo=TZ).astimezone(UTC)


@dataclass(frozen=True)
class Period:
    today: date
    start: date  # the first day of last month
    end: date  # today
    last_month_end: date
    units: dict[str, int]


@pytest.fixture()
def cases(demo: None) -> Period:
    """The demo cases (registered now) and, inserted through the ORM, the hard ones."""
    today = datetime.now(TZ).date()
    month_start = today.replace(day=1)
    last_month_end = month_start - timedelta(days=1)
    start = last_month_end.replace(day=1)
    with system_session() as db:
        units = {w.slug: w.id for w in db.scalars(select(Workspace))}
        centre = units["portal-centre"]
        serial = iter(range(1, 100))

        def case(source: str, registered: datetime, **kw: Any) -> Case:
            row = Case(
                workspace_id=centre,
                board=kw.pop("board", "mayor"),
                source_id=source,
                title=kw.pop("title", f"留言 {source}"),
                body="内容",
                posted_at=registered - timedelta(hours=5),
                category=kw.pop("category", "consult"),
                topic=kw.pop("topic", "城乡建设"),
                region=kw.pop("region", "科尔沁区"),
                registered_at=registered,
                **kw,
            )
            db.add(row)
            db.flush()
            return row

        def sheet(case: Case, unit: str, *, lead: bool = True, round: int = 1, **kw: Any) -> Assignment:
            row = Assignment(
                workspace_id=units[unit],
                case_id=case.id,
                round=round,
                is_lead=lead,
                sheet_number=kw.pop("sheet_number", case.sheet_number or f"通留〔2099〕{next(serial)}号"),
                lead_unit_name="",
                title=case.title,
                body=case.body,
                category=case.category,
                posted_at=case.posted_at,
                dispatched_at=kw.pop("dispatched_at", case.dispatched_at or case.registered_at),
                due_date=kw.pop("due_date", case.due_date or today),
                **kw,
            )
            db.add(row)
            db.flush()
            return row

        # Registered just before the period, at its first moment, and just after it.
        case("EDGE-BEFORE", _at(start - timedelta(days=1), 23, 59, 59))
        case("EDGE-FIRST", _at(start, 0, 0, 30), category="help")  # still the previous day in UTC
        case("EDGE-AFTER", _at(today + timedelta(days=1), 0, 0, 10))
        # Registered on the last evening of last month, dispatched and answered this month.
        cross = case(
            "CROSS-MONTH",
            _at(last_month_end, 23, 30),
            category="complain",
            state="published",
            sheet_number="通留〔2099〕1号",
            dispatched_at=_at(month_start, 9),
            due_date=month_start + timedelta(days=7),
            reply_submitted_at=_at(month_start, 16),
            reply_unit_id=units["horqin"],
            published_at=_at(month_start, 17),
        )
        sheet(cross, "horqin", state="closed")
        sheet(cross, "housing", lead=False, state="closed")
        # With a unit, and past its due date.
        late = case(
            "OVERDUE",
            _at(today - timedelta(days=20)),
            state="assigned",
            sheet_number="通留〔2099〕2号",
            dispatched_at=_at(today - timedelta(days=19)),
            due_date=today - timedelta(days=3),
        )
        sheet(late, "kailu", state="handling")
        # Answered, but after the due date.
        slow = case(
            "LATE-REPLY",
            _at(today - timedelta(days=15)),
            category="suggest",
            state="under_review",
            sheet_number="通留〔2099〕3号",
            dispatched_at=_at(today - timedelta(days=14)),
            due_date=today - timedelta(days=6),
            reply_submitted_at=_at(today - timedelta(days=4)),
            reply_unit_id=units["naiman"],
        )
        sheet(slow, "naiman", state="submitted")
        # An extension approved (第十四条); the co-unit's request was refused.
        extended = case(
            "EXTENDED",
            _at(today - timedelta(days=6)),
            category="suggest",
            state="assigned",
            sheet_number="通留〔2099〕4号",
            dispatched_at=_at(today - timedelta(days=5)),
            due_date=today + timedelta(days=2),
        )
        approved = sheet(extended, "education", state="handling", extension_days=2)
        sheet(extended, "health", lead=False, state="handling")
        db.add(
            TimelineEntry(
                workspace_id=units["education"],
                case_id=extended.id,
                assignment_id=approved.id,
                action="extension_approved",
            )
        )
        # Returned by the lead unit (第十五条) and dispatched again to another.
        again = case(
            "RETURNED",
            _at(today - timedelta(days=3)),
            category="help",
            state="assigned",
            sheet_number="通留〔2099〕6号",
            dispatched_at=_at(today - timedelta(days=2)),
            due_date=today + timedelta(days=5),
        )
        sheet(again, "horqin", state="returned", sheet_number="通留〔2099〕5号", due_date=today)
        sheet(again, "kailu", round=2, state="pending")
        sheet(again, "health", round=2, lead=False, state="pending")
        # Returned and waiting to be dispatched again: no sheet, no due date on the case.
        waiting = case("RETURNED-WAITING", _at(today - timedelta(days=2)), state="received")
        sheet(waiting, "tax", state="returned", due_date=today - timedelta(days=1))
        # A citizen's title that looks like a formula, with a control character Excel refuses.
        case("FORMULA", _at(today - timedelta(days=1)), category="other", title='=HYPERLINK("x","点我")\x07')
    return Period(today, start, today, last_month_end, units)


# --- the independent computation ---------------------------------------------------------------------


def _local(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(TZ).replace(tzinfo=None, microsecond=0)


def expected_rows(
    start: date,
    end: date,
    today: date,
    *,
    unit: int | None = None,
    category: str | None = None,
    state: str | None = None,
) -> list[list[Any]]:
    with system_session() as db:
        cases = sorted(db.scalars(select(Case)), key=lambda c: (c.registered_at, c.id))
        assignments = list(db.scalars(select(Assignment)))
        approved = set(
            db.scalars(
                select(TimelineEntry.assignment_id).where(TimelineEntry.action == "extension_approved")
            )
        )
        names = {w.id: w.name for w in db.scalars(select(Workspace))}
    rows = []
    for case in cases:
        mine = [a for a in assignments if a.case_id == case.id]
        if not start <= case.registered_at.astimezone(TZ).date() <= end:
            continue
        if unit is not None and unit not in {a.workspace_id for a in mine}:
            continue
        if (category and case.category != category) or (state and case.state != state):
            continue
        current = [a for a in mine if a.round == max(a.round for a in mine)] if mine else []
        lead = [a for a in current if a.is_lead]
        due = case.due_date or (lead[0].due_date if lead else None)
        if case.state == "assigned":
            overdue = due is not None and today > due
        elif case.reply_submitted_at and case.state in ("under_review", "published", "archived"):
            overdue = due is not None and case.reply_submitted_at.astimezone(TZ).date() > due
        else:
            overdue = False
        co = sorted((a for a in current if not a.is_lead), key=lambda a: a.workspace_id)
        rows.append(
            [
                len(rows) + 1,
                case.source_id,
                "".join(ch for ch in case.title if ch >= " ") or None,
                _local(case.posted_at),
                BOARDS[case.board],
                CATEGORIES[case.category],
                case.topic or None,
                case.region or None,
                CASE_STATES[case.state],
                case.sheet_number or (lead[0].sheet_number if lead else None),
                names[lead[0].workspace_id] if lead else None,
                "、".join(names[a.workspace_id] for a in co) or None,
                _local(lead[0].dispatched_at if lead else case.dispatched_at),
                datetime.combine(due, time()) if due else None,  # openpyxl reads dates back as datetimes
                _local(case.reply_submitted_at),
                "是" if overdue else "否",
                "是" if any(a.id in approved for a in mine) else "否",
                "是" if any(a.state == "returned" for a in mine) else "否",
                _local(case.published_at),
            ]
        )
    return rows


# --- reading the workbook ---------------------------------------------------------------------------


def _open(data: bytes) -> tuple[Worksheet, Worksheet]:
    book = load_workbook(BytesIO(data))
    assert book.sheetnames == ["台账", "汇总"]
    return book["台账"], book["汇总"]


def _rows(sheet: Worksheet) -> list[list[Any]]:
    return [[cell.value for cell in row] for row in sheet.iter_rows(min_row=3, max_col=len(HEADER))]


def _summary_table(sheet: Worksheet, heading: str) -> tuple[dict[str, list[int]], list[int]]:
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    at = next(i for i, row in enumerate(values) if row[0] == heading)
    lines: dict[str, list[int]] = {}
    for row in values[at + 2 :]:
        numbers = [v for v in row[1:] if v is not None]
        if row[0] == "合计":
            return lines, numbers
        lines[row[0]] = numbers
    raise AssertionError(f"no 合计 under {heading}")


def _column(rows: list[list[Any]], name: str) -> list[Any]:
    return [row[HEADER.index(name)] for row in rows]


# --- the tests --------------------------------------------------------------------------------------


def test_the_ledger_holds_exactly_the_cases_registered_in_the_period(cases: Period) -> None:
    data = build_ledger_for(cases)
    sheet, _ = _open(data)
    rows = _rows(sheet)
    assert rows == expected_rows(cases.start, cases.end, cases.today)
    ids = _column(rows, "留言编号")
    assert {"EDGE-FIRST", "CROSS-MONTH", "OVERDUE", "RETURNED", "TL-2026-110301"} <= set(ids)
    assert not {"EDGE-BEFORE", "EDGE-AFTER"} & set(ids)
    assert len(ids) == 7 + 8  # the demo's seven messages and ours inside the period


def build_ledger_for(period: Period, **filters: Any) -> bytes:
    with system_session() as db:
        return build_ledger(db, start=period.start, end=period.end, today=period.today, **filters)


def test_the_hard_cases_read_as_the_regulation_says(cases: Period) -> None:
    sheet, _ = _open(build_ledger_for(cases))
    by_id = {row[1]: dict(zip(HEADER, row, strict=True)) for row in _rows(sheet)}
    cross = by_id["CROSS-MONTH"]
    assert cross["牵头单位"] == "科尔沁区人民政府" and cross["协办单位"] == "通辽市住房和城乡建设局"
    assert (cross["状态"], cross["是否逾期"]) == ("已公开答复", "否")
    assert cross["留言时间"].date() <= cases.last_month_end < cross["答复时间"].date()
    assert by_id["OVERDUE"]["是否逾期"] == "是"
    assert by_id["LATE-REPLY"]["是否逾期"] == "是"
    assert (by_id["EXTENDED"]["是否延期"], by_id["EXTENDED"]["是否逾期"]) == ("是", "否")
    returned = by_id["RETURNED"]
    assert (returned["是否退办"], returned["牵头单位"], returned["承办单号"]) == (
        "是",
        "开鲁县人民政府",
        "通留〔2099〕6号",
    )
    waiting = by_id["RETURNED-WAITING"]
    assert (waiting["状态"], waiting["是否退办"], waiting["是否逾期"]) == ("待交办", "是", "否")
    assert waiting["牵头单位"] == TAX and waiting["承办单号"] is not None and waiting["办理期限"] is not None
    declined = next(r for r in by_id.values() if r["状态"] == "不予受理")
    assert declined["牵头单位"] is None and declined["是否逾期"] == "否"
    published = by_id["TL-2026-110306"]
    assert published["答复时间"] is not None and published["发布时间"] is not None


def test_a_citizens_text_never_becomes_a_formula(cases: Period) -> None:
    sheet, _ = _open(build_ledger_for(cases))
    cell = next(row[2] for row in sheet.iter_rows(min_row=3) if row[1].value == "FORMULA")
    assert cell.data_type == "s"
    assert cell.value == '=HYPERLINK("x","点我")'


def test_the_period_is_counted_in_tongliao_dates(cases: Period) -> None:
    with system_session() as db:
        data = build_ledger(db, start=cases.start, end=cases.last_month_end, today=cases.today)
    ids = _column(_rows(_open(data)[0]), "留言编号")
    assert ids == ["EDGE-FIRST", "CROSS-MONTH"]


@pytest.mark.parametrize(
    "filters",
    [
        {"unit": "horqin"},
        {"unit": "kailu"},
        {"unit": "health"},
        {"category": "suggest"},
        {"category": "help"},
        {"state": "assigned"},
        {"state": "declined"},
        {"unit": "horqin", "category": "complain", "state": "published"},
        {"unit": "tax", "state": "published"},  # nothing
    ],
)
def test_filters_by_unit_category_and_state(cases: Period, filters: dict[str, str]) -> None:
    kw: dict[str, Any] = dict(filters)
    if "unit" in kw:
        kw["unit_id"] = cases.units[kw.pop("unit")]
    rows = _rows(_open(build_ledger_for(cases, **kw))[0])
    expected = expected_rows(
        cases.start,
        cases.end,
        cases.today,
        unit=kw.get("unit_id"),
        category=kw.get("category"),
        state=kw.get("state"),
    )
    assert rows == expected
    if filters == {"unit": "horqin"}:
        # Lead now, lead earlier and returned it, and the demo's heating complaint.
        assert set(_column(rows, "留言编号")) == {"CROSS-MONTH", "RETURNED", "TL-2026-110301"}


def test_the_summary_totals_equal_the_rows(cases: Period) -> None:
    sheet, summary = _open(build_ledger_for(cases))
    rows = _rows(sheet)
    flags = [_column(rows, name).count("是") for name in ("是否逾期", "是否延期", "是否退办")]
    dispatched = sum(1 for v in _column(rows, "牵头单位") if v)
    replied = sum(1 for v in _column(rows, "答复时间") if v)
    units, total = _summary_table(summary, "按承办单位")
    # 合计 counts each case once: 交办件数, 牵头件数, 协办件数, 已答复, 逾期, 延期, 退办.
    assert total[0] == total[1] == dispatched
    assert total[3:] == [replied, *flags]
    categories, category_total = _summary_table(summary, "按类别")
    assert category_total == [len(rows), dispatched, replied, *flags]
    assert {label: line[0] for label, line in categories.items()} == dict(Counter(_column(rows, "类别")))
    for column in range(6):
        assert sum(line[column] for line in categories.values()) == category_total[column]
    # A unit's 交办件数 is the size of its own ledger; its 逾期 are its late cases as lead unit.
    with system_session() as db:
        ids = {w.name: w.id for w in db.scalars(select(Workspace))}
    for name, line in units.items():
        own = _rows(_open(build_ledger_for(cases, unit_id=ids[name]))[0])
        assert line[0] == len(own), name
        late = [
            r for r in rows if r[HEADER.index("牵头单位")] == name and r[HEADER.index("是否逾期")] == "是"
        ]
        assert line[4] == len(late), name
    assert units["科尔沁区人民政府"] == [3, 3, 0, 1, 0, 0, 1]  # lead on three, returned one, answered one
    assert units["开鲁县人民政府"] == [2, 2, 0, 0, 1, 0, 0]
    assert units["通辽市教育局"] == [2, 2, 0, 1, 0, 1, 0]
    assert units["通辽市卫生健康委员会"] == [2, 0, 2, 0, 0, 0, 0]


def test_dates_are_excel_dates_and_the_sheet_is_set_up_for_work(cases: Period) -> None:
    sheet, summary = _open(build_ledger_for(cases))
    assert sheet["A1"].value == f"通辽市人民网地方领导留言板留言办理台账（{cases.start}至{cases.end}）"
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:S1"]
    assert [c.value for c in sheet[2]] == HEADER
    assert all(c.font.bold for c in sheet[2])
    assert sheet.freeze_panes == "D3"
    count = len(_rows(sheet))
    assert sheet.auto_filter.ref == f"A2:S{count + 2}"
    assert sheet.column_dimensions["C"].width == 40
    for row in sheet.iter_rows(min_row=3):
        cells = dict(zip(HEADER, row, strict=True))
        assert cells["留言时间"].is_date and cells["留言时间"].number_format == "yyyy-mm-dd hh:mm"
        for name in ("交办时间", "答复时间", "发布时间"):
            assert cells[name].value is None or cells[name].is_date
        if cells["办理期限"].value is not None:
            assert cells["办理期限"].is_date and cells["办理期限"].number_format == "yyyy-mm-dd"
    assert summary["A2"].value == "筛选条件：全部留言"


def test_reading_in_small_chunks_gives_the_same_rows(cases: Period, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = _rows(_open(build_ledger_for(cases))[0])
    monkeypatch.setattr(ledger, "CHUNK", 2)
    assert _rows(_open(build_ledger_for(cases))[0]) == whole


def test_an_empty_period_gives_an_empty_ledger(cases: Period) -> None:
    with system_session() as db:
        data = build_ledger(db, start=date(2001, 1, 1), end=date(2001, 1, 31))
    sheet, summary = _open(data)
    assert _rows(sheet) == []
    assert sheet.auto_filter.ref == "A2:S2"
    _, total = _summary_table(summary, "按承办单位")
    assert total == [0] * 7


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"start": date(2026, 2, 1), "end": date(2026, 1, 1)}, "start"),
        ({"category": "gossip"}, "category"),
        ({"state": "lost"}, "state"),
    ],
)
def test_impossible_filters_are_refused(demo: None, kw: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"start": date(2026, 1, 1), "end": date(2026, 12, 31), **kw}
    with system_session() as db, pytest.raises(InvalidInput) as refused:
        build_ledger(db, **args)
    assert refused.value.field == field
