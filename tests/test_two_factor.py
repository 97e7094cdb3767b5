"""Two-factor sign-in (TOTP + recovery codes), the password rules, reading contact data is audited."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pyotp
import pytest
from sqlalchemy import select, text

from app.accounts import two_factor
from app.accounts.identity import Post
from app.accounts.models import PasswordHistory, RecoveryCode, SecurityPolicy, User, UserSession
from app.audit.models import AuditEvent
from app.db import system_session, utcnow
from app.demo import DEMO_PASSWORD
from tests.helpers import post, second_factor, sign_in, totp_code

CODES_RE = re.compile(r"<code>([A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4})</code>")


def _user(username: str) -> User:
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == username))
        assert user is not None
        db.expunge(user)
        return user


def _actions(username: str) -> list[str]:
    with system_session() as db:
        return list(
            db.scalars(
                select(AuditEvent.action).where(AuditEvent.target == username).order_by(AuditEvent.seq)
            )
        )


def _password_step(client, username: str, password: str = DEMO_PASSWORD):  # type: ignore[no-untyped-def]
    return post(client, "/login", {"username": username, "password": password})


def _enrol(client, username: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Password, the enrolment page (QR code, secret, codes), the first code. Returns the codes."""
    assert _password_step(client, username).headers["location"] == "/login/two-factor"
    page = client.get("/login/two-factor")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    codes = CODES_RE.findall(page.text)
    done = post(client, "/login/two-factor", {"code": totp_code(username)})
    assert done.status_code == 303 and done.headers["location"] == "/ws"
    return codes


def _sign_out(client) -> None:  # type: ignore[no-untyped-def]
    assert post(client, "/logout").status_code == 303


# --- who must -----------------------------------------------------------------------------------


def test_required_for_leaders_administrators_centre_and_supervision_office() -> None:
    def post_(kind: str, *roles: str) -> list[Post]:
        return [Post(1, "x", "x", "x", kind, roles)]

    assert two_factor.required_for(post_("centre", "centre_clerk"))
    assert two_factor.required_for(post_("supervisor", "supervisor"))
    assert two_factor.required_for(post_("county", "principal"))
    assert two_factor.required_for(post_("bureau", "deputy"))
    assert two_factor.required_for(post_("vertical", "unit_admin"))
    assert not two_factor.required_for(post_("county", "handler"))
    # A handler who is also a deputy elsewhere (一人多岗) needs it.
    assert two_factor.required_for([*post_("bureau", "handler"), *post_("county", "deputy")])


def test_a_handler_signs_in_with_the_password_alone(client) -> None:  # type: ignore[no-untyped-def]
    response = _password_step(client, "horqin.handler")
    assert response.status_code == 303 and response.headers["location"] == "/ws"


# --- enrolment at the first sign-in -------------------------------------------------------------


def test_first_sign_in_of_a_principal_enrols_with_qr_code_and_ten_recovery_codes(client) -> None:  # type: ignore[no-untyped-def]
    response = _password_step(client, "horqin.principal")
    assert response.status_code == 303 and response.headers["location"] == "/login/two-factor"
    # No session yet: the password alone opens nothing.
    assert client.cookies.get("minpan_session") is None
    assert client.get("/ws", follow_redirects=False).status_code == 303
    page = client.get("/login/two-factor")
    assert page.status_code == 200
    assert "<svg" in page.text and 'class="segno"' in page.text  # the QR code, drawn on the server
    assert "<script" not in page.text.split("<main", 1)[-1].split("</main>", 1)[0]
    codes = CODES_RE.findall(page.text)
    assert len(codes) == 10 and len(set(codes)) == 10
    user = _user("horqin.principal")
    assert user.totp_secret and user.totp_confirmed_at is None
    secret_shown = re.search(r'id="totp-secret"[^>]*>([A-Z2-7 ]+)<', page.text)
    assert secret_shown and secret_shown.group(1).replace(" ", "") == user.totp_secret
    # At rest the secret is sealed: a copy of the database does not yield the codes.
    with system_session() as db:
        stored = db.execute(text("SELECT totp_secret FROM users WHERE id = :i"), {"i": user.id}).scalar_one()
    assert stored.startswith("enc1:") and user.totp_secret not in stored
    # Recovery codes are stored only as hashes.
    with system_session() as db:
        hashes = list(db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)))
    assert len(hashes) == 10 and not set(codes) & set(hashes)
    assert all(c.replace("-", "") not in "".join(hashes) for c in codes)
    # A wrong code does not enrol.
    wrong = post(client, "/login/two-factor", {"code": "000000"})
    assert wrong.status_code == 400 and "验证码不正确" in wrong.text
    assert _user("horqin.principal").totp_confirmed_at is None
    done = post(client, "/login/two-factor", {"code": totp_code("horqin.principal")})
    assert done.status_code == 303 and done.headers["location"] == "/ws"
    assert "minpan_session=" in done.headers["set-cookie"]
    assert client.get("/ws").status_code == 200
    assert _user("horqin.principal").totp_confirmed_at is not None
    actions = _actions("horqin.principal")
    assert actions[-3:] == ["auth.two_factor_failed", "auth.two_factor_enrolled", "auth.sign_in"]


def test_second_step_without_the_password_step_is_refused(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/login/two-factor")
    assert page.status_code == 400 and "登录已超时" in page.text
    response = post(client, "/login/two-factor", {"code": "123456"})
    assert response.status_code == 400 and client.cookies.get("minpan_session") is None
    # A forged pending cookie is ignored.
    client.cookies.set("minpan_2fa", "eyJ1IjoxLCJ0Ijo5OTk5OTk5OTk5LCJuIjoiL3dzIn0=.deadbeef", path="/login")
    assert client.get("/login/two-factor").status_code == 400


# --- codes --------------------------------------------------------------------------------------


def test_totp_code_is_accepted_once_and_a_replayed_code_is_refused(make_client) -> None:  # type: ignore[no-untyped-def]
    first = make_client()
    _enrol(first, "kailu.deputy")
    _sign_out(first)
    user = _user("kailu.deputy")
    code = pyotp.TOTP(user.totp_secret).at((user.totp_last_step + 1) * 30)
    step_now = int(time.time() // 30)
    if user.totp_last_step + 1 > step_now + 1:
        pytest.skip("the clock is at the edge of a step")
    second = make_client()
    assert _password_step(second, "kailu.deputy").headers["location"] == "/login/two-factor"
    ok = post(second, "/login/two-factor", {"code": code})
    assert ok.status_code == 303 and ok.headers["location"] == "/ws"
    # Someone who saw that code over the shoulder tries it again, with the right password.
    third = make_client()
    assert _password_step(third, "kailu.deputy").headers["location"] == "/login/two-factor"
    replay = post(third, "/login/two-factor", {"code": code})
    assert replay.status_code == 400 and "已使用" in replay.text
    assert third.cookies.get("minpan_session") is None
    # An older code (of an earlier step) is refused too.
    old = pyotp.TOTP(user.totp_secret).at(user.totp_last_step * 30)
    assert post(third, "/login/two-factor", {"code": old}).status_code == 400
    assert _actions("kailu.deputy").count("auth.two_factor_failed") == 2


def test_recovery_code_works_once(make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client()
    codes = _enrol(client, "naiman.principal")
    _sign_out(client)
    other = make_client()
    assert _password_step(other, "naiman.principal").headers["location"] == "/login/two-factor"
    page = other.get("/login/two-factor")
    assert "恢复码" in page.text and "<svg" not in page.text  # enrolled: asks for a code only
    used = post(other, "/login/two-factor", {"code": codes[3].lower()})
    assert used.status_code == 303 and used.headers["location"] == "/ws"
    assert "auth.two_factor_recovery_used" in _actions("naiman.principal")
    _sign_out(other)
    again = make_client()
    _password_step(again, "naiman.principal")
    refused = post(again, "/login/two-factor", {"code": codes[3]})
    assert refused.status_code == 400 and again.cookies.get("minpan_session") is None
    # Another, unused one still works.
    assert post(again, "/login/two-factor", {"code": codes[4]}).status_code == 303
    with system_session() as db:
        user_id = db.scalar(select(User.id).where(User.username == "naiman.principal"))
        used_count = len(
            list(
                db.scalars(
                    select(RecoveryCode).where(
                        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_not(None)
                    )
                )
            )
        )
    assert used_count == 2


def test_wrong_codes_lock_the_account_like_wrong_passwords(client) -> None:  # type: ignore[no-untyped-def]
    _enrol(client, "tax.deputy")
    _sign_out(client)
    _password_step(client, "tax.deputy")
    for _ in range(4):
        response = post(client, "/login/two-factor", {"code": "000000"})
        assert response.status_code == 400 and "验证码不正确" in response.text
    fifth = post(client, "/login/two-factor", {"code": "000000"})
    assert "账户已锁定" in fifth.text
    # Locked: neither the password step nor a right code opens a session.
    assert "账户已锁定" in _password_step(client, "tax.deputy").text
    assert client.cookies.get("minpan_session") is None
    assert "auth.locked" in _actions("tax.deputy")


def test_account_page_renews_recovery_codes_against_a_current_code(client) -> None:  # type: ignore[no-untyped-def]
    old_codes = _enrol(client, "housing.admin")
    page = client.get("/account/two-factor")
    assert page.status_code == 200 and "已启用" in page.text and "10 个" in page.text
    wrong = post(client, "/account/two-factor/recovery-codes", {"code": "123456"})
    assert wrong.status_code == 422
    renewed = post(client, "/account/two-factor/recovery-codes", {"code": totp_code("housing.admin")})
    assert renewed.status_code == 200 and renewed.headers["cache-control"] == "no-store"
    new_codes = CODES_RE.findall(renewed.text)
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    _sign_out(client)
    _password_step(client, "housing.admin")
    assert post(client, "/login/two-factor", {"code": old_codes[0]}).status_code == 400
    assert post(client, "/login/two-factor", {"code": new_codes[0]}).status_code == 303


def test_a_handler_may_turn_it_on_from_the_account_page(client) -> None:  # type: ignore[no-untyped-def]
    assert sign_in(client, "education.handler").headers["location"] == "/ws"
    page = client.get("/account/two-factor")
    assert page.status_code == 200 and "<svg" in page.text
    assert post(client, "/account/two-factor/enrol", {"code": "999999"}).status_code == 422
    done = post(client, "/account/two-factor/enrol", {"code": totp_code("education.handler")})
    assert done.status_code == 303
    _sign_out(client)
    # From now on the handler too is asked for a code.
    assert _password_step(client, "education.handler").headers["location"] == "/login/two-factor"


# --- the administrator's reset ------------------------------------------------------------------


def test_unit_admin_resets_a_colleagues_second_factor_and_it_is_audited(make_client) -> None:  # type: ignore[no-untyped-def]
    deputy = make_client()
    _enrol(deputy, "horqin.deputy")
    admin = make_client()
    assert sign_in(admin, "horqin.admin").status_code == 303
    roster = admin.get("/admin/two-factor")
    assert roster.status_code == 200 and "horqin.deputy" in roster.text and "naiman" not in roster.text
    deputy_id = _user("horqin.deputy").id
    done = post(admin, f"/admin/two-factor/{deputy_id}/reset")
    assert done.status_code == 303
    user = _user("horqin.deputy")
    assert user.totp_secret == "" and user.totp_confirmed_at is None
    # The deputy's session ended; the next sign-in enrols again.
    assert deputy.get("/ws", follow_redirects=False).status_code == 303
    with system_session() as db:
        assert db.scalar(select(UserSession.id).where(UserSession.user_id == deputy_id)) is None
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "auth.two_factor_reset"))
        admin_id = db.scalar(select(User.id).where(User.username == "horqin.admin"))
    assert event is not None and event.target == "horqin.deputy" and event.actor_id == admin_id
    fresh = make_client()
    _password_step(fresh, "horqin.deputy")
    assert "<svg" in fresh.get("/login/two-factor").text
    # Not one's own, and nobody of another unit (404, as for a missing person).
    admin_id = _user("horqin.admin").id
    assert post(admin, f"/admin/two-factor/{admin_id}/reset").status_code == 422
    foreign = _user("naiman.principal").id
    assert post(admin, f"/admin/two-factor/{foreign}/reset").status_code == 404
    # A handler may not reset anyone.
    handler = make_client()
    sign_in(handler, "horqin.handler")
    assert post(handler, f"/admin/two-factor/{deputy_id}/reset").status_code == 403


# --- password rules -----------------------------------------------------------------------------


def _set_policy(max_age: int, history: int) -> None:
    with system_session() as db:
        row = db.get(SecurityPolicy, 1) or SecurityPolicy(id=1)
        row.password_max_age_days = max_age
        row.password_history = history
        db.add(row)


def test_system_admin_sets_the_password_rules_with_chinese_errors(client) -> None:  # type: ignore[no-untyped-def]
    assert sign_in(client, "sysadmin").status_code == 303
    page = client.get("/admin/security")
    assert page.status_code == 200 and "密码有效期" in page.text
    bad = post(client, "/admin/security", {"password_max_age_days": "abc", "password_history": "5"})
    assert bad.status_code == 422 and "整数" in bad.text
    bad = post(client, "/admin/security", {"password_max_age_days": "30", "password_history": "99"})
    assert bad.status_code == 422 and "0 到 24" in bad.text
    ok = post(client, "/admin/security", {"password_max_age_days": "30", "password_history": "3"})
    assert ok.status_code == 303
    with system_session() as db:
        row = db.get(SecurityPolicy, 1)
        assert row is not None and (row.password_max_age_days, row.password_history) == (30, 3)
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "security.policy_updated"))
    assert event is not None and event.detail["after"] == {"password_max_age_days": 30, "password_history": 3}
    # Nobody else may.
    other = client.__class__(app=client.app)
    with other:
        sign_in(other, "zx.admin")
        assert other.get("/admin/security").status_code == 403


def test_an_expired_password_must_be_changed_at_sign_in(client) -> None:  # type: ignore[no-untyped-def]
    _set_policy(90, 5)
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == "horqin.handler"))
        assert user is not None
        user.password_changed_at = utcnow() - timedelta(days=91)
    response = sign_in(client, "horqin.handler")
    assert response.headers["location"] == "/account?first=1"
    # Any page that needs a permission sends the person to change it first.
    assert client.get("/inbox", follow_redirects=False).headers["location"].startswith("/account")
    page = client.get("/account?first=1")
    assert "已使用超过 90 天" in page.text and "已过期" in page.text
    assert "auth.password_expired" in _actions("horqin.handler")
    changed = post(
        client,
        "/account/password",
        {"current_password": DEMO_PASSWORD, "password": "Horqin#New2026x", "confirm": "Horqin#New2026x"},
    )
    assert changed.status_code == 303
    assert client.get("/inbox").status_code == 200


def test_password_not_expired_within_the_period_or_when_expiry_is_off(client) -> None:  # type: ignore[no-untyped-def]
    _set_policy(0, 5)
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == "horqin.handler"))
        assert user is not None
        user.password_changed_at = utcnow() - timedelta(days=4000)
    assert sign_in(client, "horqin.handler").headers["location"] == "/ws"


def test_the_last_n_passwords_may_not_be_reused(client) -> None:  # type: ignore[no-untyped-def]
    _set_policy(90, 3)
    sign_in(client, "kailu.handler")
    passwords = [DEMO_PASSWORD, "Kailu#First2026", "Kailu#Second2026"]

    def change(current: str, new: str):  # type: ignore[no-untyped-def]
        return post(
            client, "/account/password", {"current_password": current, "password": new, "confirm": new}
        )

    assert change(passwords[0], passwords[1]).status_code == 303
    assert change(passwords[1], passwords[2]).status_code == 303
    # The first password is one of the last three: refused, in Chinese.
    refused = change(passwords[2], passwords[0])
    assert refused.status_code == 422 and "不能与最近 3 次使用过的密码相同" in refused.text
    assert change(passwords[2], passwords[1]).status_code == 422
    # A fourth, new one is fine; after it the first is four changes back and allowed again.
    assert change(passwords[2], "Kailu#Third2026").status_code == 303
    assert change("Kailu#Third2026", passwords[0]).status_code == 303
    with system_session() as db:
        user_id = db.scalar(select(User.id).where(User.username == "kailu.handler"))
        kept = list(
            db.scalars(select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user_id))
        )
    assert kept and all(h.startswith("$argon2id$") for h in kept)


# --- reading a citizen's contact data is audited ------------------------------------------------


def test_each_view_of_a_citizens_contact_data_is_audited(client) -> None:  # type: ignore[no-untyped-def]
    from app.cases.models import Case

    with system_session() as db:
        case = db.scalar(select(Case).where(Case.citizen_phone != "").order_by(Case.id))
        assert case is not None
        case_id = case.id
    sign_in(client, "zx.clerk")
    assert client.get(f"/cases/{case_id}").status_code == 200
    assert client.get(f"/cases/{case_id}").status_code == 200
    with system_session() as db:
        clerk = db.scalar(select(User.id).where(User.username == "zx.clerk"))
        events = list(
            db.scalars(
                select(AuditEvent).where(AuditEvent.action == "contact.viewed", AuditEvent.actor_id == clerk)
            )
        )
    assert len(events) == 2
    assert all(e.target == f"case:{case_id}" and e.detail["page"] == "case" for e in events)
    # A missing case: nothing shown, nothing logged.
    assert client.get("/cases/999999").status_code == 404
    with system_session() as db:
        assert len(list(db.scalars(select(AuditEvent.id).where(AuditEvent.action == "contact.viewed")))) == 2


def test_a_units_view_of_the_assignment_is_audited(client) -> None:  # type: ignore[no-untyped-def]
    from app.cases.models import Assignment
    from app.tenants.models import Workspace

    with system_session() as db:
        ws = db.scalar(select(Workspace.id).where(Workspace.slug == "horqin"))
        assignment = db.scalar(
            select(Assignment).where(Assignment.workspace_id == ws, Assignment.citizen_phone != "")
        )
        if assignment is None:
            pytest.skip("no assignment with contact data in the demo")
        assignment_id, case_id = assignment.id, assignment.case_id
    sign_in(client, "horqin.handler")
    assert client.get(f"/inbox/{assignment_id}").status_code == 200
    with system_session() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "contact.viewed"))
    assert event is not None and event.target == f"case:{case_id}"
    assert event.detail["assignment_id"] == assignment_id and event.workspace_id == ws


def test_helper_second_factor_is_what_tests_use(client) -> None:  # type: ignore[no-untyped-def]
    # The shared helper walks the same two steps (enrolment at first, a code later).
    assert sign_in(client, "dc.supervisor").headers["location"] == "/ws"
    _sign_out(client)
    _password_step(client, "dc.supervisor")
    assert second_factor(client, "dc.supervisor").headers["location"] == "/ws"


def test_renewing_codes_without_a_second_factor_is_refused_in_chinese(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "health.handler")
    response = post(client, "/account/two-factor/recovery-codes", {"code": "123456"})
    assert response.status_code == 422 and "请先启用两步验证" in response.text
