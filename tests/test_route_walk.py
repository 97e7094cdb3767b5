"""Every route × every role of every workspace kind × own / foreign workspace.

Allowed where the policy says, 403 where it does not, 404 for another workspace's object, the
sign-in page for anonymous visitors — and no other workspace's data in any response body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from litestar.routes import HTTPRoute
from sqlalchemy import select

from app.accounts.models import User
from app.app import create_app
from app.db import system_session
from app.permissions import ACCESS_KEY, PERMISSION_KEY, Permission, is_automatic_options, role_allows
from app.tenants.models import Workspace
from tests.helpers import post, sign_in

# Routes that hand out a file printing the citizen's contact data: beyond the role's permission,
# only posts that see the data in full, or the supervision office (app/documents/services.py).
CONTACT_ROUTES = {"/cases/{case_id:int}/case-file"}


def _takes_contact(role: str, kind: str) -> bool:
    from app.security.contact import FULL_CONTACT

    return (kind, role) in FULL_CONTACT or role_allows(role, kind, Permission.CASE_OVERSEE.value)


# One person per (workspace kind, role); the foreign workspace is Naiman banner.
ACTORS = [
    ("zx.clerk", "centre_clerk"),
    ("zx.reviewer", "centre_reviewer"),
    ("zx.admin", "centre_admin"),
    ("sysadmin", "system_admin"),
    ("dc.supervisor", "supervisor"),
    ("city.leader", "city_leader"),
    ("dc.admin", "unit_admin"),
    ("horqin.handler", "handler"),
    ("horqin.deputy", "deputy"),
    ("horqin.principal", "principal"),
    ("horqin.admin", "unit_admin"),
    ("education.handler", "handler"),
    ("education.principal", "principal"),
    ("education.admin", "unit_admin"),
    ("tax.deputy", "deputy"),
    ("tax.admin", "unit_admin"),
]
FOREIGN = "naiman"
# Routes whose very purpose is to look across workspaces (system administrator only).
# 考核 (第二十一条): the centre and 督查室 read every unit's score (/assessment/units/{id}).
CROSS_WORKSPACE = {Permission.WORKSPACE_MANAGE, Permission.AUDIT_VIEW_ALL, Permission.ASSESSMENT_VIEW}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    access: str
    permission: Permission | None


def endpoints() -> list[Endpoint]:
    found = []
    for route in create_app().routes:
        if not isinstance(route, HTTPRoute) or route.path.startswith("/static"):
            continue
        for handler in route.route_handlers:
            if is_automatic_options(handler):
                continue
            for method in sorted(handler.http_methods - {"OPTIONS", "HEAD"}):
                found.append(
                    Endpoint(method, route.path, handler.opt[ACCESS_KEY], handler.opt.get(PERMISSION_KEY))
                )
    return found


def _ids(slug: str, username: str) -> tuple[int, int]:
    with system_session() as db:
        ws = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
        user = db.scalar(select(User.id).where(User.username == username))
    assert ws and user
    return ws, user


MISSING = 10**6  # another workspace's object answers exactly like a missing one


def _fill(
    path: str, workspace_id: int, user_id: int, case_id: int = MISSING, assignment_id: int = MISSING
) -> str:
    # A real step of the workflow, refused here for want of input or for the wrong state.
    path = path.replace("{action:str}", "sign" if path.startswith("/inbox/") else "dispatch")
    path = re.sub(r"\{workspace_id:int\}", str(workspace_id), path)
    path = re.sub(r"\{attachment_id:int\}", str(_attachment_for(path, case_id, assignment_id)), path)
    path = re.sub(r"\{case_id:int\}", str(case_id), path)
    path = re.sub(r"\{assignment_id:int\}", str(assignment_id), path)
    path = re.sub(r"\{section_id:int\}", str(_section_of(workspace_id)), path)
    # No jobs or documents exist in the walked database (tests/test_jobs.py, test_document_flow.py
    # walk their own): these answer as missing ones do.
    path = re.sub(r"\{(job_id|document_id|bulletin_id|outbox_id):int\}", str(MISSING), path)
    # A rating link's token (/rate/{token}): an unknown one answers as a missing object does.
    path = path.replace("{token:str}", str(MISSING))
    return re.sub(r"\{user_id:int\}", str(user_id), path)


def _attachment_for(path: str, case_id: int, assignment_id: int) -> int:
    from app.cases.models import Assignment, Attachment

    with system_session() as db:
        if path.startswith("/inbox/"):
            assignment = db.get(Assignment, assignment_id)
            case_id = assignment.case_id if assignment else MISSING
        found = db.scalar(select(Attachment.id).where(Attachment.case_id == case_id))
    return found or MISSING


def _section_of(workspace_id: int) -> int:
    from app.tenants.models import Section

    with system_session() as db:
        found = db.scalar(select(Section.id).where(Section.workspace_id == workspace_id))
    return found or MISSING


def _own_case_and_assignment(slug: str) -> tuple[int, int]:
    from app.cases.models import Assignment, Case

    with system_session() as db:
        ws = db.scalar(select(Workspace.id).where(Workspace.slug == slug))
        # In id order (PostgreSQL returns unordered rows in any order); a workspace without cases
        # of its own (the supervision office) oversees one that has been dispatched.
        case = db.scalar(
            select(Case.id).where(Case.workspace_id == ws).order_by(Case.id).limit(1)
        ) or db.scalar(select(Case.id).where(Case.dispatched_at.is_not(None)).order_by(Case.id).limit(1))
        assignment = db.scalar(
            select(Assignment.id).where(Assignment.workspace_id == ws).order_by(Assignment.id).limit(1)
        )
    return case or MISSING, assignment or MISSING


def _foreign_assignment() -> int:
    from app.cases.models import Assignment

    with system_session() as db:
        ws = db.scalar(select(Workspace.id).where(Workspace.slug == FOREIGN))
        found = db.scalar(select(Assignment.id).where(Assignment.workspace_id == ws))
    assert found
    return found


def _foreign_markers() -> list[str]:
    with system_session() as db:
        users = db.scalars(select(User).where(User.username.like(f"{FOREIGN}.%"))).all()
    return [m for u in users for m in (u.username, u.office_phone)]


def _request(client, ep: Endpoint, path: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    if ep.method == "GET":
        return client.get(path, follow_redirects=False)
    return post(client, path, data or {})


def _walk_order(ep: Endpoint) -> tuple[int, str, str]:
    # Revoking the colleague's role changes the workspace: do it last.
    return (1 if ep.path.endswith("/revoke") else 0, ep.path, ep.method)


def test_every_route_declares_its_access() -> None:
    eps = endpoints()
    assert len(eps) >= 15
    for ep in eps:
        assert ep.access in {"public", "signed_in", "permission"}, ep
        if ep.access == "permission":
            assert isinstance(ep.permission, Permission), ep


def test_anonymous_visitors_see_public_pages_and_are_sent_to_sign_in_elsewhere(client) -> None:  # type: ignore[no-untyped-def]
    for ep in endpoints():
        path = _fill(ep.path, 1, 1)
        response = _request(client, ep, path)
        if ep.access == "public":
            # A public page of one object (a published reply) answers 404 for a missing one.
            expected = {200, 400, 404, 422} if str(MISSING) in path else {200, 400, 422}
            assert response.status_code in expected, (ep, response.status_code)
        else:
            assert response.status_code == 303, (ep, response.status_code)
            assert response.headers["location"].startswith("/login?next=")


@pytest.mark.parametrize(("username", "role"), ACTORS)
def test_route_walk(make_client, username: str, role: str) -> None:  # type: ignore[no-untyped-def]
    # Give the foreign workspace some history of its own (audit events) to leak, if anything leaked.
    sign_in(make_client(), f"{FOREIGN}.admin")
    markers = _foreign_markers()
    assert markers

    client = make_client()
    assert sign_in(client, username).status_code == 303
    me = client.get("/ws")
    assert me.status_code == 200
    slug = username.split(".")[0]
    slug = {
        "zx": "portal-centre",
        "sysadmin": "portal-centre",
        "dc": "city-office",
        "city": "city-office",
    }.get(slug, slug)
    with system_session() as db:
        kind = db.scalar(select(Workspace.kind).where(Workspace.slug == slug))
    colleague, colleague_role = {
        "portal-centre": ("zx.clerk", "centre_clerk"),
        "city-office": ("dc.supervisor", "supervisor"),
    }.get(slug, (f"{slug}.handler", "handler"))
    # Real-looking input: a revoke names a role the person holds (the foreign person holds it too).
    data = {
        "/staff/{user_id:int}/revoke": {"role": colleague_role},
        "/staff/{user_id:int}/password": {"password": "weak"},
    }
    own_ws, own_user = _ids(slug, colleague)
    foreign_ws, foreign_user = _ids(FOREIGN, f"{FOREIGN}.handler")
    own_case, own_assignment = _own_case_and_assignment(slug)
    foreign_case, foreign_assignment = MISSING, _foreign_assignment()

    walked = 0
    for ep in sorted(endpoints(), key=_walk_order):
        if ep.path == "/logout":
            continue
        variants = [("own", own_ws, own_user, own_case, own_assignment)]
        if "{" in ep.path:
            variants.append(("foreign", foreign_ws, foreign_user, foreign_case, foreign_assignment))
        for which, ws_id, user_id, case_id, assignment_id in variants:
            path = _fill(ep.path, ws_id, user_id, case_id, assignment_id)
            response = _request(client, ep, path, data.get(ep.path))
            code = response.status_code
            walked += 1
            context = (username, ep.method, path, which, code)
            if ep.access == "permission":
                allowed = role_allows(role, kind, ep.permission.value)  # type: ignore[union-attr]
                if not allowed:
                    assert code == 403, context
                    assert "无权访问" in response.text, context
                    continue
                cross = ep.permission in CROSS_WORKSPACE
                if ep.path in CONTACT_ROUTES and not _takes_contact(role, kind):
                    # The policy lets the role in, but the file prints the citizen's contact data.
                    assert code == 403 and "不能下载" in response.text, context
                    continue
                if (which == "foreign" and not cross) or str(MISSING) in path:
                    # Another workspace's object, or none of this kind in one's own: not found.
                    assert code == 404, context
                else:
                    assert code in {200, 303, 422}, context
            else:
                assert code in {200, 303, 400, 404, 422}, context
            if ep.permission not in CROSS_WORKSPACE:
                for marker in markers:
                    assert marker not in response.text, (*context, marker)
    assert walked >= 20

    # Last: signing out ends the session everywhere.
    assert post(client, "/logout").status_code == 303
    assert client.get("/ws", follow_redirects=False).status_code == 303
