"""The deadline sweep: 提醒单 → 催办单 → 督办单 on exactly the right working days, once each.

Default thresholds (第十三条, 第十九条): 提醒 on the working day before the due date if the reply is
not yet submitted; 催办 on the first overdue working day; 督办 after 3 overdue working days. 移交
(第二十条) is a supervisor's decision, never automatic. Each rung is recorded once per deadline
(a unique key), on the unit's timeline, and notifies the unit's principal (主要负责同志, 第十三条).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.services import record
from app.calendar import days
from app.cases.models import Assignment, TimelineEntry
from app.db import system_session, utcnow
from app.escalation.models import Escalation, Notification
from app.permissions import Role
from app.tenants.models import Membership, Workspace
from app.workflows.effects import number_in_series

# The reply is still owed while the assignment is in one of these states.
OWED_STATES = (
    "pending",
    "handling",
    "awaiting_signoff",
    "return_drafted",
    "extension_requested",
    "extension_pending",
    "explanation_requested",
)
URGE_AFTER = 1  # overdue working days
SUPERVISE_AFTER = 3

RUNGS = {
    "reminder": ("提醒单", "提醒", "第十三条"),
    "urge": ("催办单", "催办", "第十九条"),
    "supervise": ("督办单", "督办", "第十九条"),
}


@dataclass
class SweepResult:
    issued: dict[str, int] = field(default_factory=lambda: {rung: 0 for rung in RUNGS})

    @property
    def total(self) -> int:
        return sum(self.issued.values())


def rungs_due(today: date, due: date) -> list[str]:
    """Which rungs a reply due on ``due`` has reached on ``today``."""
    calendar = days.current()
    if today > due:
        overdue = -calendar.working_days_between(today, due)
        return [r for r, n in (("urge", URGE_AFTER), ("supervise", SUPERVISE_AFTER)) if overdue >= n]
    return ["reminder"] if today >= calendar.previous_working_day(due) else []


def sweep(today: date) -> SweepResult:
    """Issue every rung due on ``today``. Safe to run any number of times, concurrently too."""
    result = SweepResult()
    with system_session() as db:
        horizon = today + timedelta(days=15)  # the reminder day is at most this far before a due date
        rows = db.scalars(
            select(Assignment).where(
                Assignment.state.in_(OWED_STATES),
                Assignment.is_lead.is_(True),
                Assignment.due_date <= horizon,
            )
        )
        for assignment in list(rows):
            for rung in rungs_due(today, assignment.due_date):
                if _issue(db, assignment, rung, today):
                    result.issued[rung] += 1
    return result


def _issue(db: Session, assignment: Assignment, rung: str, today: date) -> bool:
    key = f"{assignment.id}:{rung}:{assignment.due_date.isoformat()}"
    if db.scalar(select(Escalation.id).where(Escalation.key == key)) is not None:
        return False
    title, series, article = RUNGS[rung]
    try:
        with db.begin_nested():
            escalation = Escalation(
                workspace_id=assignment.workspace_id,
                key=key,
                assignment_id=assignment.id,
                case_id=assignment.case_id,
                rung=rung,
                due_date=assignment.due_date,
                issued_on=today,
                number=number_in_series(db, series, today.year),
            )
            db.add(escalation)
            db.flush()
    except IntegrityError:
        return False  # another sweep issued it at the same moment
    unit = db.get(Workspace, assignment.workspace_id)
    due = assignment.due_date
    text = (
        f"【{title}】{escalation.number}：承办单{assignment.sheet_number}《{assignment.title}》"
        f"{'将于' if rung == 'reminder' else '已于'} {due.month}月{due.day}日到期，"
        f"请主要负责同志督促办理（{article}）。"
    )
    db.add(
        TimelineEntry(
            workspace_id=assignment.workspace_id,
            case_id=assignment.case_id,
            assignment_id=assignment.id,
            at=utcnow(),
            actor_name="系统",
            workspace_name=unit.short_name if unit else "",
            action=rung,
            comment=text,
        )
    )
    principals = db.scalars(
        select(Membership.user_id).where(
            Membership.workspace_id == assignment.workspace_id, Membership.role == Role.PRINCIPAL.value
        )
    )
    for user_id in principals:
        db.add(
            Notification(
                workspace_id=assignment.workspace_id,
                key=f"{key}:{user_id}",
                user_id=user_id,
                text=text,
                link=f"/inbox/{assignment.id}",
            )
        )
    record(
        db,
        f"escalation.{rung}",
        actor_id=None,
        workspace_id=assignment.workspace_id,
        target=f"assignment:{assignment.id}",
        number=escalation.number,
    )
    db.flush()
    return True


def of_assignment(db: Session, assignment: Assignment) -> list[Escalation]:
    return list(
        db.scalars(
            select(Escalation).where(Escalation.assignment_id == assignment.id).order_by(Escalation.issued_at)
        )
    )


def unread_count(db: Session, user_id: int) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        )
        or 0
    )


def notifications(db: Session, user_id: int, limit: int = 100) -> list[Notification]:
    return list(
        db.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at.desc())
            .limit(limit)
        )
    )


def mark_all_read(db: Session, user_id: int) -> None:
    for row in db.scalars(
        select(Notification).where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ):
        row.read_at = utcnow()
