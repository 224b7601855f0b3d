"""GrabCut mask decoder of the classic backend, seeded by points, a box and the feature grid.

Without a box, the region is grown on the feature grid from the positive points (cells whose
descriptor is close to the seeds' and connected to them); its bounding box plays the box.
GrabCut then runs on a downscaled crop around the box: outside the box is background,
grown cells are probable foreground, positive points foreground, negative points background.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from perovss_ros.core.types import BoxXYXY, DecodeOutput, Features, Guidance, Prompts

# Crop margin around the prompt box, as a fraction of its longest side.
MARGIN = 0.25


class GrabCutDecoder:
    """MaskDecoder of the classic backend (one mask per prompt set, no logits, no guidance).

    ``grow_similarity``: cosine threshold for growing a region from the positive points.
    ``work_size``: longest side of the crop GrabCut runs on. ``iterations``: GrabCut iterations.
    """

    supports_guidance = False
    provides_logits = False

    def __init__(self, grow_similarity: float = 0.85, work_size: int = 128, iterations: int = 3) -> None:
        self.grow_similarity = float(grow_similarity)
        self.work_size = int(work_size)
        self.iterations = int(iterations)

    def decode(
        self,
        features: Features,
        rgb: np.ndarray,
        prompts: list[Prompts],
        guidance: list[Guidance | None] | None = None,
    ) -> DecodeOutput:
        """Decode K prompt sets -> masks ``K×1×H×W`` bool, scores ``K×1`` float32, logits None."""
        img_h, img_w = rgb.shape[:2]
        masks = np.zeros((len(prompts), 1, img_h, img_w), dtype=bool)
        scores = np.zeros((len(prompts), 1), dtype=np.float32)
        for k, prompt in enumerate(prompts):
            masks[k, 0], scores[k, 0] = self._decode_one(features, rgb, prompt)
        return DecodeOutput(masks=masks, scores=scores, logits=None)

    def grow_region(self, features: Features, points: np.ndarray) -> np.ndarray:
        """Grid cells (``h×w`` bool) similar to the cells under ``points`` (N×2 x, y), connected to them."""
        # Smoothed over 3×3 cells: a striped or chequered surface is then one region, not its stripes.
        grid = F.avg_pool2d(features.grid.float()[None], 3, stride=1, padding=1, count_include_pad=False)[0]
        grid = F.normalize(grid, dim=0)
        grid_h, grid_w = features.grid_hw
        vh, vw = features.valid_hw
        cells = np.clip(
            np.floor(points * features.scale / features.stride).astype(int), 0, [grid_w - 1, grid_h - 1]
        )
        seed = F.normalize(grid[:, cells[:, 1], cells[:, 0]].mean(1), dim=0)
        sim = torch.einsum("c,chw->hw", seed, grid).numpy()
        close = np.zeros((grid_h, grid_w), np.uint8)
        close[:vh, :vw] = sim[:vh, :vw] >= self.grow_similarity
        close[cells[:, 1], cells[:, 0]] = 1
        _, labels = cv2.connectedComponents(close, connectivity=8)
        keep = np.unique(labels[cells[:, 1], cells[:, 0]])
        return np.isin(labels, keep[keep > 0])


    def _decode_one(self, features: Features, rgb: np.ndarray, prompt: Prompts) -> tuple[np.ndarray, float]:
        img_h, img_w = rgb.shape[:2]
        points = np.asarray(prompt.points, np.float32).reshape(-1, 2)
        labels = np.asarray(prompt.labels).reshape(-1)
        positives = points[labels == 1]
        box = tuple(float(v) for v in prompt.box) if prompt.box is not None else None
        region = self.grow_region(features, positives) if len(positives) else None
        if region is not None:
            grown_box = _cells_box(region, features)
            box = grown_box if box is None else _union(box, grown_box)
        if box is None:
            return np.zeros((img_h, img_w), bool), 0.0
        x0, y0, x1, y1 = _clip_box(box, img_w, img_h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            return np.zeros((img_h, img_w), bool), 0.0
        margin = max(4, round(MARGIN * max(x1 - x0, y1 - y0)))
        cx0, cy0 = max(0, x0 - margin), max(0, y0 - margin)
        cx1, cy1 = min(img_w, x1 + margin), min(img_h, y1 + margin)
        factor = min(1.0, self.work_size / max(cx1 - cx0, cy1 - cy0))
        crop_w, crop_h = max(2, round((cx1 - cx0) * factor)), max(2, round((cy1 - cy0) * factor))
        crop = cv2.resize(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]), (crop_w, crop_h),
                          interpolation=cv2.INTER_AREA)
        bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)

        def to_crop(x: float, y: float) -> tuple[int, int]:
            cx = int(np.clip((x - cx0) * factor, 0, crop_w - 1))
            return cx, int(np.clip((y - cy0) * factor, 0, crop_h - 1))

        # The box is a hint, not a wall: outside it is only probable background, so a mask can
        # grow past a stale tracking box; the crop border is the one certain background.
        gc = np.full((crop_h, crop_w), cv2.GC_PR_BGD, np.uint8)
        if prompt.box is not None:
            bx0, by0 = to_crop(*prompt.box[:2])
            bx1, by1 = to_crop(prompt.box[2] - 1, prompt.box[3] - 1)
            gc[by0:by1 + 1, bx0:bx1 + 1] = cv2.GC_PR_FGD
        if region is not None:
            grown = _region_to_image(region, features, img_h, img_w)[cy0:cy1, cx0:cx1]
            grown = cv2.resize(grown.astype(np.uint8), (crop_w, crop_h), interpolation=cv2.INTER_NEAREST) > 0
            gc[grown] = cv2.GC_PR_FGD
        ring = max(1, round(0.02 * max(crop_w, crop_h)))
        border = np.ones((crop_h, crop_w), bool)
        border[ring:-ring, ring:-ring] = False
        # Image edges are not evidence of background (objects leave the view there).
        if cx0 == 0:
            border[:, :ring] = False
        if cy0 == 0:
            border[:ring, :] = False
        if cx1 == img_w:
            border[:, -ring:] = False
        if cy1 == img_h:
            border[-ring:, :] = False
        gc[border] = cv2.GC_BGD
        radius = max(1, round(0.04 * max(crop_w, crop_h)))
        for (px, py), label in zip(points, labels, strict=True):
            if cx0 <= px < cx1 and cy0 <= py < cy1:
                cv2.circle(gc, to_crop(px, py), radius, int(cv2.GC_FGD if label == 1 else cv2.GC_BGD), -1)
        seed_fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
        if seed_fg.all() or not seed_fg.any():
            out = seed_fg
        else:
            bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            try:
                cv2.grabCut(bgr, gc, None, bgd_model, fgd_model, self.iterations, cv2.GC_INIT_WITH_MASK)
                out = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
            except cv2.error:
                out = seed_fg
        out = _keep_prompted_components(out, [to_crop(px, py) for (px, py) in positives
                                              if cx0 <= px < cx1 and cy0 <= py < cy1])
        score = _iou(out, seed_fg)
        full = np.zeros((img_h, img_w), bool)
        full[cy0:cy1, cx0:cx1] = cv2.resize(out.astype(np.uint8), (cx1 - cx0, cy1 - cy0),
                                            interpolation=cv2.INTER_NEAREST) > 0
        return full, score


def _cells_box(region: np.ndarray, features: Features) -> BoxXYXY:
    """Image-pixel XYXY box of the ``h×w`` bool grid cells, one cell larger on every side."""
    ys, xs = np.nonzero(region)
    cell = features.stride / features.scale
    img_h, img_w = features.image_hw
    return (max(0.0, (xs.min() - 1) * cell), max(0.0, (ys.min() - 1) * cell),
            min(float(img_w), (xs.max() + 2) * cell), min(float(img_h), (ys.max() + 2) * cell))


def _union(a: BoxXYXY, b: BoxXYXY) -> BoxXYXY:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _clip_box(box: BoxXYXY, img_w: int, img_h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (int(np.clip(np.floor(x0), 0, img_w)), int(np.clip(np.floor(y0), 0, img_h)),
            int(np.clip(np.ceil(x1), 0, img_w)), int(np.clip(np.ceil(y1), 0, img_h)))


def _region_to_image(region: np.ndarray, features: Features, img_h: int, img_w: int) -> np.ndarray:
    """Grid cells ``h×w`` bool -> image pixels ``H×W`` bool (nearest cell)."""
    cell = features.stride / features.scale
    ys = np.minimum((np.arange(img_h) / cell).astype(int), region.shape[0] - 1)
    xs = np.minimum((np.arange(img_w) / cell).astype(int), region.shape[1] - 1)
    return region[ys[:, None], xs[None, :]]


def _keep_prompted_components(mask: np.ndarray, points: list[tuple[int, int]]) -> np.ndarray:
    """Connected components of ``mask`` under a positive point (the largest one if none is)."""
    if not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = {int(labels[y, x]) for x, y in points} - {0}
    if not keep:
        keep = {int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1} if count > 1 else set()
    return np.isin(labels, list(keep))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
