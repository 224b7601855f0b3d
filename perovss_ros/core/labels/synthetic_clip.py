"""synthetic-clip: a small open_clip CLIP trained on the project's own sprites. It knows only the synthetic world.

No CLIP weights can be downloaded on the build machines, and random weights label
nothing, so ``perovss models build synthetic-clip`` trains one: a real open_clip
architecture (``model_config``: by default a small ModifiedResNet image tower at 96 px, the
RN50 design at 1/4 of its width with one block per stage; a 4-layer text tower) trained
contrastively on ``synthetic_world`` renders and captions. ``vision_tower: vit`` gives the
earlier ViT (128 px, patch 16), which names hard-scene objects less well after the same steps. It names the
sim's five shapes, eight colours and five patterns, and answers "an object" for
anything else; it means nothing on real images.

The result is cached in the model directory as ``synthetic-clip-<key>.safetensors``
(plus the recipe as JSON), ``key`` a hash of the recipe, so a changed recipe is a
new file and an unchanged one is built once. Training is deterministic from the
recipe's seed on a given machine and thread count (float sums on other hardware
may round differently).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F

from perovss_ros.core.checkpoints import default_model_dir
from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.labels.open_clip_encoder import OpenClipEncoder, load_state_dict
from perovss_ros.core.labels.synthetic_world import caption_for, render_sample, sprite_bank

NAME = "synthetic-clip"
DESCRIPTION = "synthetic-clip: knows only the synthetic world (the sim's sprites), labels nothing real"
FORMAT_VERSION = 3  # bump when training code changes what a recipe produces
VISION_TOWERS = ("resnet", "vit")


@dataclass(frozen=True)
class Recipe:
    """Everything that decides the weights; its hash keys the cache."""

    seed: int = 0
    steps: int = 360
    batch_size: int = 64
    learning_rate: float = 5e-4
    grad_clip: float = 1.0
    weight_decay: float = 0.05
    warmup_steps: int = 20
    # A convolutional tower: on ground-truth masks of hard dev scenes 1000-1011 it named 0.780 of 727
    # object views against the ViT's 0.722 (128 px, width 128, 4 layers) after the same steps (built in
    # 169-181 s on 2 idle cores against the ViT's 155 s).
    vision_tower: str = "resnet"
    image_size: int = 96
    patch_size: int = 16  # vit only
    vision_width: int = 16  # resnet: the stem's width (stages 4x..32x it); vit: the token width
    vision_layers: int = 4  # vit only
    resnet_layers: tuple[int, ...] = (1, 1, 1, 1)  # resnet only: blocks per stage
    text_width: int = 128
    text_layers: int = 4
    heads: int = 4
    embed_dim: int = 128
    context_length: int = 32
    sprite_size: int = 96
    sprite_bank: int = 600
    max_turn: float = 180.0  # degrees either way: the scenes turn objects through a full circle
    hidden_rate: float = 0.15  # share of samples cut by a straight edge (border, occluder)

    def __post_init__(self) -> None:
        if self.vision_tower not in VISION_TOWERS:
            raise ValueError(f"vision_tower must be one of {', '.join(VISION_TOWERS)}, got {self.vision_tower!r}")
        # A recipe read back from JSON has a list here; the key and equality must not depend on that.
        object.__setattr__(self, "resnet_layers", tuple(int(n) for n in self.resnet_layers))

    def key(self) -> str:
        """12 hex digits of SHA-256 over the recipe, the format version and the open_clip version."""
        blob = json.dumps({"recipe": dataclasses.asdict(self), "format": FORMAT_VERSION,
                           "open_clip": open_clip.__version__}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def model_config(self) -> dict:
        """The open_clip ``CLIP`` keyword arguments of this recipe's architecture."""
        if self.vision_tower == "resnet":  # open_clip builds a ModifiedResNet when ``layers`` is a sequence
            vision = {"image_size": self.image_size, "layers": list(self.resnet_layers), "width": self.vision_width}
        else:
            vision = {"image_size": self.image_size, "patch_size": self.patch_size, "width": self.vision_width,
                      "layers": self.vision_layers, "head_width": self.vision_width // self.heads}
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": vision,
            "text_cfg": {"context_length": self.context_length, "vocab_size": 49408, "width": self.text_width,
                         "heads": self.heads, "layers": self.text_layers},
        }


DEFAULT_RECIPE = Recipe()


def build_model(recipe: Recipe) -> open_clip.CLIP:
    """The untrained open_clip ``CLIP`` of ``recipe`` (weights from the recipe's seed)."""
    torch.manual_seed(recipe.seed)
    return open_clip.CLIP(**recipe.model_config())


def tokenizer_for(recipe: Recipe) -> open_clip.tokenizer.SimpleTokenizer:
    """open_clip's bundled BPE tokenizer at the recipe's context length (offline)."""
    return open_clip.tokenizer.SimpleTokenizer(context_length=recipe.context_length)


def weights_path(recipe: Recipe, model_dir: str | os.PathLike | None = None) -> Path:
    """Where ``recipe``'s weights are cached: ``<model dir>/synthetic-clip-<key>.safetensors``."""
    directory = Path(model_dir).expanduser() if model_dir else default_model_dir()
    return directory / f"{NAME}-{recipe.key()}.safetensors"


def _pixels(images: np.ndarray) -> torch.Tensor:
    mean = np.asarray(open_clip.OPENAI_DATASET_MEAN, np.float32)
    std = np.asarray(open_clip.OPENAI_DATASET_STD, np.float32)
    return torch.from_numpy((images.astype(np.float32) / 255.0 - mean) / std).permute(0, 3, 1, 2).contiguous()


def contrastive_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, logit_scale: torch.Tensor,
                     matches: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE with several positives: ``matches[i, j]`` is True when caption i describes image j.

    Captions name only some attributes ("a mug" fits every mug in the batch), so the
    target of each row is uniform over its matches instead of the diagonal alone.
    """
    logits = logit_scale * text_emb @ image_emb.T
    to_images = matches.float() / matches.float().sum(dim=1, keepdim=True)
    to_texts = matches.T.float() / matches.T.float().sum(dim=1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, to_images) + F.cross_entropy(logits.T, to_texts))


def train(recipe: Recipe, progress: Callable[[int, float], None] | None = None) -> open_clip.CLIP:
    """Train ``recipe``'s model from scratch (CPU) and return it in eval mode.

    ``progress(step, loss)`` is called after every step.
    """
    model = build_model(recipe).train()
    tokenizer = tokenizer_for(recipe)
    rng = np.random.default_rng(recipe.seed)
    bank = sprite_bank(rng, recipe.sprite_bank, recipe.sprite_size)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimiser = torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                                   {"params": other, "weight_decay": 0.0}], lr=recipe.learning_rate)

    def lr_at(step: int) -> float:
        if step < recipe.warmup_steps:
            return (step + 1) / recipe.warmup_steps
        done = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * done))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lr_at)
    for step in range(recipe.steps):
        samples = [render_sample(rng, recipe.image_size, bank, max_turn=recipe.max_turn, hidden_rate=recipe.hidden_rate)
                   for _ in range(recipe.batch_size)]
        captions = [caption_for(attrs, rng) for _, attrs in samples]
        matches = torch.tensor([[c.matches(attrs) for _, attrs in samples] for c in captions])
        image_emb = model.encode_image(_pixels(np.stack([img for img, _ in samples])), normalize=True)
        text_emb = model.encode_text(tokenizer([c.text for c in captions]), normalize=True)
        loss = contrastive_loss(image_emb, text_emb, model.logit_scale.exp(), matches)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe.grad_clip)
        optimiser.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0.0, math.log(100.0))
        if progress is not None:
            progress(step, float(loss.detach()))
    return model.eval()


def build(recipe: Recipe = DEFAULT_RECIPE, model_dir: str | os.PathLike | None = None, force: bool = False,
          progress: Callable[[int, float], None] | None = None) -> Path:
    """Train ``recipe`` unless its weights are cached; returns the weights file.

    The file and its ``.json`` recipe are written to temporary names and renamed,
    so the model directory never holds a partial model under the real name.
    """
    from safetensors.torch import save_file

    path = weights_path(recipe, model_dir)
    if path.is_file() and not force:
        return path
    started = time.monotonic()
    model = train(recipe, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"name": NAME, "description": DESCRIPTION, "key": recipe.key(), "recipe": dataclasses.asdict(recipe),
            "format": FORMAT_VERSION, "open_clip": open_clip.__version__,
            "train_seconds": round(time.monotonic() - started, 1)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp_meta = path.with_name(f".{path.stem}.json.{os.getpid()}.part")
    try:
        save_file({k: v.detach().contiguous() for k, v in model.state_dict().items()}, str(tmp),
                  metadata={"recipe_key": recipe.key()})
        tmp_meta.write_text(json.dumps(meta, indent=2) + "\n")
        os.chmod(tmp, 0o644)  # safetensors writes 0600; the model directory may be shared
        os.replace(tmp_meta, path.with_suffix(".json"))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        tmp_meta.unlink(missing_ok=True)
    return path


def synthetic_clip_encoder(recipe: Recipe = DEFAULT_RECIPE, model_dir: str | os.PathLike | None = None,
                           device: str = "cpu", **options: object) -> OpenClipEncoder:
    """The cached synthetic CLIP of ``recipe`` as an OpenClipEncoder; CheckpointError when it is not built."""
    path = weights_path(recipe, model_dir)
    if not path.is_file():
        raise CheckpointError(f"{NAME} is not built ({path} is missing); run `perovss models build {NAME}` "
                              f"(about 3 minutes on 2 CPU cores). It knows only the synthetic world.")
    return load_encoder(path, device, **options)


def load_encoder(path: str | os.PathLike, device: str = "cpu", **options: object) -> OpenClipEncoder:
    """A built synthetic CLIP from its weights file (its recipe is read from the ``.json`` beside it).

    ``options`` go to OpenClipEncoder; regions default to masked crops, which is
    what the model was trained on.
    """
    path = Path(path)
    try:
        recipe = Recipe(**json.loads(path.with_suffix(".json").read_text())["recipe"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path.with_suffix('.json')} does not hold a {NAME} recipe: {exc}; "
                              f"rebuild with `perovss models build {NAME} --force`") from exc
    model = build_model(recipe)
    load_state_dict(model, path)
    options.setdefault("region_mode", "crops")
    return OpenClipEncoder(model, tokenizer_for(recipe), f"{NAME}:{recipe.key()}", device=device,
                           **options)  # type: ignore[arg-type]
