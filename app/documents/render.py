"""Plain data → HTML (Jinja, ``templates/documents/``) → PDF (WeasyPrint).

The environment is our own: documents need no request, no session and no CSRF token, so nothing
from ``app.web`` is imported; it reads the same ``templates/`` folder. WeasyPrint may fetch only
``data:`` URLs (the signatures drawn on the pad): a document never reaches the network or the disk
because of what a citizen or a unit typed. The fonts are the ones fontconfig knows; Noto CJK must be
installed (``fonts-noto-cjk``) with ``libharfbuzz-subset0`` for fast subsetting (STACK-NOTES).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

from app.documents.seal import SEAL_VERSION, seal_svg
from app.settings import get_settings

# Bump when the rendering changes in a way the templates' text does not show (filters, options).
RENDER_VERSION = "1"

# One per process: WeasyPrint keeps the fonts it has loaded in it, so later documents skip that.
FONT_CONFIG = FontConfiguration()
# One render at a time per process: Pango and the shared font configuration are not thread-safe
# (two threads rendering at once log Pango-CRITICAL errors). Rendering holds the GIL nearly all
# the time anyway; parallelism comes from processes (web workers, Dramatiq processes).
_RENDER_LOCK = threading.Lock()
_warm = threading.Event()

# The regulation the documents cite (seed/000_dfabf140c638651b.txt).
REGULATION = "《通辽市人民网地方领导留言板市长板块“民盼通办”工作办法（暂行）》"

_DIGITS = "〇一二三四五六七八九"


def cn_number(n: int) -> str:
    """1–31 as written in a Chinese date: 十, 十一, 二十, 三十一."""
    if n < 10:
        return _DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else _DIGITS[tens]) + "十" + (_DIGITS[ones] if ones else "")


def cn_date(value: date | datetime | None) -> str:
    """二〇二六年十二月四日 — the date as it is written under a sealed signature."""
    if value is None:
        return ""
    day = _local(value).date() if isinstance(value, datetime) else value
    year = "".join(_DIGITS[int(d)] for d in str(day.year))
    return f"{year}年{cn_number(day.month)}月{cn_number(day.day)}日"


def ymd(value: date | datetime | None) -> str:
    """2026年12月4日 — dates in the text and in forms."""
    if value is None:
        return ""
    day = _local(value).date() if isinstance(value, datetime) else value
    return f"{day.year}年{day.month}月{day.day}日"


def _local(value: datetime) -> datetime:
    return value.astimezone(ZoneInfo(get_settings().timezone))


def local(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return "" if value is None else _local(value).strftime(fmt)


def paragraphs(text: str) -> list[str]:
    """The non-empty lines of a text, each to be set as its own indented paragraph."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _seal(unit_name: str, size_mm: float = 42, label: str = "") -> Markup:
    return Markup(seal_svg(unit_name, size_mm=size_mm, label=label))  # noqa: S704  (our own SVG, names escaped)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(get_settings().templates_dir)),
        autoescape=select_autoescape(["html", "xml", "svg"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cn_date=cn_date, ymd=ymd, local=local, paragraphs=paragraphs)
    env.globals["seal"] = _seal
    env.globals["regulation"] = REGULATION
    return env


# The files every document template shares (extends, includes, imports).
SHARED = ("base.html", "documents.css", "macros.html")


@lru_cache(maxsize=32)
def template_version(template: str) -> str:
    """A fingerprint of everything that shapes a document besides its data: the template, the
    shared files of ``templates/documents/``, the seal drawing and the renderer. Part of each
    document's content hash, so a changed layout renders afresh (read once per process)."""
    folder = get_settings().templates_dir
    digest = hashlib.sha256(f"{template}|{SEAL_VERSION}|{RENDER_VERSION}".encode())
    for name in (template, *(f"documents/{shared}" for shared in SHARED)):
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Rendered:
    pdf: bytes
    pages: int


def render_html(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@lru_cache(maxsize=1)
def stylesheet() -> CSS:
    """``templates/documents/documents.css``, parsed once per process (~40 ms a document saved)."""
    path = get_settings().templates_dir / "documents" / "documents.css"
    return CSS(string=path.read_text(encoding="utf-8"), font_config=FONT_CONFIG)


def html_to_pdf(html: str) -> Rendered:
    """WeasyPrint with our stylesheet, our fonts and the data-only fetcher."""
    fetcher = URLFetcher(allowed_protocols={"data"})
    base_url = (get_settings().templates_dir / "documents").as_uri() + "/"
    with _RENDER_LOCK:
        document = HTML(string=html, base_url=base_url, url_fetcher=fetcher).render(
            stylesheets=[stylesheet()], font_config=FONT_CONFIG
        )
        pdf = document.write_pdf()
    assert pdf is not None
    return Rendered(pdf, len(document.pages))


def render_document(template: str, **context: Any) -> Rendered:
    """The PDF of ``template`` (a name under ``templates/``) and its page count."""
    return html_to_pdf(render_html(template, **context))


def render_pdf(template: str, **context: Any) -> bytes:
    return render_document(template, **context).pdf


def warm_up() -> None:
    """Load Pango, fontconfig and the CJK fonts once, so the first real document does not pay for it
    (~0.2 s). Call at worker start; cheap to call again."""
    if _warm.is_set():
        return
    html_to_pdf(
        '<html><head><style>@page { size: A4; font-family: "Noto Serif CJK SC" }'
        'body { font-family: "Noto Serif CJK SC" } b { font-family: "Noto Sans CJK SC" }</style></head>'
        f"<body>承办单 <b>回复意见</b> 2026 {seal_svg('通辽市政府门户网站运维中心')}</body></html>"
    )
    _warm.set()


__all__ = [
    "FONT_CONFIG",
    "Rendered",
    "cn_date",
    "environment",
    "render_document",
    "render_html",
    "render_pdf",
    "template_version",
    "warm_up",
    "ymd",
]
