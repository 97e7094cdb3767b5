"""Every (machine, state, action, role) against the transition table.

Allowed combinations succeed and reach the table's target state; every other one is refused with
a clear Chinese error and changes nothing (state, version, timeline, audit log).
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from app.accounts.identity import CurrentUser, Post
from app.accounts.models import User
from app.audit.models import AuditEvent
from app.cases.models import Assignment, Case, TimelineEntry
from app.cases.vocab import ASSIGNMENT_STATES, CASE_STATES
from app.db import system_session, utcnow
from app.demo import demo_signature_png
from app.errors import InvalidInput
from app.permissions import Role
from app.tenants.models import Workspace
from app.workflows import engine
from app.workflows.engine import SYSTEM, TransitionNotAllowed
from app.workflows.transitions import TABLE

ROLES = [r.value for r in Role] + [SYSTEM]


@pytest.fixture(scope="module")
def demo_once() -> None:
    """Demo data once for the module: every combination below runs in a transaction rolled back."""
    from tests.conftest import reset_data

    reset_data()


CASE_ACTIONS = sorted({t.action for t in TABLE if t.machine == "case"})
ASSIGNMENT_ACTIONS = sorted({t.action for t in TABLE if t.machine == "assignment"})


def _actor(role: str, workspace: Workspace, user_id: int) -> CurrentUser | None:
    """Someone holding exactly ``role`` in ``workspace`` (test set-up: whatever the grants say)."""
    if role == SYSTEM:
        return None
    post = Post(workspace.id, workspace.slug, workspace.name, workspace.short_name, workspace.kind, (role,))
    return CurrentUser(user_id, "tester", "测试人员", "s", False, (post,), post, "127.0.0.1")


def _payload(action: str, db: Any, case: Case, assignment: Assignment, related: Assignment) -> dict[str, Any]:
    """Input that satisfies the action's guards, and the surroundings it needs."""
    horqin = db.scalar(select(Workspace.id).where(Workspace.slug == "horqin"))
    if action in {"consent_explanation", "refuse_explanation"}:
        related.state, related.is_lead = "explanation_requested", True
    if action in {"accept_return", "accept_co_return", "reject_return"}:
        related.state = "return_requested"
        related.is_lead = action != "accept_co_return"
    if action in {"approve_extension", "deny_extension"}:
        related.state, related.extension_days = "extension_pending", 3
    if action == "send_back":
        related.state, related.is_lead = "submitted", True
    if action == "contribute":
        assignment.is_lead = False
    if action in {"request_signoff", "sign"}:
        assignment.reply_text = "回复意见"
    return {
        "decline": {"reason": "out_of_scope", "explanation": "说明", "suggestion": "建议"},
        "dispatch": {"lead_unit_id": horqin, "co_unit_ids": []},
        "save_draft": {"reply_text": "新的回复意见"},
        "contribute": {"text": "协办意见"},
        "sign": {"signature": demo_signature_png()},
        "sign_return": {"signature": demo_signature_png()},
        "reject_signoff": {"comment": "请修改"},
        "draft_return": {"reason": "不属于本单位职责"},
        "request_explanation": {"reason": "涉及历史遗留问题，短期内难以解决"},
        "consent_explanation": {"assignment_id": related.id},
        "refuse_explanation": {"assignment_id": related.id, "comment": "请继续办理"},
        "request_extension": {"days": 2, "reason": "需要现场核查"},
        "refuse_extension": {"comment": "请按期办结"},
        "accept_return": {"assignment_id": related.id},
        "accept_co_return": {"assignment_id": related.id},
        "reject_return": {"assignment_id": related.id, "comment": "属于本单位职责"},
        "approve_extension": {"assignment_id": related.id, "days": 2},
        "deny_extension": {"assignment_id": related.id, "comment": "不同意"},
        "send_back": {"quality_flag": "perfunctory", "comment": "答复过于简单"},
    }.get(action, {})


def _snapshot(db: Any, obj: Any) -> tuple[Any, ...]:
    return (
        obj.state,
        obj.version,
        db.scalar(select(func.count()).select_from(TimelineEntry)),
        db.scalar(select(func.count()).select_from(AuditEvent)),
    )


def _run(machine: str, state: str, action: str, role: str) -> None:
    with system_session() as db:
        centre = db.scalar(select(Workspace).where(Workspace.slug == "portal-centre"))
        unit = db.scalar(select(Workspace).where(Workspace.slug == "kailu"))
        other = db.scalar(select(Workspace).where(Workspace.slug == "naiman"))
        case = Case(
            workspace_id=centre.id,
            board="mayor",
            source_id="T-1",
            title="标题",
            body="内容",
            posted_at=utcnow(),
            category="consult",
            sheet_number="通留〔2026〕9号",
        )
        db.add(case)
        db.flush()
        today = utcnow()
        assignment = Assignment(
            workspace_id=unit.id,
            case_id=case.id,
            sheet_number="通留〔2026〕9号",
            title="标题",
            body="内容",
            category="consult",
            posted_at=today,
            dispatched_at=today,
            received_at=today,
            due_date=(today + timedelta(days=7)).date(),
        )
        related = Assignment(
            workspace_id=other.id,
            case_id=case.id,
            sheet_number="通留〔2026〕9号",
            title="标题",
            body="内容",
            category="consult",
            posted_at=today,
            dispatched_at=today,
            received_at=today,
            due_date=(today + timedelta(days=7)).date(),
            is_lead=False,
        )
        db.add_all([assignment, related])
        db.flush()
        if machine == "assignment":
            case.state = "assigned"
        obj = case if machine == "case" else assignment
        payload = _payload(action, db, case, assignment, related)
        obj.state = state  # test set-up only: put the object in the state under test
        db.flush()
        someone = db.scalar(select(User.id).where(User.username == "zx.clerk"))
        actor = _actor(role, centre if machine == "case" else unit, someone)
        transition = engine.find(TABLE, machine, state, action)
        allowed = transition is not None and role in transition.roles
        before = _snapshot(db, obj)
        if allowed:
            engine.apply(db, actor, obj, action, expected_version=obj.version, **payload)
            assert obj.state == transition.target  # type: ignore[union-attr]
            assert db.scalar(select(func.count()).select_from(TimelineEntry)) > before[2]
        else:
            with pytest.raises(TransitionNotAllowed) as refused:
                engine.apply(db, actor, obj, action, expected_version=obj.version, **payload)
            assert refused.value.message  # a sentence in Chinese
            assert any("\u4e00" <= ch <= "\u9fff" for ch in refused.value.message)
            db.flush()
            assert _snapshot(db, obj) == before
        db.rollback()


@pytest.mark.parametrize(
    ("state", "action", "role"), list(itertools.product(CASE_STATES, CASE_ACTIONS, ROLES))
)
def test_case_state_action_role(demo_once, state: str, action: str, role: str) -> None:  # type: ignore[no-untyped-def]
    _run("case", state, action, role)


@pytest.mark.parametrize(
    ("state", "action", "role"), list(itertools.product(ASSIGNMENT_STATES, ASSIGNMENT_ACTIONS, ROLES))
)
def test_assignment_state_action_role(demo_once, state: str, action: str, role: str) -> None:  # type: ignore[no-untyped-def]
    _run("assignment", state, action, role)


def test_the_right_role_in_the_wrong_workspace_is_refused(demo) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        assignment = db.scalar(select(Assignment).where(Assignment.state == "pending"))
        naiman = db.scalar(select(Workspace).where(Workspace.slug == "naiman"))
        assert assignment is not None and naiman is not None and assignment.workspace_id != naiman.id
        before = (assignment.state, assignment.version)
        with pytest.raises(InvalidInput, match="角色不能执行"):
            someone = db.scalar(select(User.id).where(User.username == "naiman.handler"))
            engine.apply(db, _actor(Role.HANDLER.value, naiman, someone), assignment, "receive")
        assert (assignment.state, assignment.version) == before


def test_every_state_is_reachable_and_every_target_is_a_known_state() -> None:
    for t in TABLE:
        states = CASE_STATES if t.machine == "case" else ASSIGNMENT_STATES
        assert t.target in states and set(t.sources) <= set(states), t
        assert t.label and t.article.startswith("第"), t
    targets = {(t.machine, t.target) for t in TABLE}
    for state in CASE_STATES:
        assert state == "received" or ("case", state) in targets
    for state in ASSIGNMENT_STATES:
        assert state == "pending" or ("assignment", state) in targets


def test_the_flow_chart_is_drawn_from_the_table(client) -> None:  # type: ignore[no-untyped-def]
    from tests.helpers import sign_in

    sign_in(client, "horqin.handler")
    page = client.get("/workflow")
    assert page.status_code == 200 and page.text.count("<svg") == 2
    for t in TABLE:
        assert t.label in page.text, t.label
    for label in (*CASE_STATES.values(), *ASSIGNMENT_STATES.values()):
        assert label in page.text, label
