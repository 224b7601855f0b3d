"""Catalogue of the model checkpoints perovss knows, and where it looks for them.

Nothing here downloads; ``perovss models download`` does, where a network exists.
Checksums are SHA-256 of the official files.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

MODEL_DIR_ENV = "PEROVSS_MODEL_DIR"


@dataclass(frozen=True)
class Checkpoint:
    """One downloadable checkpoint.

    ``name`` is the catalogue key (``sam_vit_b``), ``family`` the backend that
    uses it (``sam`` or ``clip``), ``model`` the model key within that family
    (``vit_b``), ``size_bytes`` the exact size where known.
    """

    name: str
    family: str
    model: str
    filename: str
    url: str
    sha256: str
    size_bytes: int | None
    description: str


CHECKPOINTS: dict[str, Checkpoint] = {
    c.name: c
    for c in (
        Checkpoint(
            name="sam_vit_b",
            family="sam",
            model="vit_b",
            filename="sam_vit_b_01ec64.pth",
            url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
            sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
            size_bytes=375_042_383,
            description="Segment Anything ViT-B (91M parameters), the practical choice on a Jetson or CPU",
        ),
        Checkpoint(
            name="sam_vit_l",
            family="sam",
            model="vit_l",
            filename="sam_vit_l_0b3195.pth",
            url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
            sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
            size_bytes=None,
            description="Segment Anything ViT-L (308M parameters, about 1.2 GB)",
        ),
        Checkpoint(
            name="sam_vit_h",
            family="sam",
            model="vit_h",
            filename="sam_vit_h_4b8939.pth",
            url="https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
            sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
            size_bytes=2_564_550_879,
            description="Segment Anything ViT-H (636M parameters), the PerSAM paper's model",
        ),
        Checkpoint(
            name="sam_mobile",
            family="sam",
            model="mobile",
            filename="mobile_sam.pt",
            url="https://raw.githubusercontent.com/ChaoningZhang/MobileSAM/master/weights/mobile_sam.pt",
            # Not computed here (nothing downloads): the SHA-256 and size several independent public
            # projects pin for this file (e.g. open-edge-platform/geti_v2 issue #989).
            sha256="6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f",
            size_bytes=40_728_226,
            description="MobileSAM (TinyViT-5M encoder, 6.1M parameters, SAM's decoder), for a robot's frame rate",
        ),
        Checkpoint(
            name="clip_vit_b_32",
            family="clip",
            model="ViT-B-32",
            filename="ViT-B-32.pt",
            url=(
                "https://openaipublic.azureedge.net/clip/models/"
                "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
            ),
            sha256="40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
            size_bytes=None,
            description="OpenAI CLIP ViT-B/32 for open-vocabulary labels (open_clip 'openai')",
        ),
    )
}


def default_model_dir() -> Path:
    """Where checkpoints are stored and looked for: ``$PEROVSS_MODEL_DIR`` or ``~/.cache/perovss/models``."""
    env = os.environ.get(MODEL_DIR_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "perovss" / "models"


def checkpoint_for(family: str, model: str) -> Checkpoint | None:
    """The catalogue entry of ``family``/``model`` (e.g. ``sam``/``vit_b``), or None."""
    for ckpt in CHECKPOINTS.values():
        if ckpt.family == family and ckpt.model == model:
            return ckpt
    return None


def find_checkpoint(name: str, directory: str | os.PathLike | None = None) -> Path | None:
    """Path of catalogue checkpoint ``name`` if its file exists in ``directory`` (default dir if None)."""
    ckpt = CHECKPOINTS.get(name)
    if ckpt is None:
        return None
    path = Path(directory).expanduser() if directory else default_model_dir()
    path = path / ckpt.filename
    return path if path.is_file() else None


def sha256_of(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(block)
    return digest.hexdigest()
