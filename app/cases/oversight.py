"""The supervision office's and city leaders' view of every case, and leaders' instructions.

第六条: the city government office supervises the handling results; city leaders write
instructions (领导批示) on cases, which the centre archives with the case (第十六条). These reads
cross workspaces by role — only routes behind Permission.CASE_OVERSEE call them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.audit.services import record
from app.cases.models import Assignment, Case, Instruction, TimelineEntry
from app.cases.vocab import CASE_STATES
from app.db import utcnow
from app.errors import InvalidInput, NotFound
from app.tenants.models import Workspace
from app.tenants.scope import cross_workspace

MAX_INSTRUCTION = 2000


def all_cases(db: Session, state: str | None, limit: int = 100) -> list[Case]:
    query = select(Case).order_by(Case.registered_at.desc()).limit(limit)
    if state in CASE_STATES:
        query = query.where(Case.state == state)
    with cross_workspace(db):
        return list(db.scalars(query))


def any_case(db: Session, case_id: int) -> Case:
    with cross_workspace(db):
        case = db.get(Case, case_id)
    if case is None:
        raise NotFound()
    return case


def instructions_on(db: Session, case_id: int) -> list[Instruction]:
    """The instructions on one case; callers have established the right to see that case."""
    with cross_workspace(db):
        return list(
            db.scalars(
                select(Instruction)
                .where(Instruction.case_id == case_id)
                .order_by(Instruction.at, Instruction.id)
            )
        )


def instructions_for_assignment(db: Session, assignment: Assignment) -> list[Instruction]:
    """A unit sees the instructions on the cases it was given (the assignment is already its own)."""
    return instructions_on(db, assignment.case_id)


def add_instruction(db: Session, actor: CurrentUser, case_id: int, text: str) -> Instruction:
    """领导批示: a city leader's instruction, kept with the case and on its timeline."""
    text = text.strip()
    if not text:
        raise InvalidInput("请填写批示内容。", field="text")
    if len(text) > MAX_INSTRUCTION:
        raise InvalidInput(f"批示内容不超过 {MAX_INSTRUCTION} 字。", field="text")
    case = any_case(db, case_id)
    if case.state == "archived":
        raise InvalidInput("该留言已归档，不能再批示。")
    now = utcnow()
    with cross_workspace(db):
        centre = db.get(Workspace, case.workspace_id)
        instruction = Instruction(
            workspace_id=case.workspace_id,
            case_id=case.id,
            author_id=actor.user_id,
            author_name=actor.display_name,
            text=text,
            at=now,
        )
        db.add(instruction)
        db.add(
            TimelineEntry(
                workspace_id=case.workspace_id,
                case_id=case.id,
                at=now,
                actor_id=actor.user_id,
                actor_name=actor.display_name,
                workspace_name=centre.short_name if centre else "",
                action="instruct",
                comment=text,
            )
        )
        record(
            db,
            "case.instructed",
            actor_id=actor.user_id,
            workspace_id=actor.workspace_id,
            target=f"case:{case.id}",
            ip=actor.ip,
        )
        db.flush()
    return instruction


def oversight_timeline(db: Session, case: Case) -> list[TimelineEntry]:
    with cross_workspace(db):
        return list(
            db.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.case_id == case.id)
                .order_by(TimelineEntry.at, TimelineEntry.id)
            )
        )


def ladder_of(db: Session, case_id: int) -> tuple[list[Any], list[Assignment]]:
    """The case's 三单一函 so far, and the lead assignments a supervisor may transfer (第二十条:
    only after 催办 or 督办 has been tried)."""
    from app.escalation.services import of_case

    with cross_workspace(db):
        rungs = of_case(db, case_id)
        tried = {e.assignment_id for e in rungs if e.rung in ("urge", "supervise")}
        done = {(e.assignment_id, e.due_date) for e in rungs if e.rung == "transfer"}
        leads = [
            a
            for a in db.scalars(
                select(Assignment).where(Assignment.case_id == case_id, Assignment.is_lead.is_(True))
            )
            if a.id in tried and (a.id, a.due_date) not in done
        ]
    return rungs, leads


def transfer(db: Session, actor: CurrentUser, case_id: int, assignment_id: int, reason: str) -> str:
    """移交函 to 纪检监察, copied to 督查室: the supervisor's decision with its written reason."""
    from app.escalation import services as escalation
    from app.workflows.deadlines import local_date

    any_case(db, case_id)
    _, allowed = ladder_of(db, case_id)
    if assignment_id not in {a.id for a in allowed}:
        message = "只能移交已经催办或督办、尚未移交的牵头承办单位（第二十条）。"
        raise InvalidInput(message, field="assignment_id")
    with cross_workspace(db):
        letter = escalation.transfer(
            db,
            case_id=case_id,
            assignment_id=assignment_id,
            reason=reason,
            actor_id=actor.user_id,
            today=local_date(utcnow()),
        )
        return letter.number
