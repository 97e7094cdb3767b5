"""The one function that changes a case's or an assignment's state.

``apply`` looks the action up in the transition table (app.workflows.transitions), checks the
actor's role, the object's version and the transition's guards, then sets the new state, runs the
effects, and writes a timeline entry and an audit event — all in the caller's transaction, so a
refusal anywhere changes nothing. Nothing else in the code base assigns ``state``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from app.audit.services import record
from app.db import utcnow
from app.errors import Conflict, InvalidInput

if TYPE_CHECKING:
    from app.accounts.identity import CurrentUser
    from app.cases.models import Assignment, Case

SYSTEM = "system"  # transitions the engine itself takes as the effect of another one


class TransitionNotAllowed(InvalidInput):
    """The action does not exist in this state, or not for this role."""


@dataclass
class Step:
    """Everything a guard or an effect may look at."""

    db: Session
    actor: CurrentUser | None
    obj: Any  # Case | Assignment
    payload: dict[str, Any]
    now: datetime
    transition: Transition
    comment: str = ""
    signature: str = ""


Guard = Callable[[Step], str | None]  # a refusal message in Chinese, or None
Effect = Callable[[Step], None]


@dataclass(frozen=True)
class Transition:
    machine: str  # "case" | "assignment"
    sources: tuple[str, ...]
    action: str
    roles: tuple[str, ...]
    target: str
    label: str  # the Chinese name of the step, as on the timeline and the flow chart
    article: str  # where in the regulation it comes from
    guards: tuple[Guard, ...] = ()
    effects: tuple[Effect, ...] = field(default=())


def find(table: tuple[Transition, ...], machine: str, state: str, action: str) -> Transition | None:
    return next(
        (t for t in table if t.machine == machine and t.action == action and state in t.sources), None
    )


def machine_of(obj: Any) -> str:
    return "case" if type(obj).__name__ == "Case" else "assignment"


def apply(
    db: Session,
    actor: CurrentUser | None,
    obj: Case | Assignment,
    action: str,
    *,
    expected_version: int | None = None,
    **payload: Any,
) -> Transition:
    """Take ``action`` on ``obj`` as ``actor`` (None = the system, as an effect of another step)."""
    from app.workflows.transitions import TABLE

    machine = machine_of(obj)
    transition = find(TABLE, machine, obj.state, action)
    if transition is None:
        any_state = any(t.machine == machine and t.action == action for t in TABLE)
        if any_state:
            raise TransitionNotAllowed("该办件当前状态下不能执行此操作，请刷新后查看最新状态。")
        raise TransitionNotAllowed("没有这项操作。")
    if actor is None:
        if SYSTEM not in transition.roles:
            raise TransitionNotAllowed("没有这项操作。")
    else:
        if actor.workspace_id != obj.workspace_id or not any(r in transition.roles for r in actor.roles):
            raise TransitionNotAllowed("您的角色不能执行此操作。")
    if expected_version is not None and expected_version != obj.version:
        raise Conflict("该办件已被他人处理，请刷新后查看最新状态。")
    step = Step(
        db,
        actor,
        obj,
        payload,
        utcnow(),
        transition,
        comment=str(payload.get("comment", "") or "").strip(),
        signature=str(payload.get("signature", "") or ""),
    )
    for guard in transition.guards:
        refusal = guard(step)
        if refusal:
            raise InvalidInput(refusal)
    source = obj.state
    obj.state = transition.target
    for effect in transition.effects:
        effect(step)
    _trace(step, source)
    from app.documents.queue import after_transition

    after_transition(db, obj, action)
    db.flush()
    return transition


def _trace(step: Step, source: str) -> None:
    from app.cases.models import Assignment, TimelineEntry
    from app.tenants.models import Workspace
    from app.tenants.scope import cross_workspace

    obj = step.obj
    case_id = obj.case_id if isinstance(obj, Assignment) else obj.id
    with cross_workspace(step.db):
        workspace = step.db.get(Workspace, obj.workspace_id)
        step.db.add(
            TimelineEntry(
                workspace_id=obj.workspace_id,
                case_id=case_id,
                assignment_id=obj.id if isinstance(obj, Assignment) else None,
                at=step.now,
                actor_id=step.actor.user_id if step.actor else None,
                actor_name=step.actor.display_name if step.actor else "系统",
                workspace_name=workspace.short_name if workspace else "",
                action=step.transition.action,
                from_state=source,
                to_state=step.transition.target,
                comment=step.comment,
                signature=step.signature,
            )
        )
        record(
            step.db,
            f"workflow.{step.transition.machine}.{step.transition.action}",
            actor_id=step.actor.user_id if step.actor else None,
            workspace_id=obj.workspace_id,
            target=f"{step.transition.machine}:{obj.id}",
            ip=step.actor.ip if step.actor else "",
            source=source,
            target_state=step.transition.target,
        )


def available(actor: CurrentUser, obj: Case | Assignment) -> set[str]:
    """The actions ``actor`` may take on ``obj`` now (before guards), for showing the right forms."""
    from app.workflows.transitions import TABLE

    if actor.workspace_id != obj.workspace_id:
        return set()
    machine = machine_of(obj)
    return {
        t.action
        for t in TABLE
        if t.machine == machine and obj.state in t.sources and any(r in t.roles for r in actor.roles)
    }
