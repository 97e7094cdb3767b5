"""The role × permission matrix, written out here from the regulation, checked against policies/.

第六条: the centre collects, dispatches and replies; units handle; the city office supervises.
第七条: each unit names its own leaders and handlers (its administrator manages its staff).
"""

from __future__ import annotations

import itertools

import pytest

from app.permissions import ROLES_BY_KIND, Permission, Role, role_allows

KINDS = ("centre", "supervisor", "county", "bureau", "vertical")
UNIT_KINDS = ("county", "bureau", "vertical")

V, WM = Permission.WORKSPACE_VIEW, Permission.WORKSPACE_MANAGE
SV, SM = Permission.STAFF_VIEW, Permission.STAFF_MANAGE
AV, AA = Permission.AUDIT_VIEW, Permission.AUDIT_VIEW_ALL
CV, CR, CA = Permission.CASE_VIEW, Permission.CASE_REGISTER, Permission.CASE_ACT
GV, GA = Permission.ASSIGNMENT_VIEW, Permission.ASSIGNMENT_ACT
CO, CI = Permission.CASE_OVERSEE, Permission.CASE_INSTRUCT
CM = Permission.CALENDAR_MANAGE
EC, CT = Permission.ESCALATION_CONFIGURE, Permission.CASE_TRANSFER

# (role, kind) -> the permissions it has; every other combination is denied.
EXPECTED: dict[tuple[Role, str], set[Permission]] = {
    (Role.CENTRE_CLERK, "centre"): {V, CV, CR, CA},
    (Role.CENTRE_REVIEWER, "centre"): {V, CV, CA},
    (Role.CENTRE_ADMIN, "centre"): {V, SV, SM, AV, CV, EC},
    (Role.SYSTEM_ADMIN, "centre"): {V, WM, AV, AA, CM},
    (Role.SUPERVISOR, "supervisor"): {V, CO, CT},
    (Role.CITY_LEADER, "supervisor"): {V, CO, CI},
    (Role.UNIT_ADMIN, "supervisor"): {V, SV, SM, AV},
    **{(Role.HANDLER, k): {V, GV, GA} for k in UNIT_KINDS},
    **{(Role.DEPUTY, k): {V, SV, GV, GA} for k in UNIT_KINDS},
    **{(Role.PRINCIPAL, k): {V, SV, GV, GA} for k in UNIT_KINDS},
    **{(Role.UNIT_ADMIN, k): {V, SV, SM, AV, GV, GA} for k in UNIT_KINDS},
}


@pytest.mark.parametrize(("role", "kind", "permission"), list(itertools.product(Role, KINDS, Permission)))
def test_policy_files_grant_exactly_the_matrix(role: Role, kind: str, permission: Permission) -> None:
    expected = permission in EXPECTED.get((role, kind), set())
    assert role_allows(role.value, kind, permission.value) is expected


def test_every_role_of_every_kind_is_in_the_matrix() -> None:
    for kind, roles in ROLES_BY_KIND.items():
        for role in roles:
            assert (role, kind) in EXPECTED, f"{role} in {kind} has no expected permissions"


def test_a_role_granted_in_the_wrong_kind_of_workspace_gives_nothing() -> None:
    # A handler grant that somehow landed in the centre must not open the centre's pages.
    assert not role_allows(Role.HANDLER.value, "centre", Permission.WORKSPACE_VIEW.value)
    assert not role_allows(Role.SYSTEM_ADMIN.value, "county", Permission.WORKSPACE_MANAGE.value)


def test_unknown_roles_and_permissions_are_denied() -> None:
    assert not role_allows("root", "centre", "workspace:manage")
    assert not role_allows(Role.UNIT_ADMIN.value, "county", "staff:delete")
