"""Tenant isolation: the scoped data layer, PostgreSQL row-level security, staff and workspace management."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update

from app.accounts.models import User
from app.audit.models import AuditEvent
from app.db import get_engine, session_factory, system_session
from app.tenants.models import Membership, Workspace
from app.tenants.scope import TenantContext, TenantViolation, bind_tenant
from tests.conftest import IS_POSTGRES
from tests.helpers import post, sign_in


def _ws(slug: str) -> int:
    with system_session() as db:
        ws_id = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
    assert ws_id is not None
    return ws_id


def _scoped(slug: str):  # type: ignore[no-untyped-def]
    session = session_factory()()
    bind_tenant(session, TenantContext.for_workspace(_ws(slug), None))
    return session


def test_a_scoped_session_sees_only_its_own_workspace(demo) -> None:  # type: ignore[no-untyped-def]
    horqin, naiman = _ws("horqin"), _ws("naiman")
    with _scoped("horqin") as db:
        rows = db.scalars(select(Membership)).all()
        assert rows and {m.workspace_id for m in rows} == {horqin}
        # Asking for the other workspace explicitly still finds nothing.
        assert db.scalars(select(Membership).where(Membership.workspace_id == naiman)).all() == []
        with system_session() as sysdb:
            foreign_id = sysdb.scalar(select(Membership.id).where(Membership.workspace_id == naiman))
        assert db.get(Membership, foreign_id) is None
        # Joins through an alias are filtered as well.
        joined = (
            db.execute(select(User.username).join(Membership, Membership.user_id == User.id)).scalars().all()
        )
        assert all(name.startswith("horqin.") for name in joined)


def test_bulk_updates_and_deletes_cannot_reach_another_workspace(demo) -> None:  # type: ignore[no-untyped-def]
    naiman = _ws("naiman")
    with _scoped("horqin") as db:
        db.execute(update(Membership).where(Membership.workspace_id == naiman).values(role="unit_admin"))
        db.execute(delete(Membership).where(Membership.workspace_id == naiman))
        db.commit()
    with system_session() as db:
        roles = db.scalars(select(Membership.role).where(Membership.workspace_id == naiman)).all()
    assert sorted(roles) == ["deputy", "handler", "principal", "unit_admin"]


def test_writing_into_another_workspace_is_refused(demo) -> None:  # type: ignore[no-untyped-def]
    naiman = _ws("naiman")
    with _scoped("horqin") as db:
        user_id = db.scalar(select(User.id).where(User.username == "horqin.handler"))
        db.add(Membership(workspace_id=naiman, user_id=user_id, role="unit_admin"))
        with pytest.raises(TenantViolation):
            db.flush()


def test_a_session_without_workspace_cannot_read_workspace_data(demo) -> None:  # type: ignore[no-untyped-def]
    with session_factory()() as db:
        with pytest.raises(TenantViolation):
            db.scalars(select(Membership)).all()
        bind_tenant(db, TenantContext(workspace_id=None, user_id=1))
        with pytest.raises(TenantViolation):
            db.scalars(select(AuditEvent)).all()


@pytest.mark.skipif(not IS_POSTGRES, reason="row-level security is a PostgreSQL feature")
def test_postgres_row_level_security_is_a_second_wall(demo) -> None:  # type: ignore[no-untyped-def]
    """Raw SQL, bypassing the ORM layer entirely, still sees one workspace only."""
    horqin, naiman = _ws("horqin"), _ws("naiman")
    with get_engine().connect() as conn:
        with conn.begin():
            conn.execute(text("SELECT set_config('minpan.workspace_id', :w, true)"), {"w": str(horqin)})
            seen = set(conn.execute(text("SELECT DISTINCT workspace_id FROM memberships")).scalars())
            assert seen == {horqin}
            assert (
                conn.execute(
                    text("SELECT count(*) FROM memberships WHERE workspace_id = :n"), {"n": naiman}
                ).scalar()
                == 0
            )
        with conn.begin():  # no workspace set at all: nothing
            assert conn.execute(text("SELECT count(*) FROM memberships")).scalar() == 0
        trans = conn.begin()
        conn.execute(text("SELECT set_config('minpan.workspace_id', :w, true)"), {"w": str(horqin)})
        with pytest.raises(Exception, match="row-level security"):
            conn.execute(
                text(
                    "INSERT INTO memberships (workspace_id, user_id, role, granted_at) "
                    "SELECT :n, id, 'unit_admin', now() FROM users LIMIT 1"
                ),
                {"n": naiman},
            )
        trans.rollback()


# --- staff management through the product ------------------------------------------------------


def test_unit_admin_gives_a_second_post_to_a_person_of_another_unit(make_client) -> None:  # type: ignore[no-untyped-def]
    admin = make_client()
    sign_in(admin, "horqin.admin")
    response = post(admin, "/staff/grant", {"username": "kailu.handler", "role": "deputy"})
    assert response.status_code == 303
    assert "kailu.handler" in admin.get("/staff").text
    person = make_client()
    sign_in(person, "kailu.handler")
    page = person.get("/ws").text
    assert 'id="ws-switch"' in page and "科尔沁区" in page
    # Kailu's own staff list is untouched.
    kailu_admin = make_client()
    sign_in(kailu_admin, "kailu.admin")
    assert "horqin.admin" not in kailu_admin.get("/staff").text


def test_htmx_grant_returns_the_table_fragment(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.admin")
    bad = post(
        client, "/staff/grant", {"username": "nobody.here", "role": "handler"}, headers={"HX-Request": "true"}
    )
    assert bad.status_code == 422
    assert "没有该用户名的在用账户" in bad.text and "<html" not in bad.text and 'id="staff-table"' in bad.text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"username": "kailu.handler", "role": "system_admin"}, "该角色不适用于本工作区"),
        ({"username": "kailu.handler", "role": "centre_clerk"}, "该角色不适用于本工作区"),
        ({"username": "horqin.handler", "role": "handler"}, "该人员已担任此角色"),
        ({"username": "", "role": "handler"}, "没有该用户名的在用账户"),
    ],
)
def test_grant_refuses_bad_input_in_chinese(client, data: dict[str, str], message: str) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.admin")
    response = post(client, "/staff/grant", data)
    assert response.status_code == 422
    assert message in response.text


def test_new_staff_member_with_bad_input_is_not_half_created(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.admin")
    response = post(
        client,
        "/staff",
        {
            "username": "horqin.clerk2",
            "display_name": "张三",
            "office_phone": "",
            "email": "",
            "password": "weak",
            "role": "handler",
        },
    )
    assert response.status_code == 422 and "至少为 10 位" in response.text
    with system_session() as db:
        assert db.scalar(select(User).where(User.username == "horqin.clerk2")) is None
    # The form keeps what was typed (except the password).
    assert 'value="张三"' in response.text


def test_the_last_administrator_of_a_unit_cannot_be_removed(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.admin")
    with system_session() as db:
        me = db.scalar(select(User.id).where(User.username == "horqin.admin"))
    response = post(client, f"/staff/{me}/revoke", {"role": "unit_admin"})
    assert response.status_code == 422 and "至少需要保留一名管理员" in response.text


def test_revoking_a_role_removes_the_workspace_from_the_persons_posts(make_client) -> None:  # type: ignore[no-untyped-def]
    admin, person = make_client(), make_client()
    sign_in(admin, "horqin.admin")
    sign_in(person, "horqin.handler")
    with system_session() as db:
        handler = db.scalar(select(User.id).where(User.username == "horqin.handler"))
    assert post(admin, f"/staff/{handler}/revoke", {"role": "handler"}).status_code == 303
    assert "horqin.handler" not in admin.get("/staff").text
    # The person now has no post: the workspace pages are closed to them.
    assert person.get("/ws", follow_redirects=False).status_code == 403


def test_unit_admin_cannot_reset_the_password_of_someone_with_a_post_elsewhere(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "education.admin")
    with system_session() as db:
        two = db.scalar(select(User.id).where(User.username == "two.posts"))
        own = db.scalar(select(User.id).where(User.username == "education.handler"))
    refused = post(client, f"/staff/{two}/password", {"password": "Reset#Pass2026"})
    assert refused.status_code == 422 and "在其他单位也有任职" in refused.text
    done = post(client, f"/staff/{own}/password", {"password": "Reset#Pass2026"})
    assert done.status_code == 303


def test_system_admin_creates_a_workspace_and_appoints_its_administrator(make_client) -> None:  # type: ignore[no-untyped-def]
    sysadmin = make_client()
    sign_in(sysadmin, "sysadmin")
    bad = post(
        sysadmin, "/admin/workspaces", {"slug": "Bad Slug", "name": "x", "short_name": "x", "kind": "bureau"}
    )
    assert bad.status_code == 422 and "标识须以小写字母开头" in bad.text
    created = post(
        sysadmin,
        "/admin/workspaces",
        {
            "slug": "data-bureau",
            "name": "通辽市大数据中心",
            "short_name": "市大数据中心",
            "kind": "bureau",
            "contact_phone": "0475-8888888",
            "address": "",
        },
    )
    assert created.status_code == 303
    ws_id = int(created.headers["location"].rsplit("/", 1)[1])
    appointed = post(
        sysadmin,
        f"/admin/workspaces/{ws_id}/admins",
        {"username": "data.admin", "display_name": "数据管理员", "password": "Data#Admin2026"},
    )
    assert appointed.status_code == 303
    new_admin = make_client()
    sign_in(new_admin, "data.admin", "Data#Admin2026")
    post(
        new_admin,
        "/account/password",
        {"current_password": "Data#Admin2026", "password": "Mine#Data2026x", "confirm": "Mine#Data2026x"},
    )
    staff = new_admin.get("/staff")
    assert staff.status_code == 200 and "通辽市大数据中心" in staff.text
    assert "horqin." not in staff.text
    # A unit administrator cannot do any of this.
    unit = make_client()
    sign_in(unit, "horqin.admin")
    assert unit.get("/admin/workspaces").status_code == 403
    assert (
        post(
            unit, "/admin/workspaces", {"slug": "evil", "name": "evil", "short_name": "e", "kind": "bureau"}
        ).status_code
        == 403
    )
