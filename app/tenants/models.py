"""Workspaces and the role grants that tie people to them."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, utcnow


class WorkspaceKind(enum.StrEnum):
    CENTRE = "centre"  # 运维中心 (第二条, 第六条)
    SUPERVISOR = "supervisor"  # 市政府办公室（督查室） (第六条, 第二十条)
    COUNTY = "county"  # 旗县市区 and 开发区
    BUREAU = "bureau"  # 市直部门
    VERTICAL = "vertical"  # 驻市垂管部门

    @property
    def label(self) -> str:
        return WORKSPACE_KIND_LABELS[self]

    @property
    def is_unit(self) -> bool:
        """Units (承办单位) receive and answer assignment sheets."""
        return self in {WorkspaceKind.COUNTY, WorkspaceKind.BUREAU, WorkspaceKind.VERTICAL}


WORKSPACE_KIND_LABELS = {
    WorkspaceKind.CENTRE: "运维中心",
    WorkspaceKind.SUPERVISOR: "督查室",
    WorkspaceKind.COUNTY: "旗县市区",
    WorkspaceKind.BUREAU: "市直部门",
    WorkspaceKind.VERTICAL: "驻市垂管部门",
}


class WorkspaceOwned:
    """Marker mixin: rows that belong to exactly one workspace.

    Every query on such a class is filtered to the session's current workspace, and every write
    is checked against it (app.tenants.scope). On PostgreSQL a row-level security policy on the
    table is the second wall.
    """

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    short_name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[WorkspaceKind] = mapped_column(String(20), index=True)
    # Public contact data of the unit, published with its replies (第十二条).
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def kind_label(self) -> str:
        return WorkspaceKind(self.kind).label


class Section(WorkspaceOwned, Base):
    """科室: an office of a unit that assignments are routed to (第七条: 具体科室和专人负责)."""

    __tablename__ = "sections"
    __table_args__ = (UniqueConstraint("workspace_id", "name", name="uq_sections_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(WorkspaceOwned, Base):
    """One role a person holds in one workspace (the Casbin ``g`` relation, kept in the database)."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("workspace_id", "user_id", "role", name="uq_memberships_grant"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(40))
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    workspace: Mapped[Workspace] = relationship(lazy="joined")
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")


from app.accounts.models import User  # noqa: E402  (relationship target)
