"""Request-scoped dependencies: the tenant-scoped database session and the signed-in person."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import Annotated, Any, TypeVar

import anyio
from litestar import Request
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from sqlalchemy.orm import Session

from app.accounts.identity import CurrentUser
from app.db import session_factory
from app.errors import Conflict, InvalidInput, NotSignedIn
from app.tenants.scope import TenantContext, bind_tenant

# An HTML form post (application/x-www-form-urlencoded), as every page of the portal sends.
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]

T = TypeVar("T")


async def provide_db(request: Request[Any, Any, Any]) -> AsyncGenerator[Session, None]:
    """One session and one transaction per request, scoped to the current workspace.

    Committed after the handler has produced its response and before it is sent; rolled back
    when the handler fails.
    """
    user: CurrentUser | None = request.scope.get("user")
    session = session_factory()()
    if user is not None and user.workspace_id is not None:
        bind_tenant(session, TenantContext.for_workspace(user.workspace_id, user.user_id))
    else:
        bind_tenant(session, TenantContext(workspace_id=None, user_id=user.user_id if user else None))
    try:
        yield session
        await anyio.to_thread.run_sync(session.commit)
    except BaseException:
        await anyio.to_thread.run_sync(session.rollback)
        raise
    finally:
        await anyio.to_thread.run_sync(session.close)


def provide_me(request: Request[Any, Any, Any]) -> CurrentUser:
    user: CurrentUser | None = request.scope.get("user")
    if user is None:
        raise NotSignedIn()
    return user


DEPENDENCIES = {
    "db": Provide(provide_db),
    "me": Provide(provide_me, sync_to_thread=False),
}


def attempt(db: Session, action: Callable[[], T]) -> tuple[T | None, InvalidInput | Conflict | None]:
    """Run one write in a savepoint: all of it lands, or none of it and the error is returned for the form."""
    try:
        with db.begin_nested():
            return action(), None
    except (InvalidInput, Conflict) as exc:
        return None, exc
