"""工作台 · 待办事项: what awaits the signed-in person in their workspace now — the matters their
roles act on next, counted, each linking to where they act, the overdue ones first and marked.

Counted through the request's tenant-scoped session, so a unit's figures are its own
assignments only. The figures across units (the centre's decisions on units' requests, the
overdue assignments of every unit) are read in a ``cross_workspace`` block, and only for the
roles that see across units anyway (the centre's clerks and reviewers; the supervision office and
city leaders, who hold ``Permission.CASE_OVERSEE``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.calendar import days
from app.cases.models import Assignment, Case
from app.escalation.services import OWED_STATES
from app.permissions import Permission, Role
from app.supervision.queries import overdue_count
from app.tenants.scope import cross_workspace

UNIT_ROLES = (Role.HANDLER, Role.DEPUTY, Role.PRINCIPAL, Role.UNIT_ADMIN)
# The units' requests the centre decides (第十四条 延办, 第十五条 退办, 第十八条 解释说明).
CENTRE_DECIDES = ("return_requested", "extension_pending", "explanation_requested")


@dataclass(frozen=True)
class Todo:
    label: str
    count: int
    href: str
    hint: str
    urgent: bool = False  # shown in red while count > 0


def _by_state(db: Session, states: tuple[str, ...]) -> dict[str, int]:
    rows = db.execute(
        select(Assignment.state, func.count()).where(Assignment.state.in_(states)).group_by(Assignment.state)
    ).all()
    return {state: n for state, n in rows}


def _unit(db: Session, me: CurrentUser, today: date) -> list[Todo]:
    soon = days.current().add(today, 1)[0]  # the next working day
    states = _by_state(
        db, ("pending", "handling", "awaiting_signoff", "return_drafted", "extension_requested")
    )
    owed = Assignment.state.in_(OWED_STATES)
    overdue = db.scalar(select(func.count()).where(owed, Assignment.due_date < today)) or 0
    due_soon = (
        db.scalar(select(func.count()).where(owed, Assignment.due_date >= today, Assignment.due_date <= soon))
        or 0
    )
    items = [
        Todo(
            "逾期未办",
            overdue,
            "/inbox",
            "已超过办理期限（第十九条）",
            urgent=True,
        ),
        Todo("即将到期", due_soon, "/inbox", "今日或下一个工作日到期（第十三条）", urgent=True),
        Todo("待签收", states.get("pending", 0), "/inbox", "收到承办单后立即签收核查（第十一条）"),
    ]
    if me.has_role(Role.HANDLER):
        items.append(
            Todo("办理中", states.get("handling", 0), "/inbox", "5 个工作日内形成回复意见（第十一条）")
        )
    if me.has_role(Role.PRINCIPAL):
        items.append(
            Todo(
                "待审签", states.get("awaiting_signoff", 0), "/inbox", "主要负责人审签并加盖公章（第十一条）"
            )
        )
    if me.has_role(Role.DEPUTY):
        items.append(
            Todo(
                "退办待签字", states.get("return_drafted", 0), "/inbox", "分管领导签字，当日退回（第十五条）"
            )
        )
    if me.has_role(Role.DEPUTY) or me.has_role(Role.PRINCIPAL):
        items.append(
            Todo(
                "延期申请待审核",
                states.get("extension_requested", 0),
                "/inbox",
                "延期不超过 3 个工作日（第十四条）",
            )
        )
    return items


def _centre(db: Session, me: CurrentUser, today: date) -> list[Todo]:
    items: list[Todo] = []
    clerk, reviewer = me.has_role(Role.CENTRE_CLERK), me.has_role(Role.CENTRE_REVIEWER)
    if clerk:
        received = db.scalar(select(func.count()).select_from(Case).where(Case.state == "received")) or 0
        items.append(
            Todo("待初审交办", received, "/cases?status=received", "收集后初审，交办或不予受理（第九条）")
        )
    if reviewer:
        review = db.scalar(select(func.count()).select_from(Case).where(Case.state == "under_review")) or 0
        items.append(
            Todo(
                "待审核发布",
                review,
                "/cases?status=under_review",
                "审核通过当日公开（第十二条）",
                urgent=True,
            )
        )
    if clerk or reviewer:
        with cross_workspace(db):
            requests = sum(_by_state(db, CENTRE_DECIDES).values())
        overdue = overdue_count(db, today)
        if clerk:
            items.append(
                Todo(
                    "承办单位申请待决定",
                    requests,
                    "/cases?status=assigned",
                    "退办、延期、解释说明（第十四条、第十五条、第十八条）",
                )
            )
        items.append(
            Todo(
                "承办单位逾期未办",
                overdue,
                "/cases?status=assigned",
                "提醒、催办、督办（第十三条、第十九条）",
                urgent=True,
            )
        )
    return items


def _oversight(db: Session, me: CurrentUser, today: date) -> list[Todo]:
    href = "/supervision" if me.has_role(Role.SUPERVISOR) else "/oversight"
    overdue = overdue_count(db, today)
    return [Todo("承办单位逾期未办", overdue, href, "督查、督办、移交（第十九条、第二十条）", urgent=True)]


def todo(db: Session, me: CurrentUser, today: date) -> list[Todo]:
    """The to-do list of ``me`` in their current workspace (empty for roles that act on no case:
    administrators)."""
    if any(me.has_role(r) for r in UNIT_ROLES) and me.can(Permission.ASSIGNMENT_VIEW):
        return _unit(db, me, today)
    if me.has_role(Role.CENTRE_CLERK) or me.has_role(Role.CENTRE_REVIEWER):
        return _centre(db, me, today)
    if me.can(Permission.CASE_OVERSEE):
        return _oversight(db, me, today)
    return []
