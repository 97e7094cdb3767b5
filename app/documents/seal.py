"""The red official seal (公章) of a unit, drawn as SVG from the unit's full name.

A round seal as the regulation's documents carry it (第十一条: 加盖公章): a red ring, a five-pointed
star in the centre, the unit's full name around the upper arc and an optional label below the star.
Each character of the name is its own rotated ``<text>``: WeasyPrint draws ``<textPath>`` wrongly
(STACK-NOTES). Ink is never even on paper, so each character and the ring get a slightly different
opacity and a few worn specks, from a generator seeded by the name: the same name always gives the
same seal, byte for byte (documents are cached by content, see services.py). Opacity is given as
``fill-opacity``/``stroke-opacity``: WeasyPrint clips an element with ``opacity`` to its
untransformed box, which cuts rotated characters in pieces.
"""

from __future__ import annotations

import hashlib
import math
import random
from functools import lru_cache
from xml.sax.saxutils import escape

# Bump when the drawing changes: it is part of every sealed document's template version.
SEAL_VERSION = "1"

SEAL_RED = "#d9001b"
SEAL_FONT = "'Noto Serif CJK SC', 'Source Han Serif SC', serif"

MIN_CHARS, MAX_CHARS = 4, 20


def _span_degrees(n: int) -> float:
    """How much of the circle the name covers: short names spread out, long ones reach 250°."""
    return min(250.0, max(110.0, 25.0 * n + 20.0))


def _star(cx: float, cy: float, outer: float) -> str:
    inner = outer * 0.382
    points = []
    for k in range(10):
        r = outer if k % 2 == 0 else inner
        angle = math.radians(-90 + 36 * k)
        points.append(f"{cx + r * math.cos(angle):.3f},{cy + r * math.sin(angle):.3f}")
    return " ".join(points)


@lru_cache(maxsize=256)
def seal_svg(unit_name: str, *, size_mm: float = 42, label: str = "") -> str:
    """The seal of ``unit_name`` (4–20 characters) as an SVG document ``size_mm`` across."""
    name = "".join(unit_name.split())
    if not MIN_CHARS <= len(name) <= MAX_CHARS:
        raise ValueError(f"a seal holds a name of {MIN_CHARS}–{MAX_CHARS} characters, got {len(name)}")
    rng = random.Random(hashlib.sha256(f"{name}|{label}|{size_mm}".encode()).digest())
    d = float(size_mm)
    c = d / 2
    ring = d * 0.03  # 1.26 mm on a 42 mm seal
    ring_r = c - ring / 2 - d * 0.006
    inner = ring_r - ring / 2
    n = len(name)
    span = _span_degrees(n)
    pitch = math.radians(span / (n - 1))
    squeeze = 0.78  # seal characters are tall and narrow
    gap = d * 0.02
    font = min(d * 0.19, pitch * (inner - gap) / (squeeze * 1.08 + 0.5 * pitch))
    radius = inner - gap - font * 0.5  # where the centre of each character sits
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="seal" width="{d:g}mm" height="{d:g}mm" '
        f'viewBox="0 0 {d:g} {d:g}">',
        f'<g fill="{SEAL_RED}" stroke="none" font-family="{escape(SEAL_FONT)}" font-weight="700">',
        f'<circle cx="{c:g}" cy="{c:g}" r="{ring_r:.3f}" fill="none" stroke="{SEAL_RED}" '
        f'stroke-width="{ring:.3f}" stroke-opacity="{rng.uniform(0.86, 0.95):.2f}"/>',
    ]
    for i, char in enumerate(name):
        angle = -span / 2 + i * span / (n - 1)
        parts.append(
            f'<text transform="rotate({angle:.3f} {c:g} {c:g}) translate({c:g} {c - radius:.3f}) '
            f'scale({squeeze} 1)" x="0" y="{font * 0.38:.3f}" font-size="{font:.3f}" '
            f'text-anchor="middle" fill-opacity="{rng.uniform(0.78, 0.96):.2f}">{escape(char)}</text>'
        )
    star_r = d * 0.17 if not label else d * 0.15
    star_cy = c if not label else c - d * 0.03
    parts.append(
        f'<polygon class="star" points="{_star(c, star_cy, star_r)}" '
        f'fill-opacity="{rng.uniform(0.86, 0.95):.2f}"/>'
    )
    if label:
        size = d * 0.095
        parts.append(
            f'<text x="{c:g}" y="{c + d * 0.3:.3f}" font-size="{size:.3f}" text-anchor="middle" '
            f'fill-opacity="{rng.uniform(0.8, 0.92):.2f}">{escape(label)}</text>'
        )
    parts.append("</g>")
    parts.extend(_wear(rng, c, ring_r, d))
    parts.append("</svg>")
    return "".join(parts)


def _wear(rng: random.Random, c: float, ring_r: float, d: float) -> list[str]:
    """A few specks where the ink did not take, mostly on the ring, as on a stamped seal."""
    specks = []
    for _ in range(18):
        angle = rng.uniform(0, 2 * math.pi)
        r = ring_r + rng.uniform(-d * 0.012, d * 0.012) if rng.random() < 0.6 else rng.uniform(0, ring_r)
        specks.append(
            f'<circle cx="{c + r * math.cos(angle):.3f}" cy="{c + r * math.sin(angle):.3f}" '
            f'r="{rng.uniform(d * 0.002, d * 0.007):.3f}" fill="#fff" '
            f'fill-opacity="{rng.uniform(0.5, 0.9):.2f}"/>'
        )
    return specks
