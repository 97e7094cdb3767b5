"""提醒单 → 催办单 → 督办单 (第十三条, 第十九条) on exactly the right working days, once each."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from app.accounts.models import User
from app.cases.models import Assignment
from app.db import system_session
from app.escalation.models import Escalation, Notification
from app.escalation.services import rungs_due, sweep
from app.tenants.models import Workspace
from tests.conftest import IS_POSTGRES
from tests.helpers import sign_in


def _pending_leads_due(day: date) -> list[Assignment]:
    """Test set-up: every pending lead assignment of the demo due on ``day``."""
    with system_session() as db:
        leads = list(
            db.scalars(select(Assignment).where(Assignment.is_lead.is_(True), Assignment.state == "pending"))
        )
        for a in leads:
            a.due_date = day
    return leads


def _one_lead_due(day: date) -> Assignment:
    """Test set-up: the demo's first pending lead assignment due on ``day``, every other one out of
    the way (due in March 2027)."""
    with system_session() as db:
        a = db.scalar(
            select(Assignment)
            .where(Assignment.is_lead.is_(True), Assignment.state == "pending")
            .order_by(Assignment.id)
            .limit(1)
        )
        assert a is not None
        for other in db.scalars(select(Assignment).where(Assignment.id != a.id)):
            other.due_date = date(2027, 3, 1)
        a.due_date = day
    return a


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
            db.scalars(
                select(Assignment)
                .where(Assignment.state == "pending", Assignment.is_lead.is_(True))
                .order_by(Assignment.id)  # the demo's order (PostgreSQL's heap order is not)
            )
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
    issued: dict[tuple[int, str, int], date] = {}
    day = date(2026, 11, 30)
    while day <= date(2026, 12, 13):
        for _ in range(2):  # the sweep running twice a day changes nothing the second time
            sweep(day, fan_out_now=True)
        with system_session() as db:
            for e in db.scalars(select(Escalation)):
                issued.setdefault((e.assignment_id, e.rung, e.ordinal), e.issued_on)
        day += timedelta(days=1)
    h, r, _answered = ids
    assert issued == {
        (h, "reminder", 1): date(2026, 12, 3),
        (h, "urge", 1): date(2026, 12, 7),
        (h, "urge", 2): date(2026, 12, 9),  # 催办 again after 2 more working days
        (h, "supervise", 1): date(2026, 12, 9),
        (r, "reminder", 1): date(2026, 12, 7),
        (r, "urge", 1): date(2026, 12, 9),
        (r, "urge", 2): date(2026, 12, 11),
        (r, "supervise", 1): date(2026, 12, 11),
    }
    with system_session() as db:
        assert len(db.scalars(select(Escalation)).all()) == 8  # once each
        numbers = {e.number for e in db.scalars(select(Escalation))}
        assert numbers >= {"提醒〔2026〕1号", "提醒〔2026〕2号", "催办〔2026〕4号", "督办〔2026〕2号"}
        assert "催办〔2026〕5号" not in numbers  # no gaps, no duplicates
        # The unit's principal is told of each rung once: alone when it is the unit's only rung of
        # the sweep, in one digest with the unit's other rungs of the sweep otherwise.
        principal_id = db.scalar(select(User.id).where(User.username == "horqin.principal"))
        notes = db.scalars(select(Notification).where(Notification.user_id == principal_id)).all()
        heating = select(Escalation.number).where(Escalation.assignment_id == h)
        heating_numbers = list(db.scalars(heating))
        assert len(heating_numbers) == 4
        for number in heating_numbers:
            assert sum(number in n.text for n in notes) == 1, number
        alone = [n for n in notes if n.link == f"/inbox/{h}"]
        assert [n.text[:5] for n in alone] == ["【提醒单】", "【催办单】"]  # 12月3日, 12月7日
        digest = [n for n in notes if "督办事项汇总" in n.text]
        assert len(digest) == 1 and digest[0].link == "/inbox"  # 12月9日: the 2nd 催办 and the 督办
        assert "催办单1件、督办单1件" in digest[0].text and "（第2次催办）" in digest[0].text
        unread = len(notes)
    principal = make_client()
    sign_in(principal, "horqin.principal")
    page = principal.get(f"/inbox/{h}").text
    assert "提醒单" in page and "催办单" in page and "督办单" in page and "催办单（第2次）" in page
    bell = principal.get("/ws").text
    assert f'aria-label="{unread} 条未读"' in bell
    notes_page = principal.get("/notifications").text
    assert "【督办事项汇总】" in notes_page and "明仁小区供暖温度不达标" in notes_page
    # Another unit's principal sees none of it.
    other = make_client()
    sign_in(other, "naiman.principal")
    assert "明仁小区" not in other.get("/notifications").text


def test_overdue_cases_show_as_overdue_to_the_centre_and_the_supervision_office(make_client) -> None:  # type: ignore[no-untyped-def]
    from app.cases.models import Case

    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == "TL-2026-110301"))
        assert case is not None and case.state == "assigned"
        lead = db.scalar(
            select(Assignment).where(Assignment.case_id == case.id, Assignment.is_lead.is_(True))
        )
        assert lead is not None and lead.state == "pending"
        case.due_date = lead.due_date = date(2026, 11, 2)  # test set-up: long past
        case_id, lead_id = case.id, lead.id
    clerk, supervisor, unit = make_client(), make_client(), make_client()
    sign_in(clerk, "zx.clerk")
    sign_in(supervisor, "dc.supervisor")
    sign_in(unit, "horqin.handler")
    details = (
        (clerk, f"/cases/{case_id}"),
        (supervisor, f"/oversight/{case_id}"),
        (unit, f"/inbox/{lead_id}"),
    )
    for client, url in ((clerk, "/cases"), (supervisor, "/oversight"), (unit, "/inbox"), *details):
        page = client.get(url).text
        assert "逾期" in page, url
    for client, url in details:
        assert '2026-11-02 <strong class="danger">逾期</strong>' in client.get(url).text, url
    with system_session() as db:
        db.get(Case, case_id).due_date = date(2099, 1, 1)  # type: ignore[union-attr]
        db.get(Assignment, lead_id).due_date = date(2099, 1, 1)  # type: ignore[union-attr]
    for client, url in details:
        assert "逾期</strong>" not in client.get(url).text, url


def _focus(due: date) -> tuple[int, int]:
    """Test set-up: the heating case's lead assignment falls due on ``due``; the other open
    assignments are moved out of the way. (assignment id, case id)"""
    from app.cases.models import Case

    with system_session() as db:
        case = db.scalar(select(Case).where(Case.source_id == "TL-2026-110301"))
        assert case is not None
        for a in db.scalars(select(Assignment).where(Assignment.is_lead.is_(True))):
            a.due_date = due if a.case_id == case.id else date(2027, 3, 1)
            if a.case_id == case.id:
                lead = a
        return lead.id, case.id


# --- thresholds set by the centre admin -------------------------------------------------------------


def test_repeated_urges_and_the_two_urges_without_result_rule() -> None:
    from app.escalation.services import Thresholds, plan

    due = date(2026, 12, 4)  # Friday
    t = Thresholds(urge_repeat_days=1, supervise_after_days=10, supervise_after_urges=2)
    assert plan(date(2026, 12, 7), due, t) == [("urge", 1)]
    # The next working day: a second 催办, and two 催办 without result call for 督办.
    assert plan(date(2026, 12, 8), due, t, urges=1, urges_without_result=1) == [("urge", 2), ("supervise", 1)]
    # A unit that answered after the first 催办 (then was sent back) has only one without result.
    assert plan(date(2026, 12, 8), due, t, urges=1, urges_without_result=0) == [("urge", 2)]
    # Never two 催办 in one sweep, even after the sweep could not run for days.
    assert plan(date(2026, 12, 11), due, t, urges=1, urges_without_result=0) == [("urge", 2)]
    # 0 = one 催办 per deadline.
    once = Thresholds(urge_repeat_days=0, supervise_after_days=10, supervise_after_urges=5)
    assert plan(date(2026, 12, 11), due, once, urges=1, urges_without_result=1) == []
    # The reminder two working days before, when the centre wants it earlier.
    early = Thresholds(reminder_days_before=2)
    assert plan(date(2026, 12, 2), due, early) == [("reminder", 1)]
    assert plan(date(2026, 12, 1), due, early) == []
    assert plan(date(2026, 12, 2), due, Thresholds()) == []


def test_urges_without_result_count_across_deadlines_until_the_unit_answers(demo) -> None:  # type: ignore[no-untyped-def]
    from app.escalation.services import Thresholds, set_thresholds

    with system_session() as db:
        a, *others = db.scalars(
            select(Assignment).where(Assignment.state == "pending", Assignment.is_lead.is_(True))
        )
        a.due_date = date(2026, 12, 4)
        for other in others:
            other.due_date = date(2027, 3, 1)  # test set-up: out of the way
        set_thresholds(
            db,
            Thresholds(urge_repeat_days=0, supervise_after_days=10, supervise_after_urges=2),
            actor_id=None,
            workspace_id=None,  # type: ignore[arg-type]
        )
        a_id = a.id
    assert sweep(date(2026, 12, 7)).issued["urge"] == 1
    with system_session() as db:  # the centre sent the reply back with a new deadline; still no result
        db.get(Assignment, a_id).due_date = date(2026, 12, 10)  # type: ignore[union-attr]
    result = sweep(date(2026, 12, 11), fan_out_now=True)
    assert result.issued == {"reminder": 0, "urge": 1, "supervise": 1}
    with system_session() as db:
        rungs = sorted((e.rung, e.due_date.day) for e in db.scalars(select(Escalation)))
    assert rungs == [("supervise", 10), ("urge", 4), ("urge", 10)]


def _thresholds_form(**values: str) -> dict[str, str]:
    return {
        "reminder_days_before": "1",
        "urge_after_days": "1",
        "urge_repeat_days": "2",
        "supervise_after_days": "3",
        "supervise_after_urges": "2",
    } | values


def test_the_centre_admin_sets_the_thresholds_and_the_sweep_follows_them(make_client) -> None:  # type: ignore[no-untyped-def]
    from app.audit.models import AuditEvent
    from app.escalation.models import EscalationPolicy
    from tests.helpers import post

    admin = make_client()
    sign_in(admin, "zx.admin")
    page = admin.get("/admin/escalation")
    assert page.status_code == 200 and "催督办规则" in page.text and "提醒单" in page.text
    for bad, message in (
        ({"urge_after_days": "abc"}, "催办：逾期第几个工作日：请填写 1 到 5 之间的整数。"),
        ({"reminder_days_before": "0"}, "请填写 1 到 3 之间的整数"),
        ({"supervise_after_days": "1", "urge_after_days": "2"}, "督办的逾期天数不能少于催办的逾期天数"),
    ):
        response = post(admin, "/admin/escalation", _thresholds_form(**bad))
        assert response.status_code == 422 and message in response.text, bad
    with system_session() as db:
        assert db.get(EscalationPolicy, 1) is None or db.get(EscalationPolicy, 1).supervise_after_days == 3  # type: ignore[union-attr]
    response = post(
        admin, "/admin/escalation", _thresholds_form(supervise_after_days="5", urge_repeat_days="0")
    )
    assert response.status_code == 303
    assert "以 " in admin.get("/admin/escalation").text
    with system_session() as db:
        row = db.get(EscalationPolicy, 1)
        assert row is not None and (row.supervise_after_days, row.urge_repeat_days) == (5, 0)
        assert db.scalar(select(AuditEvent).where(AuditEvent.action == "escalation.policy")) is not None
    _focus(date(2026, 12, 4))
    assert sweep(date(2026, 12, 9)).issued == {"reminder": 0, "urge": 1, "supervise": 0}  # 3 days: not yet
    assert sweep(date(2026, 12, 11)).issued == {"reminder": 0, "urge": 0, "supervise": 1}  # 5 days
    # Nobody else may change them: not the clerk, not a unit's admin, not the system admin.
    for username in ("zx.clerk", "horqin.admin", "dc.supervisor", "sysadmin"):
        other = make_client()
        sign_in(other, username)
        assert other.get("/admin/escalation").status_code == 403, username
        assert post(other, "/admin/escalation", _thresholds_form()).status_code == 403, username


# --- 移交函: the supervision office's decision (第二十条) ----------------------------------------------


def test_the_supervisor_transfers_an_urged_case_with_a_written_reason(make_client) -> None:  # type: ignore[no-untyped-def]
    from app.cases.models import TimelineEntry
    from tests.helpers import post

    lead_id, case_id = _focus(date(2026, 12, 4))
    supervisor = make_client()
    sign_in(supervisor, "dc.supervisor")
    # Not before 催办 or 督办 has been tried.
    assert "发出移交函" not in supervisor.get(f"/oversight/{case_id}").text
    refused = post(
        supervisor,
        f"/oversight/{case_id}/transfer",
        {"assignment_id": str(lead_id), "reason": "久催不办，群众反映强烈，造成不良影响。"},
    )
    assert refused.status_code == 422 and "只能移交已经催办或督办" in refused.text
    sweep(date(2026, 12, 9), fan_out_now=True)  # 催办 and 督办
    page = supervisor.get(f"/oversight/{case_id}").text
    assert "发出移交函" in page and "督办〔2026〕1号" in page
    short = post(
        supervisor, f"/oversight/{case_id}/transfer", {"assignment_id": str(lead_id), "reason": "不办"}
    )
    assert short.status_code == 422 and "请写明移交理由" in short.text
    done = post(
        supervisor,
        f"/oversight/{case_id}/transfer",
        {
            "assignment_id": str(lead_id),
            "reason": "三次催办、一次督办均无结果，供暖问题持续两周，群众反映强烈。",
        },
    )
    assert done.status_code == 303
    with system_session() as db:
        letter = db.scalar(select(Escalation).where(Escalation.rung == "transfer"))
        assert (
            letter is not None and letter.number == "移交〔2026〕1号" and letter.addressee == "通辽市纪委监委"
        )
        assert "供暖问题持续两周" in letter.reason
        entry = db.scalar(select(TimelineEntry).where(TimelineEntry.action == "transfer"))
        assert entry is not None and entry.assignment_id == lead_id
        notified = {
            n.user_id for n in db.scalars(select(Notification).where(Notification.text.like("【移交函】%")))
        }
        from app.accounts.models import User

        names = {db.get(User, u).username for u in notified}  # type: ignore[union-attr]
        assert {"horqin.principal", "dc.supervisor"} <= names
    from app.notify.models import OutboxMessage

    with system_session() as db:  # the letter and the evidence pack (the case file) are queued
        queued = set(db.scalars(select(OutboxMessage.recipient).where(OutboxMessage.channel == "document")))
        assert f"case_file|case:{case_id}" in queued
        assert any(
            r.startswith("escalation_notice|escalation-key:") and r.endswith(":transfer:2026-12-04")
            for r in queued
        )
    again = post(
        supervisor,
        f"/oversight/{case_id}/transfer",
        {"assignment_id": str(lead_id), "reason": "再次移交，理由同上，请纪检监察机关处理。"},
    )
    assert again.status_code == 422  # transferred once per deadline
    principal = make_client()
    sign_in(principal, "horqin.principal")
    assert "移交函" in principal.get(f"/inbox/{lead_id}").text
    # A city leader oversees but does not decide 移交; units and the centre cannot either.
    for username in ("city.leader", "zx.clerk", "horqin.principal"):
        other = make_client()
        sign_in(other, username)
        assert post(
            other, f"/oversight/{case_id}/transfer", {"assignment_id": str(lead_id), "reason": "x" * 20}
        ).status_code in (403, 404), username


# --- the centre's own deadline: publish the day the reply arrives (第十二条) -------------------------


def test_a_reply_not_published_on_its_day_is_flagged_to_the_centre_once(make_client) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from app.cases.models import Case

    with system_session() as db:
        case = db.scalar(select(Case).where(Case.state == "assigned"))
        assert case is not None
        case.state = "under_review"  # test set-up: the reply arrived on Friday 4 December
        case.reply_submitted_at = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
        case_id = case.id
    assert sweep(date(2026, 12, 4)).publication_overdue == 0
    assert sweep(date(2026, 12, 7)).publication_overdue == 1
    assert sweep(date(2026, 12, 7)).publication_overdue == 0  # once
    with system_session() as db:
        notes = db.scalars(select(Notification).where(Notification.link == f"/cases/{case_id}")).all()
        assert len(notes) == 1 and "第十二条" in notes[0].text
    reviewer = make_client()
    sign_in(reviewer, "zx.reviewer")
    assert "发布逾期" in reviewer.get("/notifications").text
    assert "发布逾期" in reviewer.get(f"/cases/{case_id}").text
    # A reply that arrives on a Saturday is due on Monday.
    from app.workflows.deadlines import publication_due

    assert publication_due(datetime(2026, 12, 5, 3, 0, tzinfo=UTC)) == date(2026, 12, 7)
    # Shanghai time decides the day: 23:30 on the 4th UTC is the 5th in Tongliao.
    assert publication_due(datetime(2026, 12, 4, 17, 30, tzinfo=UTC)) == date(2026, 12, 7)


@pytest.mark.skipif(not IS_POSTGRES, reason="SQLite picks its index by its own small-data costs")
def test_the_sweep_reads_its_rows_through_the_index_of_exactly_the_ladder(demo) -> None:  # type: ignore[no-untyped-def]
    """ix_assignments_ladder (migration 0034) holds the rows the sweep's WHERE selects: the
    planner can answer the due-row query from it (here with the table scan ruled out, the demo
    being small). A change of the WHERE that leaves the index's predicate behind fails here."""
    from sqlalchemy import text

    from app.escalation.services import Thresholds, due_rows_query

    with system_session() as db:
        db.execute(text("SET LOCAL enable_seqscan = off"))
        compiled = due_rows_query(date(2026, 12, 7), Thresholds()).compile(
            dialect=db.get_bind().dialect, compile_kwargs={"render_postcompile": True}
        )
        plan = db.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.construct_params())
        lines = "\n".join(row[0] for row in plan)
    assert "ix_assignments_ladder" in lines, lines


def test_two_sweeps_at_the_same_moment_issue_each_rung_once(demo) -> None:  # type: ignore[no-untyped-def]
    import threading

    _pending_leads_due(date(2026, 12, 4))
    barrier = threading.Barrier(4)
    results = []

    def run() -> None:
        barrier.wait()
        results.append(sweep(date(2026, 12, 9)))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(results) == 4
    assert sorted(r.total for r in results)[:3] == [0, 0, 0]  # one sweep did the work, the others none
    with system_session() as db:
        keys = db.scalars(select(Escalation.key)).all()
        numbers = db.scalars(select(Escalation.number)).all()
    assert len(keys) == len(set(keys)) == sum(r.total for r in results) > 0
    assert len(numbers) == len(set(numbers))


def test_rungs_a_sweep_decided_are_written_before_anyone_decides_again(demo) -> None:  # type: ignore[no-untyped-def]
    """A sweep records its rungs per unit for the fan-out to write (escalation batches). A later
    sweep that runs before the fan-out writes them first and counts them: the second 催办 is the
    second (ordinal 2, the next number), not the first again."""
    from app.escalation.models import EscalationBatch
    from app.escalation.services import fan_out_pending

    a = _one_lead_due(date(2026, 12, 4))
    a_id, unit = a.id, a.workspace_id
    assert sweep(date(2026, 12, 7)).issued == {"reminder": 0, "urge": 1, "supervise": 0}
    with system_session() as db:
        assert db.scalars(select(Escalation)).all() == []  # decided and numbered, not yet written
        [batch] = db.scalars(select(EscalationBatch)).all()
        assert batch.workspace_id == unit
    # Three overdue working days, no fan-out in between: the 2nd 催办 and the 督办.
    assert sweep(date(2026, 12, 9)).issued == {"reminder": 0, "urge": 1, "supervise": 1}
    with system_session() as db:
        written = sorted((e.rung, e.ordinal, e.fanned_out_at is None) for e in db.scalars(select(Escalation)))
    assert written == [("urge", 1, True)]  # the first sweep's, written by the second
    assert fan_out_pending() == 3
    with system_session() as db:
        rows = db.scalars(select(Escalation).order_by(Escalation.id)).all()
        assert db.scalars(select(EscalationBatch)).all() == []
    assert sorted((e.rung, e.ordinal) for e in rows) == [("supervise", 1), ("urge", 1), ("urge", 2)]
    assert all(e.assignment_id == a_id and e.fanned_out_at is not None for e in rows)
    urge_numbers = sorted(int(e.number.split("〕")[1].rstrip("号")) for e in rows if e.rung == "urge")
    assert urge_numbers[1] == urge_numbers[0] + 1
    assert fan_out_pending() == 0
    assert sweep(date(2026, 12, 10)).total == 0


def test_two_workers_fanning_out_one_unit_at_once_write_its_rungs_once(demo) -> None:  # type: ignore[no-untyped-def]
    import threading

    from app.cases.models import TimelineEntry
    from app.escalation.services import fan_out

    leads = _pending_leads_due(date(2026, 12, 4))
    result = sweep(date(2026, 12, 7))
    unit = min(result.workspaces)
    mine = sum(1 for a in leads if a.workspace_id == unit)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def run() -> None:
        barrier.wait()
        counts.append(fan_out(unit))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(counts) == [0, mine] and mine > 0
    with system_session() as db:
        rows = db.scalars(select(Escalation).where(Escalation.workspace_id == unit)).all()
        entries = db.scalars(
            select(TimelineEntry).where(TimelineEntry.action == "urge", TimelineEntry.workspace_id == unit)
        ).all()
    assert len(rows) == len(entries) == mine


def test_the_sweep_decides_in_one_transaction_and_the_workers_fan_out_each_unit_once(demo, worker) -> None:  # type: ignore[no-untyped-def]
    """The sweep commits the rungs and one fan-out job per unit; a worker writes the timeline, the
    principal's notice, the audit event and the document to render; running it again (a
    redelivery, two workers at once) adds nothing."""
    import threading

    from app.audit.models import AuditEvent
    from app.cases.models import TimelineEntry
    from app.escalation.services import fan_out
    from app.notify.models import OutboxMessage

    leads = _pending_leads_due(date(2026, 12, 4))
    result = sweep(date(2026, 12, 7))  # the first overdue day: a 催办单 each
    assert result.issued["urge"] == len(leads) > 0
    with system_session() as db:
        assert (
            db.scalar(select(func.count()).select_from(TimelineEntry).where(TimelineEntry.action == "urge"))
            == 0
        )
        jobs = db.scalars(select(OutboxMessage).where(OutboxMessage.channel == "fanout")).all()
        assert sorted(int(j.recipient) for j in jobs) == sorted(result.workspaces)
    worker()  # the after-commit hand-off: the workers run the fan-out jobs
    with system_session() as db:
        urged = db.scalars(select(TimelineEntry).where(TimelineEntry.action == "urge")).all()
        assert len(urged) == len(leads)
        assert all(e.fanned_out_at is not None for e in db.scalars(select(Escalation)))
        audits = db.scalars(select(AuditEvent).where(AuditEvent.action == "escalation.issued")).all()
        assert sorted(a.workspace_id for a in audits) == sorted(result.workspaces)
        assert sum(len(a.detail["numbers"]) for a in audits) == len(leads)
        notes = db.scalar(select(func.count()).select_from(Notification))
    # Again, twice at the same moment: nothing more.
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def again(workspace_id: int) -> None:
        barrier.wait()
        counts.append(fan_out(workspace_id))

    unit = min(result.workspaces)
    threads = [threading.Thread(target=again, args=(unit,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert counts == [0, 0]
    with system_session() as db:
        assert len(db.scalars(select(TimelineEntry).where(TimelineEntry.action == "urge")).all()) == len(
            leads
        )
        assert db.scalar(select(func.count()).select_from(Notification)) == notes


def test_a_principal_gets_one_digest_for_many_rungs_of_one_sweep(demo) -> None:  # type: ignore[no-untyped-def]
    from app.escalation.services import DIGEST_LINES, fan_out
    from app.notify.models import OutboxMessage

    with system_session() as db:
        lead = db.scalar(
            select(Assignment)
            .join(Workspace, Workspace.id == Assignment.workspace_id)
            .where(Assignment.is_lead.is_(True), Assignment.state == "pending", Workspace.slug == "horqin")
            .order_by(Assignment.id)
            .limit(1)
        )
        assert lead is not None
        unit = lead.workspace_id
        for a in db.scalars(select(Assignment).where(Assignment.is_lead.is_(True))):
            a.due_date = date(2027, 3, 1)  # test set-up: everything else out of the way
        # Test set-up: many owed lead assignments of one unit, all due on the same day.
        copies = []
        for n in range(DIGEST_LINES + 5):
            copy = Assignment(
                **{
                    c.key: getattr(lead, c.key)
                    for c in Assignment.__table__.columns
                    if c.key not in ("id", "round", "supervised_for")
                },
                round=100 + n,
            )
            copy.due_date = date(2026, 12, 4)
            copies.append(copy)
        db.add_all(copies)
        principal = db.scalar(select(User.id).where(User.username == "horqin.principal"))
        assert db.get(Workspace, unit).short_name == "科尔沁区"  # type: ignore[union-attr]
    result = sweep(date(2026, 12, 7))
    assert result.issued["urge"] == DIGEST_LINES + 5 and result.workspaces == {unit}
    assert fan_out(unit) == DIGEST_LINES + 5
    with system_session() as db:
        notes = db.scalars(select(Notification).where(Notification.user_id == principal)).all()
        assert len(notes) == 1  # one notice, not 35
        text = notes[0].text
        assert text.startswith(f"【督办事项汇总】本次共{DIGEST_LINES + 5}件：催办单{DIGEST_LINES + 5}件。")
        assert text.count("【催办单】") == DIGEST_LINES and "……另有5件" in text
        mails = db.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == "email", OutboxMessage.key.like("digest:%"))
        ).all()
        assert len(mails) == 1


def test_a_supervised_deadline_leaves_the_sweep_until_an_extension_moves_it(demo) -> None:  # type: ignore[no-untyped-def]
    """督办 once per deadline: supervised_for (written by the fan-out) keeps the assignment out of
    the sweep's reading; an approved extension (a new due date) puts it back on the ladder for the
    new deadline."""
    from app.escalation.services import Thresholds, due_rows_query

    a_id = _one_lead_due(date(2026, 12, 4)).id
    assert sweep(date(2026, 12, 9), fan_out_now=True).issued["supervise"] == 1
    with system_session() as db:
        assert db.get_one(Assignment, a_id).supervised_for == date(2026, 12, 4)
        assert a_id not in {r.id for r in db.execute(due_rows_query(date(2026, 12, 14), Thresholds()))}
    assert sweep(date(2026, 12, 14)).total == 0
    with system_session() as db:
        db.get_one(Assignment, a_id).due_date = date(2026, 12, 16)  # test set-up: extended
    assert sweep(date(2026, 12, 15)).issued == {"reminder": 1, "urge": 0, "supervise": 0}
    assert sweep(date(2026, 12, 21)).issued["supervise"] == 1  # the new deadline's own 督办
    # supervised_for is the fan-out's to write; until it has run, the rung itself keeps the sweep
    # from issuing it again (the NOT EXISTS is the truth, supervised_for only shortens the reading).
    with system_session() as db:
        assert db.get_one(Assignment, a_id).supervised_for == date(2026, 12, 4)
    assert sweep(date(2026, 12, 21)).total == 0
    assert sweep(date(2026, 12, 22)).total == 0
    from app.escalation.services import fan_out_pending

    assert fan_out_pending() >= 1
    with system_session() as db:
        assert db.get_one(Assignment, a_id).supervised_for == date(2026, 12, 16)
        assert a_id not in {r.id for r in db.execute(due_rows_query(date(2026, 12, 22), Thresholds()))}


def test_minpan_sweep_runs_the_sweep_and_its_fan_out_from_the_command_line(demo) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from app.cases.models import TimelineEntry
    from app.cli import main

    leads = _pending_leads_due(date(2026, 12, 4))
    result = CliRunner().invoke(main, ["sweep", "--date", "2026-12-07"])
    assert result.exit_code == 0, result.output
    assert f"催办单 {len(leads)} 件" in result.output and "2026-12-07" in result.output
    with system_session() as db:
        urged = db.scalars(select(TimelineEntry).where(TimelineEntry.action == "urge")).all()
        assert len(urged) == len(leads)
    again = CliRunner().invoke(main, ["sweep", "--date", "2026-12-07"])
    assert "催办单 0 件" in again.output  # once
    assert CliRunner().invoke(main, ["sweep", "--date", "2026-13-01"]).exit_code != 0


def test_bulk_writes_record_every_row_exactly_as_given(demo: None) -> None:
    """The sweep's bulk INSERT and UPDATE (one statement from arrays on PostgreSQL, from a few
    hundred rows on): every value arrives typed as the column says, UTC times included."""
    from datetime import UTC, datetime
    from typing import cast

    from sqlalchemy import Table

    from app.db import BULK_ROWS, bulk_insert, bulk_update

    n = BULK_ROWS + 50
    issued_at = datetime(2026, 11, 27, 1, 2, 3, tzinfo=UTC)
    with system_session() as db:
        lead = db.scalars(
            select(Assignment).where(Assignment.is_lead.is_(True)).order_by(Assignment.id)
        ).first()
        assert lead is not None
        rows = [
            {
                "workspace_id": lead.workspace_id,
                "key": f"bulk:{i}",
                "assignment_id": lead.id,
                "case_id": lead.case_id,
                "rung": "reminder",
                "ordinal": i,
                "number": f"提醒〔2026〕{i}号",
                "due_date": date(2026, 11, 30),
                "issued_on": date(2026, 11, 27),
                "issued_at": issued_at,
            }
            for i in range(n)
        ]
        bulk_insert(db, cast(Table, Escalation.__table__), rows)
        bulk_update(
            db,
            cast(Table, Assignment.__table__),
            "id",
            [{"id": lead.id, "supervised_for": date(2026, 11, 30)}] * 1,
        )
        lead_id = lead.id
    with system_session() as db:
        stored = db.scalars(
            select(Escalation).where(Escalation.key.like("bulk:%")).order_by(Escalation.ordinal)
        ).all()
        assert [(e.key, e.number, e.ordinal) for e in stored] == [
            (r["key"], r["number"], r["ordinal"]) for r in rows
        ]
        assert {(e.due_date, e.issued_on, e.issued_at) for e in stored} == {
            (date(2026, 11, 30), date(2026, 11, 27), issued_at)
        }
        assert db.get_one(Assignment, lead_id).supervised_for == date(2026, 11, 30)
        # Many rows updated by key at once.
        others = db.scalars(select(Assignment.id).order_by(Assignment.id)).all()
        updates = [{"id": i, "supervised_for": date(2026, 12, 1)} for i in others]
    with system_session() as db:
        bulk_update(
            db, cast(Table, Assignment.__table__), "id", updates * (BULK_ROWS // max(len(updates), 1) + 1)
        )
    with system_session() as db:
        assert set(db.scalars(select(Assignment.supervised_for))) == {date(2026, 12, 1)}


# --- what the database guarantees: one row per rung of a deadline, the assignment's unit and case ---


def _rung_row(lead: Assignment, **values: object) -> Escalation:
    return Escalation(
        **{
            "workspace_id": lead.workspace_id,
            "key": f"x:{lead.id}:{values.get('ordinal', 1)}",
            "assignment_id": lead.id,
            "case_id": lead.case_id,
            "rung": "urge",
            "ordinal": 1,
            "number": "催办〔2026〕900号",
            "due_date": date(2026, 12, 4),
            "issued_on": date(2026, 12, 7),
        }
        | values
    )


def test_the_database_refuses_a_second_row_for_the_same_rung_of_a_deadline(demo) -> None:  # type: ignore[no-untyped-def]
    """Exactly once rests on the unique (assignment, rung, due date, ordinal), not on the text key:
    a row with another key for the same rung is refused, the next 催办 or another deadline is not."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from app.escalation.services import _key, by_key

    with system_session() as db:
        lead = db.scalars(
            select(Assignment).where(Assignment.is_lead.is_(True)).order_by(Assignment.id)
        ).first()
        assert lead is not None
        db.add(_rung_row(lead, key=_key(lead.id, "urge", date(2026, 12, 4))))
        db.flush()
        for same in (
            _rung_row(lead, key="another text"),
            _rung_row(lead, key="yet another", number="催办〔2026〕901号"),
        ):
            with pytest.raises(IntegrityError), db.begin_nested():
                db.add(same)
                db.flush()
        db.add(_rung_row(lead, ordinal=2, number="催办〔2026〕902号"))  # the second 催办
        db.add(
            _rung_row(lead, due_date=date(2026, 12, 18), key="y", number="催办〔2026〕903号")
        )  # new deadline
        db.flush()
        # The rung's key text finds it through the four values (documents queued by key).
        found = db.scalars(
            select(Escalation).where(by_key(_key(lead.id, "urge", date(2026, 12, 4), 2)))
        ).all()
        assert [(e.ordinal, e.number) for e in found] == [(2, "催办〔2026〕902号")]


def test_a_rung_is_filed_under_its_assignments_unit_and_case_only(demo) -> None:  # type: ignore[no-untyped-def]
    """One foreign key to the assignment's (id, case, unit): the workspace the row-level security
    reads can never differ from the assignment's; deleting the case takes its rungs along."""
    import pytest
    from sqlalchemy.exc import IntegrityError

    from app.cases.models import Case

    with system_session() as db:
        leads = db.scalars(
            select(Assignment).where(Assignment.is_lead.is_(True)).order_by(Assignment.id)
        ).all()
        lead = leads[0]
        other = next(a for a in leads if a.workspace_id != lead.workspace_id and a.case_id != lead.case_id)
        for wrong in ({"workspace_id": other.workspace_id}, {"case_id": other.case_id}):
            with pytest.raises(IntegrityError), db.begin_nested():
                db.add(_rung_row(lead, **wrong))
                db.flush()
        db.add(_rung_row(lead))
        db.flush()
        case_id = lead.case_id
    with system_session() as db:
        db.delete(db.get_one(Case, case_id))
    with system_session() as db:
        assert (
            db.scalar(select(func.count()).select_from(Escalation).where(Escalation.case_id == case_id)) == 0
        )


def test_the_sweep_issues_what_the_plan_says_for_every_threshold_setting(demo) -> None:  # type: ignore[no-untyped-def]
    """The sweep decides in SQL; ``plan()``/``simulate()`` are the rule in Python. Swept daily over
    the Spring Festival (holidays, 调休 Saturdays), under the default thresholds and the centre's
    other choices, the sweep issues exactly the simulated rungs on their days, with gap-free
    numbers and the text keys the previous release reads."""
    from app.escalation.services import Thresholds, _key, set_thresholds, simulate
    from app.workflows.effects import numbering

    settings = [
        Thresholds(),
        Thresholds(reminder_days_before=3, urge_after_days=2, urge_repeat_days=0, supervise_after_days=5),
        Thresholds(urge_repeat_days=1, supervise_after_days=8, supervise_after_urges=3),
    ]
    dues = [date(2026, 2, 11), date(2026, 2, 13), date(2026, 2, 24), date(2026, 2, 26), date(2026, 3, 2)]
    with system_session() as db:
        leads = list(
            db.scalars(
                select(Assignment)
                .where(Assignment.is_lead.is_(True), Assignment.state == "pending")
                .order_by(Assignment.id)
            )
        )
        for a in leads:
            a.due_date = date(2027, 6, 1)  # test set-up: out of the way
        copies = [  # test set-up: more owed lead assignments (later rounds of the first one's case)
            Assignment(
                **{
                    c.key: getattr(leads[0], c.key)
                    for c in Assignment.__table__.columns
                    if c.key not in ("id", "round")
                },
                round=200 + n,
            )
            for n in range(len(dues))
        ]
        db.add_all(copies)
        db.flush()
        leads = [*leads, *copies][: len(dues)]
    for round_, t in enumerate(settings):
        with system_session() as db:
            db.execute(Escalation.__table__.delete())
            db.execute(Assignment.__table__.update().values(supervised_for=None))
            set_thresholds(db, t, actor_id=None, workspace_id=None)  # type: ignore[arg-type]
            for a, due in zip(leads, dues, strict=False):
                db.get_one(Assignment, a.id).due_date = due
        ids = {a.id: due for a, due in zip(leads, dues, strict=False)}
        day = date(2026, 2, 2)
        while day <= date(2026, 3, 31):
            sweep(day)
            day += timedelta(days=1)
        with system_session() as db:
            rows = db.scalars(select(Escalation)).all()
        got = {(e.assignment_id, e.rung, e.ordinal): e.issued_on for e in rows}
        want = {
            (a, rung, n): day for a, due in ids.items() for day, rung, n in simulate(due, t, days_after=40)
        }
        assert got == want, (round_, t)
        assert all(e.key == _key(e.assignment_id, e.rung, e.due_date, e.ordinal) for e in rows)
        for rung, series in (("reminder", "提醒"), ("urge", "催办"), ("supervise", "督办")):
            numbers = sorted(
                (e.number for e in rows if e.rung == rung), key=lambda n: int(n.split("〕")[1][:-1])
            )
            offset = int(numbers[0].split("〕")[1][:-1]) - 1 if numbers else 0
            assert numbers == [numbering(series, 2026, offset + i) for i in range(1, len(numbers) + 1)], rung


def test_a_cases_rungs_read_up_the_ladder_whatever_order_they_were_written_in(demo) -> None:  # type: ignore[no-untyped-def]
    """One sweep may write a deadline's 督办单 before its 2nd 催办单 (the expansion writes a unit's
    batch in the order of the numbers of three series); the case page lists them up the ladder."""
    from datetime import UTC, datetime

    from app.escalation.services import of_assignment, of_case

    with system_session() as db:
        a = db.scalar(select(Assignment).where(Assignment.is_lead.is_(True)).order_by(Assignment.id).limit(1))
        assert a is not None
        morning = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
        due = date(2026, 11, 23)
        for rung, ordinal, number, at in (  # test set-up: written in this order, ids ascending
            ("urge", 1, "催办〔2026〕1号", datetime(2026, 11, 24, 0, 0, tzinfo=UTC)),
            ("supervise", 1, "督办〔2026〕1号", morning),
            ("urge", 2, "催办〔2026〕2号", morning),
            ("reminder", 1, "提醒〔2026〕1号", datetime(2026, 11, 20, 0, 0, tzinfo=UTC)),
        ):
            db.add(
                Escalation(
                    key=f"{a.id}:{rung}:{due}:{ordinal}",
                    workspace_id=a.workspace_id,
                    assignment_id=a.id,
                    case_id=a.case_id,
                    rung=rung,
                    ordinal=ordinal,
                    number=number,
                    due_date=due,
                    issued_on=at.date(),
                    issued_at=at,
                )
            )
        db.flush()
        expected = ["提醒〔2026〕1号", "催办〔2026〕1号", "催办〔2026〕2号", "督办〔2026〕1号"]
        assert [e.number for e in of_case(db, a.case_id)] == expected
        assert [e.number for e in of_assignment(db, a)] == expected
