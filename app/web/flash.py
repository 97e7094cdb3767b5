"""One-shot messages shown on the next page (成功/提示/错误), carried in a signed cookie."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from litestar import Request, Response
from litestar.datastructures import Cookie

from app.settings import get_settings

COOKIE = "minpan_flash"


def _sign(payload: bytes) -> str:
    mac = hmac.new(get_settings().secret_key.encode(), payload, hashlib.sha256).hexdigest()[:32]
    return base64.urlsafe_b64encode(payload).decode() + "." + mac


def _unsign(value: str) -> list[dict[str, str]]:
    try:
        data, mac = value.rsplit(".", 1)
        payload = base64.urlsafe_b64decode(data.encode())
    except (ValueError, TypeError):
        return []
    expected = hmac.new(get_settings().secret_key.encode(), payload, hashlib.sha256).hexdigest()[:32]
    if not hmac.compare_digest(mac, expected):
        return []
    try:
        items = json.loads(payload)
    except ValueError:
        return []
    return [i for i in items if isinstance(i, dict)][:5]


def add(response: Response[Any], message: str, level: str = "success") -> Response[Any]:
    payload = json.dumps([{"level": level, "text": message}], ensure_ascii=False).encode()
    response.set_cookie(
        COOKIE,
        _sign(payload),
        httponly=True,
        samesite="lax",
        path="/",
        secure=get_settings().session_cookie_secure,
    )
    return response


def consume(request: Request[Any, Any, Any]) -> tuple[list[dict[str, str]], list[Cookie]]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return [], []
    return _unsign(raw), [Cookie(key=COOKIE, value="", max_age=0, path="/")]
