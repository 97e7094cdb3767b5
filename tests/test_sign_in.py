"""Sign-in: argon2 passwords, lockout after 5 failures, idle timeout, CSRF, password rules."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from app.accounts.models import User, UserSession
from app.accounts.passwords import check_password_strength
from app.audit.models import AuditEvent
from app.db import system_session, utcnow
from app.demo import DEMO_PASSWORD
from app.errors import InvalidInput
from tests.helpers import post, second_factor, sign_in


def _audit_actions(username: str) -> list[str]:
    with system_session() as db:
        return list(
            db.scalars(select(AuditEvent.action).where(AuditEvent.target == username).order_by(AuditEvent.id))
        )


def test_password_is_stored_as_an_argon2_hash(client) -> None:  # type: ignore[no-untyped-def]
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == "horqin.handler"))
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert DEMO_PASSWORD not in user.password_hash


def test_sign_in_lands_in_own_workspace_and_is_audited(client) -> None:  # type: ignore[no-untyped-def]
    response = sign_in(client, "horqin.handler")
    assert response.status_code == 303
    assert response.headers["location"] == "/ws"
    cookie = response.headers["set-cookie"]
    assert "minpan_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = client.get("/ws")
    assert "科尔沁区人民政府" in page.text
    assert _audit_actions("horqin.handler") == ["auth.sign_in"]


def test_wrong_password_gives_one_message_whether_or_not_the_account_exists(client) -> None:  # type: ignore[no-untyped-def]
    wrong = sign_in(client, "horqin.handler", "Wrong#Password1")
    unknown = sign_in(client, "no.such.person", "Wrong#Password1")
    assert wrong.status_code == unknown.status_code == 400
    assert "用户名或密码错误" in wrong.text and "用户名或密码错误" in unknown.text
    assert _audit_actions("no.such.person") == ["auth.sign_in_failed"]


def test_five_failures_lock_the_account_for_fifteen_minutes(client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(4):
        assert "用户名或密码错误" in sign_in(client, "kailu.handler", "Wrong#Password1").text
    fifth = sign_in(client, "kailu.handler", "Wrong#Password1")
    assert "账户已锁定" in fifth.text
    # Even the right password is refused while locked.
    refused = sign_in(client, "kailu.handler")
    assert refused.status_code == 400 and "账户已锁定" in refused.text
    assert client.cookies.get("minpan_session") is None
    actions = _audit_actions("kailu.handler")
    assert actions.count("auth.sign_in_failed") == 5
    assert "auth.locked" in actions and actions[-1] == "auth.sign_in_refused_locked"
    with system_session() as db:
        user = db.scalar(select(User).where(User.username == "kailu.handler"))
        assert user is not None and user.locked_until is not None
        remaining = user.locked_until - utcnow()
        assert timedelta(minutes=14) < remaining <= timedelta(minutes=15)
        # Fifteen minutes later the lock has passed.
        user.locked_until = utcnow() - timedelta(seconds=1)
    assert sign_in(client, "kailu.handler").status_code == 303


def test_a_success_resets_the_failure_count(client) -> None:  # type: ignore[no-untyped-def]
    for _ in range(4):
        sign_in(client, "kailu.deputy", "Wrong#Password1")
    assert sign_in(client, "kailu.deputy").status_code == 303
    post(client, "/logout")
    for _ in range(4):
        sign_in(client, "kailu.deputy", "Wrong#Password1")
    assert sign_in(client, "kailu.deputy").status_code == 303


def test_idle_session_times_out_after_thirty_minutes(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.deputy")
    assert client.get("/ws").status_code == 200
    with system_session() as db:
        for s in db.scalars(select(UserSession)):
            s.last_seen_at = utcnow() - timedelta(minutes=29)
    assert client.get("/ws", follow_redirects=False).status_code == 200  # 29 minutes: still signed in
    with system_session() as db:
        for s in db.scalars(select(UserSession)):
            s.last_seen_at = utcnow() - timedelta(minutes=31)
    response = client.get("/ws", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    with system_session() as db:
        assert db.scalar(select(UserSession)) is None
    assert "您长时间未操作，已自动退出" in client.get("/login").text


def test_sessions_live_in_the_database_and_are_shared_by_web_processes(make_client) -> None:  # type: ignore[no-untyped-def]
    first, second = make_client(), make_client()  # two app instances, like two processes
    sign_in(first, "horqin.principal")
    second.cookies.set("minpan_session", first.cookies["minpan_session"])
    assert "科尔沁区人民政府" in second.get("/ws").text
    post(first, "/logout")
    assert second.get("/ws", follow_redirects=False).status_code == 303


def test_post_without_csrf_token_is_refused_in_chinese(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.admin")
    response = client.post(
        "/staff/grant", data={"username": "kailu.handler", "role": "handler"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "页面安全校验失败" in response.text
    htmx = client.post(
        "/staff/grant",
        data={"username": "kailu.handler", "role": "handler"},
        headers={"HX-Request": "true"},
        follow_redirects=False,
    )
    assert htmx.status_code == 403 and htmx.headers.get("hx-retarget") == "#messages"
    assert "页面安全校验失败" in htmx.text and "<html" not in htmx.text
    # Nothing was granted.
    assert "kailu.handler" not in client.get("/staff").text


def test_sign_in_form_itself_needs_the_csrf_token(client) -> None:  # type: ignore[no-untyped-def]
    client.get("/login")
    response = client.post(
        "/login", data={"username": "horqin.handler", "password": DEMO_PASSWORD}, follow_redirects=False
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("Short#1a", "至少为 10 位"),
        ("alllowercaseletters", "至少三类"),
        ("ALLUPPER12345", "至少三类"),
        ("Horqin.handler#2026", "不能包含用户名"),
        ("Aa1!Aa1!Aa1!Aa1!", "过于简单"),
    ],
)
def test_weak_passwords_are_refused_with_a_reason(password: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        check_password_strength(password, "horqin.handler")
    assert message in err.value.message


def test_strong_password_is_accepted() -> None:
    check_password_strength("Kerqin-Qu#2026wq", "horqin.handler")


def test_changing_password_enforces_the_rules_and_signs_out_other_browsers(make_client) -> None:  # type: ignore[no-untyped-def]
    a, b = make_client(), make_client()
    sign_in(a, "naiman.handler")
    sign_in(b, "naiman.handler")
    weak = post(
        a, "/account/password", {"current_password": DEMO_PASSWORD, "password": "short", "confirm": "short"}
    )
    assert weak.status_code == 422 and "至少为 10 位" in weak.text
    mismatch = post(
        a,
        "/account/password",
        {"current_password": DEMO_PASSWORD, "password": "Naiman#Qi2026x", "confirm": "Naiman#Qi2026y"},
    )
    assert "两次输入的新密码不一致" in mismatch.text
    ok = post(
        a,
        "/account/password",
        {"current_password": DEMO_PASSWORD, "password": "Naiman#Qi2026x", "confirm": "Naiman#Qi2026x"},
    )
    assert ok.status_code == 303
    assert a.get("/ws").status_code == 200
    assert b.get("/ws", follow_redirects=False).status_code == 303  # the other browser is signed out
    assert sign_in(make_client(), "naiman.handler").status_code == 400
    assert sign_in(make_client(), "naiman.handler", "Naiman#Qi2026x").status_code == 303


def test_a_new_account_must_set_its_own_password_before_working(client, make_client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.admin")
    created = post(
        client,
        "/staff",
        {
            "username": "horqin.newbie",
            "display_name": "新同事",
            "office_phone": "",
            "email": "",
            "password": "Temp#Pass2026",
            "role": "handler",
        },
    )
    assert created.status_code == 303
    newbie = make_client()
    first = sign_in(newbie, "horqin.newbie", "Temp#Pass2026")
    assert first.headers["location"] == "/account?first=1"
    blocked = newbie.get("/ws", follow_redirects=False)
    assert blocked.status_code == 303 and blocked.headers["location"] == "/account?first=1"
    post(
        newbie,
        "/account/password",
        {"current_password": "Temp#Pass2026", "password": "Mine#Own2026pw", "confirm": "Mine#Own2026pw"},
    )
    assert newbie.get("/ws").status_code == 200


@pytest.mark.parametrize(
    "target", ["//evil.example/steal", "/\\evil.example", "https://evil.example/", "javascript:alert(1)"]
)
def test_open_redirects_after_sign_in_are_refused(client, target: str) -> None:  # type: ignore[no-untyped-def]
    response = post(
        client, "/login", {"username": "horqin.handler", "password": DEMO_PASSWORD, "next": target}
    )
    assert response.headers["location"] == "/ws"


def test_a_same_site_target_is_kept_and_usernames_are_case_insensitive(client) -> None:  # type: ignore[no-untyped-def]
    response = post(
        client, "/login", {"username": " Horqin.Admin ", "password": DEMO_PASSWORD, "next": "/staff"}
    )
    # An administrator: the target survives the second step.
    assert response.status_code == 303 and response.headers["location"] == "/login/two-factor"
    response = second_factor(client, "horqin.admin")
    assert response.status_code == 303 and response.headers["location"] == "/staff"


def test_pages_carry_security_headers(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/login")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert "script-src 'self'" in response.headers["content-security-policy"]
