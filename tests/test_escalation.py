"""提醒单 → 催办单 → 督办单 (第十三条, 第十九条) on exactly the right working days, once each."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from app.cases.models import Assignment
from app.db import system_session
from app.escalation.models import Escalation, Notification
from app.escalation.services import rungs_due, sweep
from tests.helpers import sign_in


def test_rungs_follow_the_working_days_around_a_due_date() -> None:
    due = date(2026, 2, 26)  # Thursday after the Spring Festival
    assert rungs_due(date(2026, 2, 24), due) == []
    assert rungs_due(date(2026, 2, 25), due) == ["reminder"]  # the working day before (第十三条)
    assert rungs_due(date(2026, 2, 26), due) == ["reminder"]
    assert rungs_due(date(2026, 2, 27), due) == ["urge"]  # first overdue working day
    assert rungs_due(date(2026, 2, 28), due) == ["urge"]  # 调休 Saturday: a second overdue working day
    assert rungs_due(date(2026, 3, 1), due) == ["urge"]  # Sunday: still two
    assert rungs_due(date(2026, 3, 2), due) == ["urge", "supervise"]  # three overdue working days
    # Before a holiday the reminder comes on the last working day before it.
    assert rungs_due(date(2026, 2, 13), date(2026, 2, 24)) == []
    assert rungs_due(date(2026, 2, 14), date(2026, 2, 24)) == ["reminder"]


def test_a_simulated_fortnight_issues_each_rung_once_on_its_day(demo, make_client) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        # The demo's open lead assignments, set to known due dates for the simulation.
        open_rows = list(
            db.scalars(select(Assignment).where(Assignment.state == "pending", Assignment.is_lead.is_(True)))
        )
        assert len(open_rows) >= 3
        heating, road, invoice = open_rows[:3]
        heating.due_date, road.due_date, invoice.due_date = (
            date(2026, 12, 4),
            date(2026, 12, 8),
            date(2026, 12, 10),
        )
        invoice.state = "submitted"  # test set-up: this one was answered in time
        ids = (heating.id, road.id, invoice.id)
    issued: dict[tuple[int, str], date] = {}
    day = date(2026, 11, 30)
    while day <= date(2026, 12, 13):
        for _ in range(2):  # the sweep running twice a day changes nothing the second time
            sweep(day)
        with system_session() as db:
            for e in db.scalars(select(Escalation)):
                issued.setdefault((e.assignment_id, e.rung), e.issued_on)
        day += timedelta(days=1)
    h, r, _answered = ids
    assert issued == {
        (h, "reminder"): date(2026, 12, 3),
        (h, "urge"): date(2026, 12, 7),
        (h, "supervise"): date(2026, 12, 9),
        (r, "reminder"): date(2026, 12, 7),
        (r, "urge"): date(2026, 12, 9),
        (r, "supervise"): date(2026, 12, 11),
    }
    with system_session() as db:
        assert len(db.scalars(select(Escalation)).all()) == 6  # once each
        numbers = {e.number for e in db.scalars(select(Escalation))}
        assert "提醒〔2026〕1号" in numbers and "督办〔2026〕2号" in numbers
        heating_notes = db.scalars(select(Notification).where(Notification.link == f"/inbox/{h}")).all()
        assert len(heating_notes) == 3  # to the unit's principal, one per rung
    principal = make_client()
    sign_in(principal, "horqin.principal")
    page = principal.get(f"/inbox/{h}").text
    assert "提醒单" in page and "催办单" in page and "督办单" in page
    bell = principal.get("/ws").text
    assert 'aria-label="3 条未读"' in bell
    notes = principal.get("/notifications").text
    assert "【督办单】" in notes and "明仁小区供暖温度不达标" in notes
    # Another unit's principal sees none of it.
    other = make_client()
    sign_in(other, "naiman.principal")
    assert "明仁小区" not in other.get("/notifications").text


def test_overdue_cases_show_as_overdue_to_the_centre_and_the_supervision_office(make_client) -> None:  # type: ignore[no-untyped-def]
    from app.cases.models import Case

    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == "TL-2026-110301"))
        assert case is not None and case.state == "assigned"
        case.due_date = date(2026, 11, 2)  # test set-up: long past
        case_id = case.id
    clerk, supervisor = make_client(), make_client()
    sign_in(clerk, "zx.clerk")
    sign_in(supervisor, "dc.supervisor")
    for client, url in ((clerk, "/cases"), (clerk, f"/cases/{case_id}"), (supervisor, "/oversight")):
        page = client.get(url).text
        assert "逾期" in page, url
    with system_session() as db:
        db.get(Case, case_id).due_date = date(2099, 1, 1)  # type: ignore[union-attr]
    assert "逾期</strong>" not in clerk.get(f"/cases/{case_id}").text
