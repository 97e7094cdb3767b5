"""The demo that `./run` loads: besides a few messages in every stage, three messages dispatched on
earlier working days and not answered, with the deadline sweeps of every morning since run as of
that morning — so the supervision office, the units' principals and the case pages show the
escalation ladder (第十三条, 第十九条) as the real sweeps left it."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from app.accounts.models import User
from app.cases.models import Assignment, Case, TimelineEntry
from app.db import Base, system_session
from app.demo import load_demo_history, load_full_demo
from app.escalation.models import Escalation, Notification
from app.escalation.services import sweep
from app.tenants.models import Workspace
from tests.conftest import KEPT
from tests.helpers import sign_in

FRIDAY = date(2026, 11, 27)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _empty_database() -> None:
    with system_session() as db:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in KEPT:
                db.execute(table.delete())


def _ladder() -> dict[str, list[tuple[str, int, date]]]:
    """Each history message's rungs: (rung, ordinal, issued on), in the order of the case page."""
    from app.escalation.services import of_case

    with system_session() as db:
        return {
            case.title: [(e.rung, e.ordinal, e.issued_on) for e in of_case(db, case.id)]
            for case in db.scalars(
                select(Case).where(Case.source_id.in_(["TL-2026-110308", "TL-2026-110309", "TL-2026-110310"]))
            )
        }


def test_the_demo_shows_the_ladder_the_sweeps_of_the_past_working_days_left(make_client) -> None:  # type: ignore[no-untyped-def]
    _empty_database()
    load_full_demo(FRIDAY)

    with system_session() as db:
        assert db.scalar(select(func.count()).select_from(Case)) == 10  # the 3 of the history and the 7
        street_lights = db.scalar(select(Assignment).where(Assignment.title == "开鲁县城区多处路灯长期不亮"))
        assert street_lights is not None
        # Dispatched 9 working days before Friday 27 November, as of that day: the lowest number.
        assert street_lights.sheet_number == "通留〔2026〕1号"
        assert street_lights.dispatched_at.astimezone(SHANGHAI) == datetime(
            2026, 11, 16, 9, 30, tzinfo=SHANGHAI
        )
        assert street_lights.due_date == date(2026, 11, 23) and street_lights.state == "handling"
        assert street_lights.supervised_for == date(2026, 11, 23)  # the 督办单's fan-out ran

    # Every morning up to Thursday, swept as of that morning; Friday's sweep is the scheduler's.
    assert _ladder() == {
        "开鲁县城区多处路灯长期不亮": [  # due Mon 23 Nov
            ("reminder", 1, date(2026, 11, 20)),  # the working day before (第十三条)
            ("urge", 1, date(2026, 11, 24)),  # the first overdue working day (第十九条)
            ("urge", 2, date(2026, 11, 26)),  # two working days later, with the 督办单
            ("supervise", 1, date(2026, 11, 26)),  # three overdue working days
        ],
        "建议社区卫生服务中心周末开诊": [("reminder", 1, date(2026, 11, 25))],  # due Thu 26 Nov
        "小区门前人行道积雪未清理": [],  # due Mon 30 Nov
    }
    with system_session() as db:
        urged = db.scalar(
            select(TimelineEntry).where(TimelineEntry.action == "urge").order_by(TimelineEntry.id)
        )
        assert urged is not None and urged.at.astimezone(SHANGHAI) == datetime(
            2026, 11, 24, 8, 0, tzinfo=SHANGHAI
        )

    issued = sweep(FRIDAY, fan_out_now=True).issued  # the scheduler's sweep of the day
    assert (issued["reminder"], issued["urge"], issued["supervise"]) == (1, 1, 0)
    ladder = _ladder()
    assert ladder["建议社区卫生服务中心周末开诊"][1:] == [("urge", 1, FRIDAY)]
    assert ladder["小区门前人行道积雪未清理"] == [("reminder", 1, FRIDAY)]
    assert len(ladder["开鲁县城区多处路灯长期不亮"]) == 4  # supervised: nothing more this due date

    # Loading the demo again (a second `minpan demo`) adds nothing.
    assert load_demo_history(FRIDAY) == 0
    load_full_demo(FRIDAY)
    with system_session() as db:
        assert db.scalar(select(func.count()).select_from(Case)) == 10
        assert db.scalar(select(func.count()).select_from(Escalation)) == 7
        kailu = db.scalar(select(User.id).where(User.username == "kailu.principal"))
        notes = db.scalars(select(Notification).where(Notification.user_id == kailu)).all()
        assert any("督办〔2026〕1号" in n.text for n in notes)
        unit = db.scalar(select(Workspace.id).where(Workspace.slug == "kailu"))
        assert street_lights.workspace_id == unit

    principal = make_client()
    sign_in(principal, "kailu.principal")
    page = principal.get(f"/inbox/{street_lights.id}").text
    assert "督办〔2026〕1号" in page and "催办单（第2次）" in page
    assert '2026-11-23 <strong class="danger">逾期</strong>' in page  # past its due date, still owed
    # The ladder reads up: the 2nd 催办单 before the 督办单 issued the same morning.
    assert page.index("催办〔2026〕2号") < page.index("督办〔2026〕1号")
    # Another unit's principal sees none of it.
    other = make_client()
    sign_in(other, "naiman.principal")
    assert "路灯" not in other.get("/notifications").text
    assert other.get(f"/inbox/{street_lights.id}").status_code == 404
