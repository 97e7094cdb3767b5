"""Handwritten signatures captured on the signature pad (审签 第十一条, 退办 第十五条)."""

from __future__ import annotations

import base64
import binascii
import io

PREFIX = "data:image/png;base64,"
MAX_BYTES = 300_000


def decode(data_url: str) -> bytes | None:
    if not data_url.startswith(PREFIX):
        return None
    try:
        return base64.b64decode(data_url[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        return None


def signature_problem(data_url: str) -> str | None:
    """Why this is not an acceptable signature (in Chinese), or None when it is one."""
    raw = decode(data_url)
    if raw is None:
        return "请在签名板上手写签名。"
    if len(raw) > MAX_BYTES:
        return "签名图像过大，请重新签名。"
    try:
        from PIL import Image

        with Image.open(io.BytesIO(raw)) as img:
            if img.format != "PNG" or img.width < 50 or img.height < 20:
                return "签名图像无效，请重新签名。"
            alpha = img.convert("RGBA").getchannel("A")
            box = alpha.getbbox()
    except Exception:
        return "签名图像无效，请重新签名。"
    if box is None or (box[2] - box[0]) < 15:
        return "签名为空，请在签名板上手写签名。"
    return None
