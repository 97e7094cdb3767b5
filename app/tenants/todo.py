"""工作台 · 待办事项: what awaits the signed-in person in their workspace now — the matters their
roles act on next, counted, each linking to where they act, the overdue ones first and marked.

Each count is the number of rows the page it links to lists: a unit's counts are its inbox's views
(``app.cases.services.inbox_counts``, through the request's tenant-scoped session: its own
assignments only); the centre's its queue's states and views (``centre_counts``; the units'
requests read across workspaces, as the centre does on that page); the supervision office's and
city leaders' the dashboard's 逾期 total (``app.supervision.queries.overdue_count``), only for
roles holding ``Permission.CASE_OVERSEE``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.cases.services import CENTRE_VIEWS, INBOX_VIEWS, centre_counts, inbox_counts
from app.permissions import Permission, Role
from app.supervision.queries import overdue_count

UNIT_ROLES = (Role.HANDLER, Role.DEPUTY, Role.PRINCIPAL, Role.UNIT_ADMIN)


@dataclass(frozen=True)
class Todo:
    label: str
    count: int
    href: str
    hint: str
    urgent: bool = False  # shown in red while count > 0


# The unit's to-do items: inbox view, hint, urgent; and which roles see them (None: every unit role).
_UNIT_ITEMS: list[tuple[str, str, bool, tuple[Role, ...] | None]] = [
    ("overdue", "已超过办理期限（第十九条）", True, None),
    ("due_soon", "今日或下一个工作日到期（第十三条）", True, None),
    ("pending", "收到承办单后立即签收核查（第十一条）", False, None),
    ("handling", "5 个工作日内形成回复意见（第十一条）", False, (Role.HANDLER,)),
    ("awaiting_signoff", "主要负责人审签并加盖公章（第十一条）", False, (Role.PRINCIPAL,)),
    ("return_drafted", "分管领导签字，当日退回（第十五条）", False, (Role.DEPUTY,)),
    ("extension_requested", "延期不超过 3 个工作日（第十四条）", False, (Role.DEPUTY, Role.PRINCIPAL)),
]


def _unit(db: Session, me: CurrentUser, today: date) -> list[Todo]:
    """The unit's own assignments (the session's workspace scope), as the inbox's views count them."""
    counts = inbox_counts(db, today)
    return [
        Todo(INBOX_VIEWS[view], counts[view], f"/inbox?view={view}", hint, urgent)
        for view, hint, urgent, roles in _UNIT_ITEMS
        if roles is None or any(me.has_role(r) for r in roles)
    ]


def _centre(db: Session, me: CurrentUser, today: date) -> list[Todo]:
    """The centre's queue (its own cases) as its tabs count them."""
    counts = centre_counts(db, today, ("received", "under_review"))
    items: list[Todo] = []
    if me.has_role(Role.CENTRE_CLERK):
        items += [
            Todo(
                "待初审交办",
                counts["received"],
                "/cases?status=received",
                "收集后初审，交办或不予受理（第九条）",
            ),
            Todo(
                CENTRE_VIEWS["requests"],
                counts["requests"],
                "/cases?view=requests",
                "退办、延期、解释说明（第十四条、第十五条、第十八条）",
            ),
        ]
    if me.has_role(Role.CENTRE_REVIEWER):
        items.append(
            Todo(
                "待审核发布",
                counts["under_review"],
                "/cases?status=under_review",
                "审核通过当日公开（第十二条）",
                urgent=True,
            )
        )
    items.append(
        Todo(
            CENTRE_VIEWS["overdue"],
            counts["overdue"],
            "/cases?view=overdue",
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
