"""A worse camera than the renderer's: optical blur, more sensor noise, JPEG compression, a light
whose colour changes.

The scenes (``sim/scenes.py``) add mild sensor noise and a drift of brightness, nothing else. A
robot's camera blurs, is noisier in dim light, and a bag recorded from a compressed image topic
carries JPEG blocks and colour bleeding at edges. A robot taught an object in one room and sent
to fetch it in another sees it under another light: warmer or cooler, which no brightness
normalisation undoes (``light_shift``). ``degrade_scene`` applies such a camera to a rendered scene, the
teaching captures included (they come from the same camera), and leaves the ground truth as it
is. It measures how far the identity cues and masks depend on clean pixels (``perovss bench core``
with ``OPTIONS``); it is not a model of any one camera.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from perovss_ros.sim.scenes import Scene


# The command-line options of ``add_arguments``, as error messages name them.
OPTIONS = "--blur/--camera-noise/--jpeg-quality/--light-shift"
# Beyond this the blue channel of a warmed frame loses more than half its light.
MAX_LIGHT_SHIFT = 0.5


@dataclass(frozen=True)
class CameraDegradation:
    """``blur_sigma``: Gaussian blur in pixels (0: none); ``noise_sigma``: extra Gaussian noise per
    channel in grey levels (0: none); ``jpeg_quality``: JPEG round trip at this quality, 1-100
    (None: none). Applied in that order, as in a camera: optics, sensor, encoder. ``light_shift``: the
    light warms over the sequence, the red channel's gain rising to ``1 + light_shift`` and the
    blue one's falling to ``1 - light_shift`` by the last frame (0: none, at most 0.5); teaching
    captures keep the first light (``degrade_scene``), as an object taught in one room and looked
    for in another."""

    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    jpeg_quality: int | None = None
    light_shift: float = 0.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.blur_sigma) and self.blur_sigma >= 0):
            raise ValueError(f"blur_sigma {self.blur_sigma}: use a finite value >= 0")
        if not (np.isfinite(self.noise_sigma) and self.noise_sigma >= 0):
            raise ValueError(f"noise_sigma {self.noise_sigma}: use a finite value >= 0")
        if self.jpeg_quality is not None and not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality {self.jpeg_quality}: use 1..100 (or None for no JPEG)")
        if not (np.isfinite(self.light_shift) and 0 <= self.light_shift <= MAX_LIGHT_SHIFT):
            raise ValueError(f"light_shift {self.light_shift}: use 0..{MAX_LIGHT_SHIFT}")

    @property
    def active(self) -> bool:
        """Whether it changes an image at all."""
        return self.blur_sigma > 0 or self.noise_sigma > 0 or self.jpeg_quality is not None or self.light_shift > 0

    def apply(self, rgb: np.ndarray, rng: np.random.Generator, light: float = 0.0) -> np.ndarray:
        """``H×W×3 uint8 RGB`` -> the same seen through this camera (a new array; ``rng`` draws the noise).

        ``light``: how far the light has warmed, 0 (the first light) to 1 (``light_shift`` reached).
        """
        # OpenCV here, not at module level: the CLI imports this module to build its parser.
        import cv2

        out = np.ascontiguousarray(rgb)
        if self.light_shift > 0 and light > 0:
            shift = self.light_shift * float(light)
            gains = np.array([1.0 + shift, 1.0, 1.0 - shift], np.float32)
            out = np.clip(out.astype(np.float32) * gains, 0.0, 255.0).astype(np.uint8)
        if self.blur_sigma > 0:
            out = cv2.GaussianBlur(out, (0, 0), self.blur_sigma)
        if self.noise_sigma > 0:
            noisy = out.astype(np.float32) + rng.normal(0.0, self.noise_sigma, out.shape).astype(np.float32)
            out = np.clip(noisy, 0.0, 255.0).astype(np.uint8)
        if self.jpeg_quality is not None:
            ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                                       [cv2.IMWRITE_JPEG_QUALITY, int(self.jpeg_quality)])
            if not ok:
                raise RuntimeError("OpenCV could not JPEG-encode the frame")
            out = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        return out.copy() if out is rgb else out

    def describe(self) -> str:
        """A short text for reports, e.g. ``blur 1.0 px, noise 5.0, JPEG 75`` (``clean`` when inactive)."""
        parts = []
        if self.blur_sigma > 0:
            parts.append(f"blur {self.blur_sigma:g} px")
        if self.noise_sigma > 0:
            parts.append(f"noise {self.noise_sigma:g}")
        if self.jpeg_quality is not None:
            parts.append(f"JPEG {self.jpeg_quality}")
        if self.light_shift > 0:
            parts.append(f"light shift {self.light_shift:g}")
        return ", ".join(parts) or "clean"


def degrade_scene(scene: Scene, camera: CameraDegradation, seed: int) -> Scene:
    """``scene`` with every frame and teaching capture seen through ``camera`` (noise drawn from ``seed``;
    the same seed gives the same images). Ground truth and everything else are shared, not copied.
    The light warms from the first frame to the last (``light_shift``); teaching captures keep the first."""
    if not camera.active:
        return scene
    rng = np.random.default_rng(seed)
    last = max(1, len(scene.frames) - 1)
    return replace(scene, frames=[camera.apply(f, rng, light=i / last) for i, f in enumerate(scene.frames)],
                   teach_frames=[camera.apply(f, rng) for f in scene.teach_frames])


def add_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--blur``, ``--camera-noise``, ``--jpeg-quality`` and ``--light-shift`` (``what``: where the help says
    they apply)."""
    parser.add_argument("--blur", type=float, default=0.0,
                        help=f"{what}: blur every frame and teach capture by this Gaussian sigma in pixels "
                             "(sim/camera.py; default 0: none)")
    parser.add_argument("--camera-noise", type=float, default=0.0,
                        help=f"{what}: add Gaussian sensor noise of this sigma in grey levels on top of the "
                             "scene's own (default 0: none)")
    parser.add_argument("--jpeg-quality", type=int, default=None,
                        help=f"{what}: JPEG round trip of every frame and teach capture at this quality, 1-100, "
                             "as from a compressed image topic (default: none)")
    parser.add_argument("--light-shift", type=float, default=0.0,
                        help=f"{what}: the light warms over the sequence, red gain up to 1+S and blue down to "
                             f"1-S by the last frame, teach captures under the first light (0..{MAX_LIGHT_SHIFT}; "
                             "default 0: none)")


def from_arguments(args: argparse.Namespace) -> CameraDegradation:
    """The ``CameraDegradation`` of ``add_arguments``' options (inactive when they are absent); ValueError
    when they are out of range."""
    return CameraDegradation(blur_sigma=getattr(args, "blur", 0.0), noise_sigma=getattr(args, "camera_noise", 0.0),
                             jpeg_quality=getattr(args, "jpeg_quality", None),
                             light_shift=getattr(args, "light_shift", 0.0))
