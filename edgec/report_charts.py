"""Horizontal bar charts as PNG, drawn with Pillow (a core dependency; no plotting library).

One chart type serves every picture in a compile's output: labelled bars, largest first, each
with its value printed, an optional error bar (low–high) and an optional measured point drawn
over the bar. Drawing is deterministic: the same rows give the same bytes (Pillow's built-in
font, no timestamps in the PNG). That font has Latin glyphs only: keep titles and labels to
them (no arrows or dashes).

    Latency by op type — efficientvit_m0 on host (measured, ORT profiler)
    Conv          ████████████████████████  3.312 ms
    Gemm          ███                        0.391 ms
    ...
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH = 960
ROW = 26
PAD = 16
BAR = (70, 110, 180)
ERROR = (40, 40, 40)
MEASURED = (200, 60, 40)
TEXT = (20, 20, 20)
MUTED = (110, 110, 110)


@dataclasses.dataclass(frozen=True)
class Bar:
    """One row: `value` drawn as a bar; `low`–`high` as an error bar; `measured` as a dot."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    measured: float | None = None
    note: str = ""


def bar_chart(title: str, bars: list[Bar], *, unit: str = "ms", footer: str = "") -> Image.Image:
    """The chart as an RGB image (rows in the order given)."""
    font = ImageFont.load_default(size=14)
    small = ImageFont.load_default(size=12)
    label_w = max([_width(font, b.label) for b in bars] + [60]) + PAD
    legend = any(b.measured is not None for b in bars) or any(b.high is not None for b in bars)
    height = PAD * 3 + 22 + ROW * max(len(bars), 1) + (22 if legend else 0) + (20 if footer else 0)
    image = Image.new("RGB", (WIDTH, height), "white")
    draw = ImageDraw.Draw(image)
    draw.text((PAD, PAD), title, fill=TEXT, font=font)
    top = PAD * 2 + 22
    value_w = 230
    left, right = PAD + label_w, WIDTH - PAD - value_w
    scale_max = max([_reach(b) for b in bars] + [1e-9])
    span = right - left

    def x(v: float) -> float:
        return left + span * max(v, 0.0) / scale_max

    for i, b in enumerate(bars):
        y = top + i * ROW
        mid = y + ROW // 2
        draw.text((PAD, y + 5), b.label, fill=TEXT, font=font)
        draw.rectangle([left, y + 5, max(x(b.value), left + 1), y + ROW - 5], fill=BAR)
        if b.low is not None and b.high is not None:
            draw.line([x(b.low), mid, x(b.high), mid], fill=ERROR, width=2)
            for end in (b.low, b.high):
                draw.line([x(end), mid - 5, x(end), mid + 5], fill=ERROR, width=2)
        if b.measured is not None:
            cx = x(b.measured)
            draw.ellipse([cx - 5, mid - 5, cx + 5, mid + 5], fill=MEASURED, outline=TEXT)
        text = f"{b.value:.3f} {unit}" + (f"  {b.note}" if b.note else "")
        draw.text((right + 8, y + 6), text, fill=TEXT, font=small)
    y = top + ROW * max(len(bars), 1) + 6
    if legend:
        draw.rectangle([PAD, y + 4, PAD + 14, y + 14], fill=BAR)
        draw.text((PAD + 20, y + 2), "estimate", fill=MUTED, font=small)
        draw.line([PAD + 100, y + 9, PAD + 130, y + 9], fill=ERROR, width=2)
        draw.text((PAD + 136, y + 2), "expected error", fill=MUTED, font=small)
        draw.ellipse([PAD + 250, y + 4, PAD + 260, y + 14], fill=MEASURED, outline=TEXT)
        draw.text((PAD + 266, y + 2), "measured", fill=MUTED, font=small)
        y += 22
    if footer:
        draw.text((PAD, y + 2), footer, fill=MUTED, font=small)
    return image


def save_png(image: Image.Image, path: Path) -> None:
    """Write `image` without metadata (byte-for-byte reproducible)."""
    image.save(path, format="PNG", optimize=False)


def _reach(b: Bar) -> float:
    return max(v for v in (b.value, b.high, b.measured) if v is not None)


def _width(font: ImageFont.FreeTypeFont, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)
