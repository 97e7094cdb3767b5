"""Tenant isolation, in one place.

Every SQLAlchemy session carries a :class:`TenantContext`. For a session bound to a workspace:

* every ORM SELECT / UPDATE / DELETE on a :class:`WorkspaceOwned` class is filtered to that
  workspace (``with_loader_criteria``), so another workspace's row is simply not found and the
  caller answers 404 exactly as for a missing one;
* every flush refuses to insert, change or delete a row of another workspace;
* on PostgreSQL the workspace is also set as a transaction-local setting that the row-level
  security policies of the workspace-owned tables read (the second wall, see the migration).

A session with no context at all refuses to query workspace-owned data (deny by default).
Only trusted code (the CLI, actors, the sign-in machinery) uses a ``system`` context.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from app.tenants.models import WorkspaceOwned

_KEY = "tenant"


class TenantViolation(RuntimeError):
    """Code tried to touch another workspace's data. Always a bug; never shown as data."""


@dataclass(frozen=True)
class TenantContext:
    workspace_id: int | None
    user_id: int | None
    system: bool = False

    @classmethod
    def system_context(cls) -> TenantContext:
        """For trusted code only: the CLI, actors, the sign-in machinery."""
        return cls(workspace_id=None, user_id=None, system=True)

    @classmethod
    def for_workspace(cls, workspace_id: int, user_id: int | None) -> TenantContext:
        return cls(workspace_id=workspace_id, user_id=user_id, system=False)


def bind_tenant(session: Session, ctx: TenantContext) -> None:
    session.info[_KEY] = ctx


def tenant_of(session: Session) -> TenantContext | None:
    ctx = session.info.get(_KEY)
    return ctx if isinstance(ctx, TenantContext) else None


def _touches_owned(state: ORMExecuteState) -> bool:
    return any(issubclass(mapper.class_, WorkspaceOwned) for mapper in state.all_mappers)


@event.listens_for(Session, "do_orm_execute")
def _scope_queries(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    ctx = tenant_of(state.session)
    if ctx is not None and ctx.system:
        return
    if ctx is None or ctx.workspace_id is None:
        if _touches_owned(state):
            raise TenantViolation("workspace-owned data queried without a workspace")
        return
    workspace_id = ctx.workspace_id
    state.statement = state.statement.options(
        with_loader_criteria(
            WorkspaceOwned,
            lambda cls: cls.workspace_id == workspace_id,
            include_aliases=True,
        )
    )


@event.listens_for(Session, "before_flush")
def _guard_writes(session: Session, _flush_context: Any, _instances: Any) -> None:
    ctx = tenant_of(session)
    if ctx is not None and ctx.system:
        return
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, WorkspaceOwned):
            continue
        if ctx is None or ctx.workspace_id is None or obj.workspace_id != ctx.workspace_id:
            raise TenantViolation(
                f"{type(obj).__name__} of workspace {obj.workspace_id} written from "
                f"workspace {ctx.workspace_id if ctx else None}"
            )


@event.listens_for(Session, "after_begin")
def _set_rls_context(session: Session, _transaction: Any, connection: Any) -> None:
    if connection.dialect.name != "postgresql":
        return
    ctx = tenant_of(session)
    workspace = "" if ctx is None or ctx.workspace_id is None else str(ctx.workspace_id)
    system = "on" if ctx is not None and ctx.system else "off"
    # In the same round trip: no JIT compilation for this transaction. The portal's statements are
    # short; JIT's 10–50 ms of compiling, triggered by high cost estimates (a search walking the
    # date index, a dashboard over a million rows), cost more than it ever saved (docs/benchmarks.md).
    connection.exec_driver_sql(
        "SELECT set_config('minpan.workspace_id', %(w)s, true), set_config('minpan.system', %(s)s, true), "
        "set_config('jit', 'off', true)",
        {"w": workspace, "s": system},
    )


@contextmanager
def cross_workspace(session: Session) -> Iterator[None]:
    """Let already-authorised code read and write across workspaces for one block.

    Only services behind a permission that is itself cross-workspace (a system administrator
    managing workspaces) call this, or a service that must check one fact across workspaces
    before acting (e.g. "does this person hold a post elsewhere?") and returns none of the other
    workspaces' data. The block is as small as the operation.
    """
    previous = tenant_of(session)
    bind_tenant(
        session,
        TenantContext(
            workspace_id=previous.workspace_id if previous else None,
            user_id=previous.user_id if previous else None,
            system=True,
        ),
    )
    _refresh_rls(session)
    try:
        yield
    finally:
        if previous is not None:
            bind_tenant(session, previous)
        else:
            session.info.pop(_KEY, None)
        _refresh_rls(session)


def _refresh_rls(session: Session) -> None:
    if session.in_transaction() and session.get_bind().dialect.name == "postgresql":
        _set_rls_context(session, None, session.connection())
