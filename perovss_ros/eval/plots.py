"""Pictures of an evaluation: mask overlays, a contact sheet, per-concept bars, IoU over time.

Everything renders off-screen (matplotlib Agg) into PNG files. Images are
``H×W×3`` uint8 RGB; instance masks ``H×W`` integer ids (0 = nothing).
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# Colour per instance id (RGB), cycling; bright enough to read on most backgrounds.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128), (170, 110, 40),
)
# Characters of an 8-point caption line that fit above one 3.2-inch tile.
CAPTION_CHARS = 46


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def color_of(instance_id: int) -> tuple[int, int, int]:
    """RGB colour of an instance id (stable across frames and plots)."""
    return PALETTE[(int(instance_id) - 1) % len(PALETTE)]


def segment_caption(label: str, category: str | None, personal: bool) -> str:
    """The text drawn on a segment: ``my_mug (mug)`` for a personal one with a category, else its category
    (``mug``), else its label."""
    if personal:
        return f"{label} ({category})" if category and category != label else label
    return category or label


@dataclass
class Tile:
    """One picture of a contact sheet and its caption."""

    image: np.ndarray
    caption: str


def overlay(rgb: np.ndarray, instance_mask: np.ndarray, gt_mask: np.ndarray | None = None,
            labels: Mapping[int, str] | None = None, alpha: float = 0.5) -> np.ndarray:
    """Predicted instances tinted over ``rgb`` (their colour, outlined), ground truth outlined in white.

    ``instance_mask`` ``H×W`` ids, ``gt_mask`` ``H×W`` (any non-zero = object) or
    None, ``labels`` id -> text drawn at each instance. Returns a new ``H×W×3`` uint8 RGB.
    """
    out = rgb.astype(np.float32)
    ids = [int(v) for v in np.unique(instance_mask) if v]
    for iid in ids:
        m = instance_mask == iid
        out[m] = (1.0 - alpha) * out[m] + alpha * np.asarray(color_of(iid), np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    thickness = max(1, round(min(rgb.shape[:2]) / 200))
    for iid in ids:
        contours, _ = cv2.findContours((instance_mask == iid).astype(np.uint8), cv2.RETR_EXTERNAL,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color_of(iid), thickness)
    if gt_mask is not None:
        contours, _ = cv2.findContours((np.asarray(gt_mask) > 0).astype(np.uint8), cv2.RETR_LIST,
                                       cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, (255, 255, 255), thickness)
    if labels:
        scale = max(0.35, min(rgb.shape[:2]) / 600)
        for iid in ids:
            if iid in labels:
                ys, xs = np.nonzero(instance_mask == iid)
                org = (int(xs.min()), max(int(ys.min()) - 3, 10))
                cv2.putText(out, labels[iid], org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 3, cv2.LINE_AA)
                cv2.putText(out, labels[iid], org, cv2.FONT_HERSHEY_SIMPLEX, scale, color_of(iid), 1, cv2.LINE_AA)
    return out


def thumbnail(rgb: np.ndarray, max_width: int = 320) -> np.ndarray:
    """``rgb`` shrunk to at most ``max_width`` pixels wide (aspect kept; returned as is if smaller)."""
    h, w = rgb.shape[:2]
    if w <= max_width:
        return rgb
    return cv2.resize(rgb, (max_width, max(1, round(h * max_width / w))), interpolation=cv2.INTER_AREA)


def contact_sheet(tiles: Sequence[Tile], path: str | Path, columns: int = 4, title: str | None = None) -> Path:
    """Write ``tiles`` as a grid with captions (in the given order) to the PNG ``path``; returns the path.

    Long captions are wrapped to ``CAPTION_CHARS`` characters a line so neighbours do not overlap.
    """
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(1, len(tiles))
    cols = max(1, min(columns, n))
    rows = math.ceil(n / cols)
    aspect = tiles[0].image.shape[0] / tiles[0].image.shape[1] if tiles else 0.75
    captions = [textwrap.fill(t.caption, CAPTION_CHARS, break_on_hyphens=False) for t in tiles]
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.2 * aspect * rows + (0.16 * lines + 0.34) * rows
                                                  + 0.4), squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if k < len(tiles):
            ax.imshow(tiles[k].image)
            ax.set_title(captions[k], fontsize=8)
    if not tiles:
        axes[0, 0].text(0.5, 0.5, "no frames", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_BAR_METRICS = ("miou", "boundary_iou", "jf", "presence_precision", "presence_recall", "iou_recall")


def concept_bars(per_concept: Mapping[str, Mapping[str, float]], path: str | Path,
                 metrics: Sequence[str] = _BAR_METRICS) -> Path:
    """Grouped bars: one group per concept, one bar per metric (0..1); NaN metrics are left out."""
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(per_concept)
    width = 0.8 / max(1, len(metrics))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(names) + 2.5), 3.6))
    x = np.arange(len(names))
    for k, metric in enumerate(metrics):
        values = [float(per_concept[n].get(metric, float("nan"))) for n in names]
        ax.bar(x + (k - (len(metrics) - 1) / 2) * width, np.nan_to_num(values, nan=0.0), width, label=metric)
    ax.set_xticks(x, names, rotation=20 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score")
    ax.legend(fontsize=7, ncol=3, loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def iou_over_time(series: Mapping[str, tuple[Sequence[int], Sequence[float], Sequence[bool]]],
                  path: str | Path) -> Path:
    """IoU per frame for each concept: ``series[name] = (frame indices, ious, present)``.

    Frames where the object is absent are drawn as hollow markers (there IoU is
    1 when nothing was predicted and 0 for a false alarm).
    """
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for k, (name, (idx, ious, present)) in enumerate(series.items()):
        idx, ious, present = np.asarray(idx), np.asarray(ious, float), np.asarray(present, bool)
        color = np.asarray(PALETTE[k % len(PALETTE)]) / 255.0
        ax.plot(idx, np.where(present, ious, np.nan), "-", color=color, lw=1.2, label=name)
        ax.plot(idx[present], ious[present], ".", color=color, ms=3)
        ax.plot(idx[~present], ious[~present], "o", mfc="none", color=color, ms=4)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("frame")
    ax.set_ylabel("IoU")
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
