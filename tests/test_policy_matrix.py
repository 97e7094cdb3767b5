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
SR = Permission.SATISFACTION_RECORD
ST, SO = Permission.STATS_VIEW, Permission.STATS_VIEW_OWN

# (role, kind) -> the permissions it has; every other combination is denied.
EXPECTED: dict[tuple[Role, str], set[Permission]] = {
    (Role.CENTRE_CLERK, "centre"): {V, CV, CR, CA, SR, ST},
    (Role.CENTRE_REVIEWER, "centre"): {V, CV, CA, SR, ST},
    (Role.CENTRE_ADMIN, "centre"): {V, SV, SM, AV, CV, EC, ST},
    (Role.SYSTEM_ADMIN, "centre"): {V, WM, AV, AA, CM, Permission.OUTBOX_MANAGE},
    (Role.SUPERVISOR, "supervisor"): {V, CO, CT, ST},
    (Role.CITY_LEADER, "supervisor"): {V, CO, CI, ST},
    (Role.UNIT_ADMIN, "supervisor"): {V, SV, SM, AV},
    **{(Role.HANDLER, k): {V, GV, GA, SO} for k in UNIT_KINDS},
    **{(Role.DEPUTY, k): {V, SV, GV, GA, SO} for k in UNIT_KINDS},
    **{(Role.PRINCIPAL, k): {V, SV, GV, GA, SO} for k in UNIT_KINDS},
    **{(Role.UNIT_ADMIN, k): {V, SV, SM, AV, GV, GA, SO} for k in UNIT_KINDS},
}


# 第二十一条: 通报 and the yearly assessment (app/assessment/) — added to the rows above.
AS, AO, AC = Permission.ASSESSMENT_VIEW, Permission.ASSESSMENT_VIEW_OWN, Permission.ASSESSMENT_CONFIGURE
BV, BI = Permission.BULLETIN_VIEW, Permission.BULLETIN_ISSUE
for _key, _extra in {
    (Role.CENTRE_CLERK, "centre"): {AS, BV},
    (Role.CENTRE_REVIEWER, "centre"): {AS, BV},
    (Role.CENTRE_ADMIN, "centre"): {AS, AC, BV, BI},
    (Role.SUPERVISOR, "supervisor"): {AS, BV},
    (Role.CITY_LEADER, "supervisor"): {AS, BV},
    **{(Role.DEPUTY, k): {BV} for k in UNIT_KINDS},
    **{(Role.PRINCIPAL, k): {AO, BV} for k in UNIT_KINDS},
    **{(Role.UNIT_ADMIN, k): {AO, BV} for k in UNIT_KINDS},
}.items():
    EXPECTED[_key] = EXPECTED[_key] | _extra


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
