"""Writes on workspaces and their staff. Each verb takes the acting person and the session.

Staff verbs run in the acting person's workspace-scoped session: a unit administrator can only
ever see and change the staff of their own unit (第七条: each unit names its own leaders and
handlers). Workspace verbs are for the system administrator and cross workspaces explicitly.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.accounts.models import User, UserSession
from app.accounts.passwords import check_password_strength, hash_password
from app.audit.services import record
from app.db import utcnow
from app.errors import Conflict, InvalidInput, NotFound
from app.permissions import ROLES_BY_KIND, ROLES_GRANTABLE_BY_STAFF_ADMIN, Role
from app.tenants.models import Membership, Section, Workspace, WorkspaceKind
from app.tenants.scope import cross_workspace

USERNAME_RE = re.compile(r"^[a-z][a-z0-9._-]{2,31}$")
PHONE_RE = re.compile(r"^[0-9+\-() ]{0,40}$")


@dataclass
class StaffMember:
    user: User
    roles: list[str] = field(default_factory=list)


def current_workspace(db: Session, actor: CurrentUser) -> Workspace:
    if actor.workspace_id is None:
        raise NotFound()
    ws = db.get(Workspace, actor.workspace_id)
    if ws is None:
        raise NotFound()
    return ws


def list_staff(db: Session) -> list[StaffMember]:
    """The people of the session's workspace with their roles there (scoped by the tenant layer)."""
    members: dict[int, StaffMember] = {}
    for m in db.scalars(select(Membership).order_by(Membership.user_id, Membership.role)):
        members.setdefault(m.user_id, StaffMember(m.user)).roles.append(m.role)
    return sorted(members.values(), key=lambda s: s.user.display_name)


def get_staff_member(db: Session, user_id: int) -> StaffMember:
    """A person of this workspace; anyone else is 'not found'."""
    grants = db.scalars(select(Membership).where(Membership.user_id == user_id)).all()
    if not grants:
        raise NotFound()
    return StaffMember(grants[0].user, sorted(g.role for g in grants))


def _check_role(kind: str, role: str, *, by_system_admin: bool = False) -> Role:
    allowed = ROLES_BY_KIND[kind] if by_system_admin else ROLES_GRANTABLE_BY_STAFF_ADMIN[kind]
    if role not in {r.value for r in allowed}:
        raise InvalidInput("该角色不适用于本工作区。", field="role")
    return Role(role)


def validate_new_person(username: str, display_name: str, office_phone: str, email: str) -> None:
    if not USERNAME_RE.match(username):
        raise InvalidInput(
            "用户名须以小写字母开头，由 3–32 位小写字母、数字、点、下划线或连字符组成。", field="username"
        )
    if not display_name.strip() or len(display_name) > 64:
        raise InvalidInput("请填写姓名（不超过 64 个字）。", field="display_name")
    if not PHONE_RE.match(office_phone):
        raise InvalidInput("办公电话格式不正确。", field="office_phone")
    if email and ("@" not in email or len(email) > 200):
        raise InvalidInput("电子邮箱格式不正确。", field="email")


def _new_user(
    db: Session, username: str, display_name: str, office_phone: str, email: str, password: str
) -> User:
    username = username.strip().lower()
    validate_new_person(username, display_name, office_phone, email)
    check_password_strength(password, username)
    if db.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput("该用户名已被使用。", field="username")
    user = User(
        username=username,
        display_name=display_name.strip(),
        office_phone=office_phone.strip(),
        email=email.strip(),
        password_hash=hash_password(password),
        must_change_password=True,
    )
    db.add(user)
    db.flush()
    return user


def create_staff_member(
    db: Session,
    actor: CurrentUser,
    *,
    username: str,
    display_name: str,
    office_phone: str,
    email: str,
    password: str,
    role: str,
) -> User:
    """A new account in the actor's unit, with one role; the person sets a password on first sign-in."""
    ws = current_workspace(db, actor)
    checked = _check_role(ws.kind, role)
    user = _new_user(db, username, display_name, office_phone, email, password)
    db.add(Membership(workspace_id=ws.id, user_id=user.id, role=checked.value, granted_by_id=actor.user_id))
    record(
        db,
        "staff.user_created",
        actor_id=actor.user_id,
        workspace_id=ws.id,
        target=user.username,
        ip=actor.ip,
        role=checked.value,
    )
    return user


def grant_role(db: Session, actor: CurrentUser, *, username: str, role: str) -> Membership:
    """Give a person (of this unit, or an existing account taking a second post) a role here."""
    ws = current_workspace(db, actor)
    checked = _check_role(ws.kind, role)
    user = db.scalar(select(User).where(User.username == username.strip().lower(), User.is_active.is_(True)))
    if user is None:
        raise InvalidInput("没有该用户名的在用账户。", field="username")
    exists = db.scalar(
        select(Membership.id).where(Membership.user_id == user.id, Membership.role == checked.value)
    )
    if exists is not None:
        raise Conflict("该人员已担任此角色。")
    grant = Membership(workspace_id=ws.id, user_id=user.id, role=checked.value, granted_by_id=actor.user_id)
    db.add(grant)
    try:
        db.flush()
    except IntegrityError as exc:  # a concurrent grant of the same role
        raise Conflict("该人员已担任此角色。") from exc
    record(
        db,
        "staff.role_granted",
        actor_id=actor.user_id,
        workspace_id=ws.id,
        target=user.username,
        ip=actor.ip,
        role=checked.value,
    )
    return grant


def revoke_role(db: Session, actor: CurrentUser, *, user_id: int, role: str) -> None:
    """Take a role away. The last administrator of a unit cannot be removed (someone must manage it)."""
    ws = current_workspace(db, actor)
    grant = db.scalar(select(Membership).where(Membership.user_id == user_id, Membership.role == role))
    if grant is None:
        raise NotFound()
    admin_roles = {Role.UNIT_ADMIN.value, Role.CENTRE_ADMIN.value}
    if role in admin_roles:
        admins = db.scalar(select(func.count()).select_from(Membership).where(Membership.role == role))
        if (admins or 0) <= 1:
            raise InvalidInput("每个工作区至少需要保留一名管理员。", field="role")
    if role == Role.SYSTEM_ADMIN.value:
        raise InvalidInput("系统管理员角色只能由系统管理员调整。", field="role")
    username = grant.user.username
    db.delete(grant)
    db.flush()
    remaining = db.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == user_id))
    if not remaining:
        # No post left here: close the person's sessions that sit in this workspace.
        for s in db.scalars(
            select(UserSession).where(UserSession.user_id == user_id, UserSession.workspace_id == ws.id)
        ):
            s.workspace_id = None
    record(
        db,
        "staff.role_revoked",
        actor_id=actor.user_id,
        workspace_id=ws.id,
        target=username,
        ip=actor.ip,
        role=role,
    )


def reset_password(db: Session, actor: CurrentUser, *, user_id: int, new_password: str) -> None:
    """A unit administrator sets a temporary password for one of their own staff only.

    A person who also holds a post elsewhere is reset by a system administrator instead: one
    unit must not take over an account another unit relies on.
    """
    ws = current_workspace(db, actor)
    member = get_staff_member(db, user_id)
    with cross_workspace(db):
        elsewhere = db.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.user_id == user_id, Membership.workspace_id != ws.id)
        )
    if elsewhere:
        raise InvalidInput("该人员在其他单位也有任职，请联系系统管理员重置密码。")
    check_password_strength(new_password, member.user.username)
    member.user.password_hash = hash_password(new_password)
    member.user.password_changed_at = utcnow()
    member.user.must_change_password = True
    member.user.locked_until = None
    member.user.failed_logins = 0
    record(
        db,
        "auth.password_reset",
        actor_id=actor.user_id,
        workspace_id=ws.id,
        target=member.user.username,
        ip=actor.ip,
    )


# --- workspaces (system administrator) -------------------------------------------------------


@dataclass
class WorkspaceRow:
    workspace: Workspace
    staff: int
    admins: list[str]


def list_workspaces(db: Session) -> list[WorkspaceRow]:
    with cross_workspace(db):
        counts = dict(
            db.execute(
                select(Membership.workspace_id, func.count(func.distinct(Membership.user_id))).group_by(
                    Membership.workspace_id
                )
            ).all()
        )
        admins: dict[int, list[str]] = {}
        for m in db.scalars(
            select(Membership).where(Membership.role.in_([Role.UNIT_ADMIN.value, Role.CENTRE_ADMIN.value]))
        ):
            admins.setdefault(m.workspace_id, []).append(m.user.display_name)
    workspaces = db.scalars(select(Workspace).order_by(Workspace.id)).all()
    return [WorkspaceRow(ws, counts.get(ws.id, 0), admins.get(ws.id, [])) for ws in workspaces]


def get_workspace(db: Session, workspace_id: int) -> Workspace:
    ws = db.get(Workspace, workspace_id)
    if ws is None:
        raise NotFound()
    return ws


SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,62}$")


def create_workspace(
    db: Session,
    actor: CurrentUser,
    *,
    slug: str,
    name: str,
    short_name: str,
    kind: str,
    contact_phone: str = "",
    address: str = "",
) -> Workspace:
    slug = slug.strip().lower()
    if not SLUG_RE.match(slug):
        raise InvalidInput("标识须以小写字母开头，由小写字母、数字和连字符组成。", field="slug")
    if kind not in {k.value for k in WorkspaceKind}:
        raise InvalidInput("请选择单位类型。", field="kind")
    if not name.strip() or not short_name.strip():
        raise InvalidInput("请填写单位全称和简称。", field="name")
    if not PHONE_RE.match(contact_phone):
        raise InvalidInput("联系电话格式不正确。", field="contact_phone")
    if db.scalar(select(Workspace.id).where((Workspace.slug == slug) | (Workspace.name == name.strip()))):
        raise InvalidInput("已有相同标识或名称的单位。", field="slug")
    ws = Workspace(
        slug=slug,
        name=name.strip(),
        short_name=short_name.strip(),
        kind=kind,
        contact_phone=contact_phone.strip(),
        address=address.strip(),
    )
    db.add(ws)
    db.flush()
    record(
        db,
        "workspace.created",
        actor_id=actor.user_id,
        workspace_id=actor.workspace_id,
        target=slug,
        ip=actor.ip,
        name=ws.name,
        kind=kind,
    )
    return ws


def update_workspace(
    db: Session,
    actor: CurrentUser,
    workspace_id: int,
    *,
    name: str,
    short_name: str,
    contact_phone: str,
    address: str,
    is_active: bool,
) -> Workspace:
    ws = get_workspace(db, workspace_id)
    if not name.strip() or not short_name.strip():
        raise InvalidInput("请填写单位全称和简称。", field="name")
    if not PHONE_RE.match(contact_phone):
        raise InvalidInput("联系电话格式不正确。", field="contact_phone")
    if ws.id == actor.workspace_id and not is_active:
        raise InvalidInput("不能停用您当前所在的工作区。", field="is_active")
    clash = db.scalar(select(Workspace.id).where(Workspace.name == name.strip(), Workspace.id != ws.id))
    if clash:
        raise InvalidInput("已有相同名称的单位。", field="name")
    before = {
        "name": ws.name,
        "short_name": ws.short_name,
        "contact_phone": ws.contact_phone,
        "address": ws.address,
        "is_active": ws.is_active,
    }
    ws.name, ws.short_name = name.strip(), short_name.strip()
    ws.contact_phone, ws.address, ws.is_active = contact_phone.strip(), address.strip(), is_active
    record(
        db,
        "workspace.updated",
        actor_id=actor.user_id,
        workspace_id=actor.workspace_id,
        target=ws.slug,
        ip=actor.ip,
        before=before,
    )
    return ws


def appoint_admin(
    db: Session,
    actor: CurrentUser,
    workspace_id: int,
    *,
    username: str,
    display_name: str = "",
    office_phone: str = "",
    email: str = "",
    password: str = "",
) -> User:
    """Make a person (existing, or new when a password is given) the administrator of a workspace."""
    ws = get_workspace(db, workspace_id)
    role = Role.CENTRE_ADMIN if ws.kind == WorkspaceKind.CENTRE else Role.UNIT_ADMIN
    username = username.strip().lower()
    user = db.scalar(select(User).where(User.username == username))
    if user is None:
        if not password:
            raise InvalidInput("没有该用户名的账户；新建账户请同时填写姓名和初始密码。", field="username")
        user = _new_user(db, username, display_name, office_phone, email, password)
    with cross_workspace(db):
        exists = db.scalar(
            select(Membership.id).where(
                Membership.workspace_id == ws.id, Membership.user_id == user.id, Membership.role == role.value
            )
        )
        if exists:
            raise Conflict("该人员已是此工作区的管理员。")
        db.add(Membership(workspace_id=ws.id, user_id=user.id, role=role.value, granted_by_id=actor.user_id))
        record(
            db,
            "staff.role_granted",
            actor_id=actor.user_id,
            workspace_id=ws.id,
            target=user.username,
            ip=actor.ip,
            role=role.value,
        )
        db.flush()
    return user


def import_units(db: Session, csv_path: Path) -> int:
    """Create the workspaces listed in the units CSV (slug,name,short_name,kind); existing ones are kept."""
    created = 0
    with csv_path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for n, row in enumerate(rows, start=2):
        if row["kind"] not in {k.value for k in WorkspaceKind}:
            raise InvalidInput(f"第 {n} 行：未知的单位类型 {row['kind']!r}。")
        if db.scalar(select(Workspace.id).where(Workspace.slug == row["slug"])) is None:
            db.add(
                Workspace(slug=row["slug"], name=row["name"], short_name=row["short_name"], kind=row["kind"])
            )
            created += 1
    db.flush()
    return created


# --- sections (科室), 第七条: 明确分管领导、具体科室和专人负责 -------------------------------------------


def list_sections(db: Session) -> list[Section]:
    return list(db.scalars(select(Section).order_by(Section.name)))


def add_section(db: Session, actor: CurrentUser, *, name: str) -> Section:
    ws = current_workspace(db, actor)
    if not WorkspaceKind(ws.kind).is_unit:
        raise InvalidInput("科室只在承办单位设置。", field="section_name")
    name = name.strip()
    if not name or len(name) > 60:
        raise InvalidInput("请填写科室名称（不超过 60 字）。", field="section_name")
    if db.scalar(select(Section.id).where(Section.name == name)) is not None:
        raise InvalidInput("本单位已有同名科室。", field="section_name")
    section = Section(workspace_id=ws.id, name=name)
    db.add(section)
    db.flush()
    record(db, "staff.section_added", actor_id=actor.user_id, workspace_id=ws.id, target=name, ip=actor.ip)
    return section


def remove_section(db: Session, actor: CurrentUser, *, section_id: int) -> None:
    """Assignments routed to it keep their handler; their section becomes empty."""
    ws = current_workspace(db, actor)
    section = db.get(Section, section_id)
    if section is None:
        raise NotFound()
    name = section.name
    db.delete(section)
    db.flush()
    record(db, "staff.section_removed", actor_id=actor.user_id, workspace_id=ws.id, target=name, ip=actor.ip)


def unit_handlers(db: Session) -> list[User]:
    """The handlers (经办人) of the session's workspace, for routing an assignment."""
    return list(
        db.scalars(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.role == Role.HANDLER.value)
            .order_by(User.display_name)
        )
    )
