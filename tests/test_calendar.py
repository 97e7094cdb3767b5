"""The official working-day calendar: holidays, 调休 make-up days, unknown years, the admin's year."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import delete

from app.calendar import days
from app.calendar.models import CalendarYear
from app.cli import main
from app.db import system_session
from app.demo import demo_signature_png
from app.workflows.deadlines import add_working_days, reply_deadline
from tests.helpers import post, sign_in


@pytest.fixture()
def no_2027(demo):  # type: ignore[no-untyped-def]
    """2027 is not known (chinesecalendar stops at 2026); whatever a test loads is removed after."""
    yield
    with system_session() as db:
        db.execute(delete(CalendarYear).where(CalendarYear.year == 2027))
    days.invalidate()


@pytest.mark.parametrize(
    ("received", "due", "note"),
    [
        # Spring Festival 2026: 2月14日 (Saturday) is a working day, 15–23 are holidays.
        (date(2026, 2, 12), date(2026, 2, 26), "（2月14日调休上班；2月15日至23日春节放假）"),
        # Labour Day 2026: 1–5 May off, Saturday 9 May worked.
        (date(2026, 4, 29), date(2026, 5, 9), "（5月1日至5日劳动节放假；5月9日调休上班）"),
        # National Day 2026: 1–7 October off (with Mid-autumn), Saturday 10 October worked.
        (date(2026, 9, 28), date(2026, 10, 10), "10月10日调休上班"),
        # An ordinary week: Friday → next Friday.
        (date(2026, 11, 27), date(2026, 12, 4), ""),
    ],
)
def test_reply_due_on_the_official_calendar(demo, received: date, due: date, note: str) -> None:  # type: ignore[no-untyped-def]
    result = reply_deadline(received)
    assert result.due == due and not result.provisional
    assert note in result.explanation
    assert result.explanation.startswith(f"收到 {received.month}月{received.day}日 → 第5个工作日")


def test_adding_working_days_agrees_with_counting_them_one_by_one() -> None:
    """The calendar's index (two list lookups per due date) gives what counting day by day gives,
    for every day of the years around a gap: 2024 unknown, so a deadline reaching into it, or past
    it, is counted on weekdays and provisional, never skipped silently."""
    from datetime import timedelta

    from app.calendar.days import DayRule, WorkCalendar
    from app.calendar.services import package_years

    data = {year: entries for year, entries in package_years().items() if year != 2024}
    calendar = WorkCalendar(data, {d: DayRule(w, n) for entries in data.values() for d, w, n in entries})

    def counted(start: date, n: int) -> tuple[date, bool]:
        current, seen, provisional = start, 0, False
        while seen < n:
            current += timedelta(days=1)
            provisional = provisional or not calendar.is_known(current)
            seen += calendar.is_working_day(current)
        return current, provisional

    day = date(2022, 12, 1)
    while day <= date(2026, 12, 31):
        for n in (1, 3, 5, 8):
            assert calendar.add(day, n) == counted(day, n), (day, n)
        day += timedelta(days=1)
    # Backwards from a working day: the working days before it (the tests set up overdue dates so).
    assert calendar.add(date(2026, 2, 24), -1) == (date(2026, 2, 14), False)  # before 春节, 调休 Saturday
    assert calendar.add(date(2026, 10, 9), -3) == (date(2026, 9, 29), False)  # over 国庆
    assert calendar.add(date(2023, 12, 29), 5)[1]  # into the unknown 2024: provisional
    assert calendar.add(date(2026, 12, 30), 5) == (date(2027, 1, 6), True)  # past the known years


def test_reminder_is_the_working_day_before_and_extension_at_most_three_more(demo) -> None:  # type: ignore[no-untyped-def]
    result = reply_deadline(date(2026, 2, 12))
    assert result.reminder == date(2026, 2, 25)
    assert result.extended_max == date(2026, 3, 2)  # 27 Feb, 28 Feb (调休), 2 Mar


def test_an_unknown_year_is_provisional_until_an_administrator_loads_it(no_2027, make_client) -> None:  # type: ignore[no-untyped-def]
    before = reply_deadline(date(2026, 12, 28))
    assert before.provisional and before.due == date(2027, 1, 4)
    assert "2027年放假安排尚未录入" in before.explanation
    admin = make_client()
    sign_in(admin, "sysadmin")
    warning = admin.get("/ws").text
    assert 'data-testid="calendar-warning"' in warning and "2027 年放假安排尚未录入" in warning
    bad = post(admin, "/admin/calendar", {"year": "2027", "holidays": "2027-13-01 元旦", "workdays": ""})
    assert bad.status_code == 422 and "日期不存在" in bad.text
    weekday = post(
        admin,
        "/admin/calendar",
        {"year": "2027", "holidays": "2027-01-01 元旦", "workdays": "2027-01-04 补班"},
    )
    assert weekday.status_code == 422 and "本是工作日" in weekday.text
    loaded = post(
        admin,
        "/admin/calendar",
        {
            "year": "2027",
            "holidays": "2027-01-01至2027-01-03 元旦\n2027-02-10至2027-02-17 春节",
            "workdays": "2027-02-07 春节\n2027-02-20 春节",
        },
    )
    assert loaded.status_code == 303
    days.invalidate()
    after = reply_deadline(date(2026, 12, 28))
    assert not after.provisional and after.due == date(2027, 1, 5)  # 1 January is now a holiday
    assert "1月1日至3日元旦放假" in after.explanation
    assert 'data-testid="calendar-warning"' not in admin.get("/ws").text
    assert add_working_days(date(2027, 2, 5), 3) == date(2027, 2, 9)  # Sunday 7 Feb is worked
    assert add_working_days(date(2027, 2, 9), 2) == date(2027, 2, 19)  # 10–17 Feb off


def test_only_the_system_administrator_keeps_the_calendar(no_2027, make_client) -> None:  # type: ignore[no-untyped-def]
    clerk = make_client()
    sign_in(clerk, "zx.admin")
    assert clerk.get("/admin/calendar").status_code == 403
    assert post(clerk, "/admin/calendar", {"year": "2027", "holidays": "2027-01-01 元旦"}).status_code == 403
    assert 'data-testid="calendar-warning"' not in clerk.get("/ws").text


def test_deadline_command_prints_json(demo) -> None:  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, ["deadline", "2026-02-12", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data == {
        "received": "2026-02-12",
        "due": "2026-02-26",
        "reminder": "2026-02-25",
        "extended_max": "2026-03-02",
        "provisional": False,
        "explanation": "收到 2月12日 → 第5个工作日 2月26日（2月14日调休上班；2月15日至23日春节放假）",
    }
    text = CliRunner().invoke(main, ["deadline", "2026-12-30"])
    assert "暂定" in text.output


def test_a_dispatch_over_a_holiday_gets_the_official_due_date(make_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from app.workflows import engine
    from tests.test_workflow_rules import MESSAGE, _case, _ws

    monkeypatch.setattr(engine, "utcnow", lambda: datetime(2026, 9, 28, 2, 0, tzinfo=UTC))
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    post(clerk, "/cases", {**MESSAGE, "source_id": "CAL-1", "posted_at": "2026-09-27 10:00"})
    case = _case("CAL-1")
    post(
        clerk,
        f"/cases/{case.id}/act/dispatch",
        {"lead_unit_id": str(_ws("horqin")), "version": str(case.version)},
    )
    assert _case("CAL-1").due_date == date(2026, 10, 10)


def _dispatched_on_28_december(make_client, monkeypatch, source_id: str):  # type: ignore[no-untyped-def]
    """A message registered and dispatched to 科尔沁区 on 28 December 2026, its due date in 2027."""
    return _dispatched_on(make_client, monkeypatch, source_id, datetime(2026, 12, 28, 2, 0, tzinfo=UTC))


def _dispatched_on(make_client, monkeypatch, source_id: str, moment: datetime):  # type: ignore[no-untyped-def]
    """A message registered and dispatched to 科尔沁区 at ``moment`` (the workflow's clock)."""
    from app.workflows import engine
    from tests.test_workflow_rules import MESSAGE, _case, _ws

    monkeypatch.setattr(engine, "utcnow", lambda: moment)
    clerk = make_client()
    sign_in(clerk, "zx.clerk")
    post(clerk, "/cases", {**MESSAGE, "source_id": source_id, "posted_at": "2026-11-20 10:00"})
    case = _case(source_id)
    post(
        clerk,
        f"/cases/{case.id}/act/dispatch",
        {"lead_unit_id": str(_ws("horqin")), "version": str(case.version)},
    )
    return case


def _load_2027(make_client) -> None:  # type: ignore[no-untyped-def]
    """The system administrator loads 2027 with 元旦 (1–3 January) as holidays."""
    admin = make_client()
    sign_in(admin, "sysadmin")
    post(
        admin, "/admin/calendar", {"year": "2027", "holidays": "2027-01-01至2027-01-03 元旦", "workdays": ""}
    )


def test_loading_a_year_recounts_the_provisional_due_dates_of_open_work(
    no_2027, make_client, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from tests.test_workflow_rules import _assignments, _case

    case = _dispatched_on_28_december(make_client, monkeypatch, "CAL-2")
    assert _case("CAL-2").due_date == date(2027, 1, 4)  # provisional: weekdays only
    assert "（暂定）" in make_client_inbox(make_client, "horqin.handler")
    _load_2027(make_client)
    assert _case("CAL-2").due_date == date(2027, 1, 5)
    assert _assignments(case.id)[0].due_date == date(2027, 1, 5)
    assert "（暂定）" not in make_client_inbox(make_client, "horqin.handler")


def test_loading_a_year_recounts_a_due_date_awaiting_the_centres_consent_to_an_explanation(
    no_2027, make_client, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """第十八条: a unit asking to answer with an explanation still owes its reply by the due date, so
    that date is counted again too when the year is loaded, and the inbox lists it as open work."""
    from tests.test_workflow_rules import _assignments, _case, act, to_signoff

    case = _dispatched_on_28_december(make_client, monkeypatch, "CAL-3")
    handler = make_client()
    sign_in(handler, "horqin.handler")
    (assignment,) = _assignments(case.id)
    assert act(handler, assignment.id, "receive").status_code == 303
    assert act(handler, assignment.id, "request_explanation", reason="涉及历史遗留问题").status_code == 303
    assert _assignments(case.id)[0].state == "explanation_requested"
    assert _assignments(case.id)[0].due_date == date(2027, 1, 4)  # provisional: weekdays only
    _load_2027(make_client)
    assert _assignments(case.id)[0].due_date == date(2027, 1, 5)
    assert _case("CAL-3").due_date == date(2027, 1, 5)
    # Listed with the open work, ahead of what the unit has finished (those come newest due first):
    # a message dispatched in late January 2027 and already answered (due later than this one).
    later = _dispatched_on(make_client, monkeypatch, "CAL-4", datetime(2027, 1, 20, 2, 0, tzinfo=UTC))
    (done,) = _assignments(later.id)
    principal = make_client()
    sign_in(principal, "horqin.principal")
    to_signoff(handler, done.id)
    assert act(principal, done.id, "sign", signature=demo_signature_png()).status_code == 303
    (done,) = _assignments(later.id)
    assert done.state == "submitted" and done.due_date > _assignments(case.id)[0].due_date
    rows = re.findall(r'<a href="/inbox/(\d+)">', make_client_inbox(make_client, "horqin.handler"))
    assert rows.index(str(assignment.id)) < rows.index(str(done.id))


def make_client_inbox(make_client, username: str) -> str:  # type: ignore[no-untyped-def]
    client = make_client()
    sign_in(client, username)
    days.invalidate()
    return str(client.get("/inbox").text)
