"""督办单 by hand (第十九条): 督查室 picks a lead unit's case from the quality list and issues a
督办单 with a written reason. The rung is the sweep's own (``app.escalation.services.supervise``:
same series, same key, so once per deadline whoever issues it); this module checks that the case
is still owed and gathers what the form shows. Only routes behind ``Permission.CASE_TRANSFER``
(督查员: the supervision office's escalation decisions, 督办 and 移交) call it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.cases.models import Assignment, Case
from app.errors import InvalidInput, NotFound
from app.escalation import services as escalation
from app.escalation.models import Escalation
from app.tenants.models import Workspace
from app.tenants.scope import cross_workspace


@dataclass(frozen=True)
class Target:
    """A lead assignment offered for a 督办单, with what the supervisor reads before deciding."""

    assignment: Assignment
    case: Case
    unit_name: str
    ladder: list[Escalation]
    owed: bool  # the reply is still owed on a live case: a 督办 may be issued
    supervised: bool  # a 督办单 for the current deadline exists already

    @property
    def refusal(self) -> str:
        if not self.owed:
            return "该留言已答复或已办结，不能再督办。"
        if self.supervised:
            return "该承办单位的这件留言在本办理期限内已经督办，不能重复督办。"
        return ""


def target(db: Session, case_id: int) -> Target:
    """The case's lead assignment of its latest round (404 for a missing case or one never
    dispatched), read across workspaces."""
    with cross_workspace(db):
        case = db.get(Case, case_id)
        assignment = db.scalar(
            select(Assignment)
            .where(Assignment.case_id == case_id, Assignment.is_lead.is_(True))
            .order_by(Assignment.round.desc(), Assignment.id.desc())
            .limit(1)
        )
        if case is None or assignment is None:
            raise NotFound()
        unit = db.get(Workspace, assignment.workspace_id)
        ladder = list(
            db.scalars(
                select(Escalation)
                .where(Escalation.assignment_id == assignment.id)
                .order_by(Escalation.issued_at, Escalation.id)
            )
        )
    owed = case.state == "assigned" and assignment.state in escalation.OWED_STATES
    supervised = any(e.rung == "supervise" and e.due_date == assignment.due_date for e in ladder)
    return Target(assignment, case, unit.name if unit else "", ladder, owed, supervised)


def issue(db: Session, actor: CurrentUser, case_id: int, reason: str, today: date) -> Any:
    """Issue the 督办单 to the case's lead unit (in the request's transaction); ``InvalidInput`` /
    ``Conflict`` in Chinese."""
    found = target(db, case_id)
    if not found.owed:
        raise InvalidInput(found.refusal)
    with cross_workspace(db):
        return escalation.supervise(
            db,
            case_id=found.case.id,
            assignment_id=found.assignment.id,
            reason=reason,
            actor_id=actor.user_id,
            actor_name=actor.display_name,
            today=today,
        )
