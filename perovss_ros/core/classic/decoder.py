"""GrabCut mask decoder of the classic backend, seeded by points, a box and the feature grid.

From the first positive point a region is grown on the (3×3-smoothed) feature grid: cells
whose descriptor is close to that cell's and connected to it, limited to the box when one is
given. GrabCut then runs on a downscaled crop: the grown cells are probable foreground, one
cell around them probable background, everything else certain background; positive points are
foreground, negative points background. The mask therefore never leaves the grown region
(plus one cell), which stops a stale tracking box or a wrong extra point from dragging it
over a background of similar colour. With a box and no positive point, the box is the
probable foreground (classic GrabCut).

The prompt sets of one call are independent, so ``threads`` > 1 decodes them on a thread pool
(OpenCV releases the GIL inside GrabCut). GrabCut's random draws come from OpenCV's per-thread
generator, seeded before every call, so the masks do not depend on the thread count.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch.nn.functional as F

from perovss_ros.core.config import DECODE_SIZE
from perovss_ros.core.matching import mask_iou, tight_box
from perovss_ros.core.types import BoxXYXY, DecodeOutput, Features, Guidance, Prompts

GROW_GRID_KEY = "classic_grow_grid"
GRABCUT_SEED = 12345
MAX_AUTO_THREADS = 4


def decode_threads(asked: int) -> int:
    """Threads the GrabCut decodes run on: ``asked``, or for 0 the CPU count up to ``MAX_AUTO_THREADS``."""
    if asked < 0:
        raise ValueError(f"decode threads must be >= 0, got {asked}")
    return asked or max(1, min(MAX_AUTO_THREADS, os.cpu_count() or 1))


class GrabCutDecoder:
    """MaskDecoder of the classic backend (one mask per prompt set, no logits, no guidance).

    ``grow_similarity``: cosine threshold for growing a region from the positive points.
    ``work_size``: longest side of the crop GrabCut runs on. ``iterations``: GrabCut iterations.
    ``threads``: prompt sets decoded at once (0: the CPU count, at most ``MAX_AUTO_THREADS``).
    """

    supports_guidance = False
    provides_logits = False

    def __init__(self, grow_similarity: float = 0.5, work_size: int = DECODE_SIZE, iterations: int = 3,
                 threads: int = 1) -> None:
        self.grow_similarity = float(grow_similarity)
        self.work_size = int(work_size)
        self.iterations = int(iterations)
        self.threads = decode_threads(int(threads))
        # The executor starts its threads on the first decode that needs them.
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="grabcut") if self.threads > 1 else None

    @property
    def fit_id(self) -> str:
        """The settings its masks depend on (an identity model's region check is calibrated on them)."""
        return f"grabcut-{self.work_size}px-{self.iterations}it"

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
        if self._pool is not None and len(prompts) > 1:
            self._grow_grid(features)  # built once here, not raced for by the threads
            decoded = self._pool.map(lambda prompt: self._decode_one(features, rgb, prompt), prompts)
        else:
            decoded = (self._decode_one(features, rgb, prompt) for prompt in prompts)
        for k, (mask, score) in enumerate(decoded):
            masks[k, 0], scores[k, 0] = mask, score
        return DecodeOutput(masks=masks, scores=scores, logits=None)

    @staticmethod
    def _grow_grid(features: Features) -> np.ndarray:
        """``C×h×w`` grid descriptors smoothed over 3×3 cells and L2-normalised, cached in ``features.extra``."""
        grid = features.extra.get(GROW_GRID_KEY)
        if grid is None:  # once per frame, shared by every prompt set decoded on it
            # Smoothed over 3×3 cells: a striped or chequered surface is then one region, not its stripes.
            grid = F.avg_pool2d(features.grid.float()[None], 3, stride=1, padding=1, count_include_pad=False)[0]
            grid = F.normalize(grid, dim=0).numpy()
            features.extra[GROW_GRID_KEY] = grid
        return grid

    def grow_region(self, features: Features, points: np.ndarray) -> np.ndarray:
        """Grid cells (``h×w`` bool) similar to the cells under ``points`` (N×2 x, y), connected to them."""
        grid = self._grow_grid(features)
        grid_h, grid_w = features.grid_hw
        vh, vw = features.valid_hw
        cells = np.clip(
            np.floor(points * features.scale / features.stride).astype(int), 0, [grid_w - 1, grid_h - 1]
        )
        seed = grid[:, cells[:, 1], cells[:, 0]].mean(1)
        seed = seed / max(float(np.linalg.norm(seed)), 1e-12)
        sim = np.tensordot(seed, grid, axes=1)
        close = np.zeros((grid_h, grid_w), np.uint8)
        close[:vh, :vw] = sim[:vh, :vw] >= self.grow_similarity
        close[cells[:, 1], cells[:, 0]] = 1
        _, labels = cv2.connectedComponents(close, connectivity=8)
        keep = np.unique(labels[cells[:, 1], cells[:, 0]])
        return np.isin(labels, keep[keep > 0])


    def _decode_one(self, features: Features, rgb: np.ndarray, prompt: Prompts) -> tuple[np.ndarray, float]:
        img_h, img_w = rgb.shape[:2]
        empty = np.zeros((img_h, img_w), bool), 0.0
        points = np.asarray(prompt.points, np.float32).reshape(-1, 2)
        labels = np.asarray(prompt.labels).reshape(-1)
        positives = points[labels == 1]
        box = _clip_box(prompt.box, img_w, img_h) if prompt.box is not None else None
        if box is not None and (box[2] - box[0] < 2 or box[3] - box[1] < 2):
            box = None
        if len(positives):
            # The first positive point is the strongest evidence; the region grown from it bounds the
            # mask (a wrong extra point or a stale box cannot drag GrabCut over the background).
            region = self.grow_region(features, positives[:1])
            if prompt.region is not None:
                region &= np.asarray(prompt.region, bool) | _point_cell(positives[0], features)
            if box is not None:
                region &= _box_cells(box, features, grow=2) | _point_cell(positives[0], features)
            allowed = cv2.dilate(region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
            if prompt.region is not None:
                # The caller's region is a hard bound (negative evidence lies outside it).
                allowed &= np.asarray(prompt.region, bool)
            allowed = _region_to_image(allowed, features, img_h, img_w)
            fg_hint = _region_to_image(region, features, img_h, img_w)
        elif box is not None:
            allowed = np.zeros((img_h, img_w), bool)
            allowed[box[1]:box[3], box[0]:box[2]] = True
            fg_hint = allowed
        else:
            return empty
        roi = _int_box(allowed)
        if roi is None:
            return empty
        ring = max(2, round(0.03 * max(roi[2] - roi[0], roi[3] - roi[1])))
        cx0, cy0 = max(0, roi[0] - ring), max(0, roi[1] - ring)
        cx1, cy1 = min(img_w, roi[2] + ring), min(img_h, roi[3] + ring)
        factor = min(1.0, self.work_size / max(cx1 - cx0, cy1 - cy0))
        crop_w, crop_h = max(2, round((cx1 - cx0) * factor)), max(2, round((cy1 - cy0) * factor))

        def shrink(image: np.ndarray, interp: int) -> np.ndarray:
            return cv2.resize(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]), (crop_w, crop_h), interpolation=interp)

        def to_crop(x: float, y: float) -> tuple[int, int]:
            cx = int(np.clip((x - cx0) * factor, 0, crop_w - 1))
            return cx, int(np.clip((y - cy0) * factor, 0, crop_h - 1))

        bgr = cv2.cvtColor(shrink(rgb, cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
        gc = np.full((crop_h, crop_w), cv2.GC_BGD, np.uint8)
        gc[shrink(allowed.astype(np.uint8), cv2.INTER_NEAREST) > 0] = cv2.GC_PR_BGD
        gc[shrink(fg_hint.astype(np.uint8), cv2.INTER_NEAREST) > 0] = cv2.GC_PR_FGD
        radius = max(1, round(0.04 * max(crop_w, crop_h)))
        for k, ((px, py), label) in enumerate(zip(points, labels, strict=True)):
            if not (cx0 <= px < cx1 and cy0 <= py < cy1):
                continue
            at = to_crop(px, py)
            if label != 1:
                cv2.circle(gc, at, radius, int(cv2.GC_BGD), -1)
            elif k == 0 or gc[at[1], at[0]] == cv2.GC_PR_FGD:
                cv2.circle(gc, at, radius, int(cv2.GC_FGD), -1)
        seed_fg = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
        has_bg = np.isin(gc, (cv2.GC_BGD, cv2.GC_PR_BGD)).any()
        out = seed_fg
        if seed_fg.any() and has_bg:
            bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            # GrabCut draws its initial clusters from OpenCV's global RNG: seed it per call so the same
            # frame and prompts give the same mask whatever ran before.
            cv2.setRNGSeed(GRABCUT_SEED)
            try:
                cv2.grabCut(bgr, gc, None, bgd_model, fgd_model, self.iterations, cv2.GC_INIT_WITH_MASK)
                out = np.isin(gc, (cv2.GC_FGD, cv2.GC_PR_FGD))
            except cv2.error:  # degenerate colour models (e.g. a flat crop): keep the seed region
                out = seed_fg
        primary = [to_crop(*positives[0])] if len(positives) else []
        out = _keep_prompted_components(out, primary)
        score = mask_iou(out, seed_fg)
        full = np.zeros((img_h, img_w), bool)
        full[cy0:cy1, cx0:cx1] = cv2.resize(out.astype(np.uint8), (cx1 - cx0, cy1 - cy0),
                                            interpolation=cv2.INTER_NEAREST) > 0
        return full, score


def _box_cells(box: tuple[int, int, int, int], features: Features, grow: int = 0) -> np.ndarray:
    """``h×w`` bool grid cells touching an image box, grown by ``grow`` cells."""
    grid_h, grid_w = features.grid_hw
    per = features.scale / features.stride
    x0, y0 = int(box[0] * per) - grow, int(box[1] * per) - grow
    x1, y1 = int(np.ceil(box[2] * per)) + grow, int(np.ceil(box[3] * per)) + grow
    cells = np.zeros((grid_h, grid_w), bool)
    cells[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return cells


def _point_cell(point: np.ndarray, features: Features) -> np.ndarray:
    grid_h, grid_w = features.grid_hw
    cells = np.zeros((grid_h, grid_w), bool)
    x = int(np.clip(point[0] * features.scale / features.stride, 0, grid_w - 1))
    y = int(np.clip(point[1] * features.scale / features.stride, 0, grid_h - 1))
    cells[y, x] = True
    return cells


def _int_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Integer XYXY box (exclusive end) of an ``H×W bool`` mask, None when empty."""
    box = tight_box(mask)
    return None if box is None else tuple(int(v) for v in box)


def _clip_box(box: BoxXYXY, img_w: int, img_h: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (int(np.clip(np.floor(x0), 0, img_w)), int(np.clip(np.floor(y0), 0, img_h)),
            int(np.clip(np.ceil(x1), 0, img_w)), int(np.clip(np.ceil(y1), 0, img_h)))


def _region_to_image(region: np.ndarray, features: Features, img_h: int, img_w: int) -> np.ndarray:
    """Grid cells ``h×w`` bool -> image pixels ``H×W`` bool (nearest cell)."""
    cell = features.stride / features.scale
    ys = np.minimum((np.arange(img_h) / cell).astype(int), region.shape[0] - 1)
    xs = np.minimum((np.arange(img_w) / cell).astype(int), region.shape[1] - 1)
    return region[ys][:, xs]  # two 1-D gathers: a tenth of the time of one 2-D fancy index


def _keep_prompted_components(mask: np.ndarray, points: list[tuple[int, int]]) -> np.ndarray:
    """Connected components of ``mask`` under a positive point (the largest one if none is)."""
    if not mask.any():
        return mask
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    keep = {int(labels[y, x]) for x, y in points} - {0}
    if not keep:
        keep = {int(np.argmax(stats[1:, cv2.CC_STAT_AREA])) + 1} if count > 1 else set()
    return np.isin(labels, list(keep))
