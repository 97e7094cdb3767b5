"""Documents are rendered by workers, never by a page: each event that creates a document queues it
through the outbox in the event's own transaction (it is issued if and only if the event commits),
and a worker issues it — once per content (services.issue caches by content hash).

The triggers: dispatch → the 承办单 of every unit of the round; a principal's signature → the
signed and sealed 回复意见 (and its PAdES signature); the deputy's signature on a return → 退办单;
an extension decided → 延办申请; each rung of 三单一函 → its notice; archiving → the case file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import system_session

log = logging.getLogger("minpan.documents")

# workflow action → (document kind, the row it is built from)
ASSIGNMENT_TRIGGERS = {
    "sign": "reply_letter",
    "sign_return": "return_sheet",
    "extension_approved": "extension_request",
    "extension_denied": "extension_request",
    "refuse_extension": "extension_request",
}


def _target(kind: str, ref: str) -> str:
    return f"{kind}|{ref}"


def queue(db: Session, kind: str, ref: str, version: object = "") -> None:
    """Queue document ``kind`` of ``ref`` (``assignment:12``, ``case:3``, ``escalation-key:…``,
    ``sheets:3:2`` for the 承办单 of case 3 round 2)."""
    from app.notify.services import enqueue_work

    enqueue_work(db, key=f"doc:{kind}:{ref}:{version}", channel="document", recipient=_target(kind, ref))


def queue_many(db: Session, items: Sequence[tuple[str, str]]) -> None:
    """Bulk: (kind, ref) pairs, handed out by the relay (the sweep may issue thousands at once)."""
    from app.notify.services import enqueue_many

    enqueue_many(db, [(f"doc:{kind}:{ref}:", "document", _target(kind, ref)) for kind, ref in items])


def after_transition(db: Session, obj: Any, action: str) -> None:
    """Called by the workflow engine after every step, in its transaction."""
    from app.cases.models import Assignment, Case

    if isinstance(obj, Case):
        if action == "dispatch":
            queue(db, "assignment_sheet", f"sheets:{obj.id}", obj.version)
        elif action == "archive":
            queue(db, "case_file", f"case:{obj.id}")
    elif isinstance(obj, Assignment) and action in ASSIGNMENT_TRIGGERS:
        queue(db, ASSIGNMENT_TRIGGERS[action], f"assignment:{obj.id}", obj.version)


def issue(target: str) -> int:
    """The worker's side (the outbox's ``document`` channel): issue what ``target`` names. Returns
    how many documents were rendered; rows that are gone are skipped, documents already issued for
    the same content are not rendered again."""
    from app.documents import services
    from app.documents.sources import build
    from app.errors import InvalidInput
    from app.tenants.models import Workspace

    kind, ref = target.split("|", 1)
    model, _, ident = ref.partition(":")
    with system_session() as db:  # read: the sources still to render
        todo = []
        for row in _rows(db, model, ident, target):
            try:
                source = build(db, kind, row)
            except InvalidInput as exc:  # e.g. a reply no longer signed: nothing to issue, ever
                log.warning("document %s not issued: %s", target, exc)
                continue
            if services.find(db, source) is None:
                unit = db.get(Workspace, source.workspace_id)
                todo.append((source, unit.name if unit else ""))
        found = len(todo)
    rendered = [(source, *services.render_source(source, unit_name)) for source, unit_name in todo]
    with system_session() as db:  # write: a short transaction, nothing rendered inside it
        for source, pdf, pages in rendered:
            services.store(db, source, pdf, pages)
    return found


def _rows(db: Session, model: str, ident: str, target: str) -> list[Any]:
    from app.cases.models import Assignment, Case
    from app.escalation.models import Escalation

    if model == "sheets":
        latest = (
            select(Assignment.round)
            .where(Assignment.case_id == int(ident))
            .order_by(Assignment.round.desc())
            .limit(1)
            .scalar_subquery()
        )
        return list(
            db.scalars(select(Assignment).where(Assignment.case_id == int(ident), Assignment.round == latest))
        )
    if model == "assignment":
        return [r for r in [db.get(Assignment, int(ident))] if r is not None]
    if model == "case":
        return [r for r in [db.get(Case, int(ident))] if r is not None]
    if model == "escalation-key":  # the rung's four values as text (escalation.services._key)
        from app.escalation.services import by_key

        return list(db.scalars(select(Escalation).where(by_key(ident))))
    raise ValueError(f"unknown document target {target!r}")
