"""工作台 · 待办事项: each person's workspace home counts what awaits their roles — a unit's own
assignments only, the centre's queue, the overdue assignments of every unit for those who oversee
them — and an administrator, who acts on no case, gets no list."""

from __future__ import annotations

import re
from datetime import date, timedelta

from sqlalchemy import select

from app.cases.models import Assignment, Case
from app.db import system_session, utcnow
from app.demo import demo_signature_png
from app.tenants.models import Workspace
from app.workflows.deadlines import local_date
from tests.helpers import sign_in
from tests.test_workflow_rules import _assignments, act, register_and_dispatch, to_signoff

COUNT = re.compile(
    r'<li class="(todo-urgent)?"><a href="([^"]+)">'
    r'<span class="todo-count">(\d+)</span><strong>([^<]+)</strong>'
)


def _todo(client) -> dict[str, tuple[int, str, bool]]:  # type: ignore[no-untyped-def]
    """label → (count, link, shown as urgent) on the person's workspace home."""
    page = client.get("/ws").text
    return {label: (int(n), href, bool(urgent)) for urgent, href, n, label in COUNT.findall(page)}


def _unit_assignments(slug: str) -> list[Assignment]:
    with system_session() as db:
        unit = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
        return list(
            db.scalars(select(Assignment).where(Assignment.workspace_id == unit).order_by(Assignment.id))
        )


def test_a_unit_sees_its_own_assignments_by_what_each_role_does_next(make_client) -> None:  # type: ignore[no-untyped-def]
    today = local_date(utcnow())
    horqin = _unit_assignments("horqin")
    naiman = _unit_assignments("naiman")
    assert [a.state for a in horqin] == ["pending"] and [a.state for a in naiman] == ["pending"]
    with system_session() as db:  # test set-up: naiman's message long overdue, horqin's due today
        db.get_one(Assignment, naiman[0].id).due_date = date(2026, 11, 2)
        db.get_one(Assignment, horqin[0].id).due_date = today

    handler, principal, deputy, other = make_client(), make_client(), make_client(), make_client()
    sign_in(handler, "horqin.handler")
    sign_in(principal, "horqin.principal")
    sign_in(deputy, "horqin.deputy")
    sign_in(other, "naiman.handler")

    mine = _todo(handler)
    assert mine["待签收"] == (1, "/inbox?view=pending", False)
    assert mine["即将到期"] == (1, "/inbox?view=due_soon", True)
    assert mine["逾期未办"] == (
        0,
        "/inbox?view=overdue",
        False,
    )  # naiman's overdue assignment is not horqin's
    assert mine["办理中"][0] == 0
    assert "待审签" not in mine and "退办待签字" not in mine  # not a handler's to sign
    assert _todo(other)["逾期未办"] == (1, "/inbox?view=overdue", True)
    assert _todo(other)["即将到期"][0] == 0

    # The handler receives it and asks the principal to sign: the counts follow the workflow.
    to_signoff(handler, horqin[0].id)
    mine = _todo(handler)
    assert mine["待签收"][0] == 0 and mine["即将到期"][0] == 1
    assert _todo(principal)["待审签"] == (1, "/inbox?view=awaiting_signoff", False)
    assert "待审签" not in _todo(deputy) and _todo(deputy)["退办待签字"][0] == 0
    assert "待审签" not in _todo(other)
    # Past its due date it is overdue for the unit, and for nobody else's unit.
    with system_session() as db:
        db.get_one(Assignment, horqin[0].id).due_date = today - timedelta(days=30)
    assert _todo(principal)["逾期未办"] == (1, "/inbox?view=overdue", True)
    assert _todo(other)["逾期未办"][0] == 1  # still only its own


def test_the_centre_and_the_supervision_office_see_their_queues_and_every_units_overdue(make_client) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        received = len(db.scalars(select(Case.id).where(Case.state == "received")).all())
        # test set-up: two units' lead assignments (and so their cases) overdue, one co-unit's
        # too (not counted: the lead unit answers), one case under review, and the heating
        # case's lead unit asking the centre for an extension.
        overdue_cases = []
        for slug in ("naiman", "tax"):
            lead = db.scalar(
                select(Assignment)
                .join(Workspace, Workspace.id == Assignment.workspace_id)
                .where(Workspace.slug == slug, Assignment.is_lead.is_(True))
            )
            assert lead is not None and lead.state == "pending"
            lead.due_date = db.get_one(Case, lead.case_id).due_date = date(2026, 11, 2)
            overdue_cases.append(lead.case_id)
        heating = db.scalar(
            select(Assignment)
            .join(Workspace, Workspace.id == Assignment.workspace_id)
            .where(Workspace.slug == "horqin", Assignment.is_lead.is_(True))
        )
        assert heating is not None
        asking = heating.case_id
        co = db.scalar(select(Assignment).where(Assignment.is_lead.is_(False)))
        assert co is not None
        co.due_date = date(2026, 11, 2)
    assert received == 2
    # Through the workflow: 科尔沁区 asks for an extension, its deputy endorses it (now the
    # centre's to decide); 开鲁县 answers a new message, its principal signs (now under review).
    handler, deputy, clerk_at_work = make_client(), make_client(), make_client()
    sign_in(handler, "horqin.handler")
    sign_in(deputy, "horqin.deputy")
    sign_in(clerk_at_work, "zx.clerk")
    assert act(handler, heating.id, "receive").status_code == 303
    assert act(handler, heating.id, "request_extension", days="2", reason="需要现场核查").status_code == 303
    assert act(deputy, heating.id, "endorse_extension").status_code == 303
    answered = register_and_dispatch(clerk_at_work, "TODO-1", lead="kailu")
    (kailu_lead,) = _assignments(answered.id)
    kailu_handler, kailu_principal = make_client(), make_client()
    sign_in(kailu_handler, "kailu.handler")
    sign_in(kailu_principal, "kailu.principal")
    to_signoff(kailu_handler, kailu_lead.id)
    assert act(kailu_principal, kailu_lead.id, "sign", signature=demo_signature_png()).status_code == 303
    with system_session() as db:
        assert db.get_one(Assignment, heating.id).state == "extension_pending"
        assert db.get_one(Case, answered.id).state == "under_review"

    clerk, reviewer, supervisor, leader, admin, sysadmin = (make_client() for _ in range(6))
    for client, username in (
        (clerk, "zx.clerk"),
        (reviewer, "zx.reviewer"),
        (supervisor, "dc.supervisor"),
        (leader, "city.leader"),
        (admin, "horqin.admin"),
        (sysadmin, "sysadmin"),
    ):
        sign_in(client, username)

    queue = _todo(clerk)
    assert queue["待初审交办"] == (2, "/cases?status=received", False)
    assert queue["承办单位逾期未办"] == (2, "/cases?view=overdue", True)
    assert queue["承办单位申请待决定"] == (1, "/cases?view=requests", False)
    assert "待审核发布" not in queue
    review = _todo(reviewer)
    assert review["待审核发布"] == (1, "/cases?status=under_review", True)
    assert "待初审交办" not in review and "承办单位申请待决定" not in review
    # What each count counts is what its link lists.
    listed = clerk.get("/cases?view=overdue").text
    assert (
        all(f'href="/cases/{c}"' in listed for c in overdue_cases) and f'href="/cases/{asking}"' not in listed
    )
    listed = clerk.get("/cases?view=requests").text
    assert f'href="/cases/{asking}"' in listed and not any(
        f'href="/cases/{c}"' in listed for c in overdue_cases
    )
    assert '<a href="/cases?view=requests" aria-current="page">' in listed
    assert _todo(supervisor) == {"承办单位逾期未办": (2, "/supervision", True)}
    assert _todo(leader) == {"承办单位逾期未办": (2, "/oversight", True)}
    # A unit's administrator sees the unit's own list (it may receive); the system administrator
    # acts on no case and gets none.
    assert _todo(admin)["逾期未办"][0] == 0  # the overdue ones are other units'
    assert 'data-testid="todo"' not in sysadmin.get("/ws").text
    # Each count's link opens a page its reader may see.
    for client in (clerk, reviewer, supervisor, leader, admin):
        for _, href, _ in _todo(client).values():
            assert client.get(href).status_code == 200, href


def test_the_unit_inbox_lists_what_each_count_counts(make_client) -> None:  # type: ignore[no-untyped-def]
    today = local_date(utcnow())
    horqin = _unit_assignments("horqin")[0]
    naiman = _unit_assignments("naiman")[0]
    with system_session() as db:  # test set-up: both overdue
        db.get_one(Assignment, naiman.id).due_date = date(2026, 11, 2)
        db.get_one(Assignment, horqin.id).due_date = today - timedelta(days=30)
    handler, principal = make_client(), make_client()
    sign_in(handler, "horqin.handler")
    sign_in(principal, "horqin.principal")
    to_signoff(handler, horqin.id)  # horqin's now awaits the principal
    for view, listed in (
        ("overdue", True),
        ("awaiting_signoff", True),
        ("pending", False),
        ("due_soon", False),
    ):
        page = principal.get(f"/inbox?view={view}").text
        assert (f'href="/inbox/{horqin.id}"' in page) is listed, view
        assert f'href="/inbox/{naiman.id}"' not in page, view  # never another unit's
        assert f'<a href="/inbox?view={view}" aria-current="page">' in page
    tabs = principal.get("/inbox").text
    assert '逾期未办 <span class="tab-count danger">1</span>' in tabs
    assert '待签收 <span class="tab-count">0</span>' in tabs
    assert "暂无待签收的承办件。" in principal.get("/inbox?view=pending").text
    # An unknown view is the whole inbox, not an error.
    everything = principal.get("/inbox?view=%3Cscript%3E")
    assert everything.status_code == 200 and f'href="/inbox/{horqin.id}"' in everything.text
    assert "<script>" not in everything.text
