"""Every error answers in Chinese: a page for browsers, a fragment for htmx, JSON for the API."""

from __future__ import annotations

from litestar import get

from app.errors import Conflict
from app.permissions import PUBLIC, SIGNED_IN
from tests.helpers import sign_in


def test_unknown_page_is_a_chinese_404(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "未找到" in response.text and "<html" in response.text


def test_htmx_errors_come_as_a_fragment_for_the_message_area(client) -> None:  # type: ignore[no-untyped-def]
    sign_in(client, "horqin.handler")
    response = client.get("/staff", headers={"HX-Request": "true"})
    assert response.status_code == 403
    assert response.headers["hx-retarget"] == "#messages"
    assert "无权访问" in response.text and "<html" not in response.text


def test_wrong_method_is_a_chinese_405(client) -> None:  # type: ignore[no-untyped-def]
    response = client.delete(
        "/login", headers={"x-csrftoken": client.get("/login").cookies.get("minpan_csrf", "")}
    )
    assert response.status_code in {403, 405}
    assert "<html" in response.text


def test_conflict_and_crash_pages(demo) -> None:  # type: ignore[no-untyped-def]
    from litestar.testing import TestClient

    from app.app import create_app

    @get("/_test/conflict", opt=SIGNED_IN, sync_to_thread=False)
    def conflict() -> str:
        raise Conflict("该办件已被他人处理")

    @get("/_test/crash", opt=PUBLIC, sync_to_thread=False)
    def crash() -> str:
        raise RuntimeError("secret internal detail")

    @get("/_test/undeclared", sync_to_thread=False)
    def undeclared() -> str:
        return "should never be served"

    app = create_app()
    for handler in (conflict, crash, undeclared):
        app.register(handler)
    with TestClient(app=app) as client:
        sign_in(client, "horqin.handler")
        response = client.get("/_test/conflict")
        assert response.status_code == 409 and "该办件已被他人处理" in response.text
        crashed = client.get("/_test/crash")
        assert crashed.status_code == 500 and "系统繁忙" in crashed.text
        assert "secret internal detail" not in crashed.text
        refused = client.get("/_test/undeclared")
        assert refused.status_code == 403 and "should never be served" not in refused.text


def test_an_app_with_an_undeclared_route_refuses_to_start() -> None:
    import pytest
    from litestar import Litestar

    from app.permissions import check_declarations

    @get("/x", sync_to_thread=False)
    def handler() -> str:
        return "x"

    with pytest.raises(RuntimeError, match="without an access declaration"):
        check_declarations(Litestar(route_handlers=[handler]))
