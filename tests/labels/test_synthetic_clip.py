"""synthetic-clip: cache key, determinism from the seed, identical reloads (a reduced recipe, seconds)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
from safetensors.numpy import load_file

from perovss_ros.core.errors import CheckpointError
from perovss_ros.core.labels import synthetic_clip
from perovss_ros.core.labels.synthetic_world import caption_for, hide_part, render_sample, sprite_bank

SMALL = synthetic_clip.Recipe(steps=2, batch_size=6, sprite_bank=8, warmup_steps=1, image_size=32, vision_width=8,
                              text_width=32, text_layers=1, heads=2, embed_dim=16, context_length=16, sprite_size=32)


def test_cache_key_follows_the_recipe() -> None:
    key = SMALL.key()
    assert len(key) == 12 and int(key, 16) >= 0
    assert synthetic_clip.Recipe(**dataclasses.asdict(SMALL)).key() == key
    assert dataclasses.replace(SMALL, seed=1).key() != key
    assert dataclasses.replace(SMALL, steps=3).key() != key
    assert synthetic_clip.weights_path(SMALL, "/models").name == f"synthetic-clip-{key}.safetensors"


def test_the_recipe_picks_the_image_tower() -> None:
    from open_clip.modified_resnet import ModifiedResNet
    from open_clip.transformer import VisionTransformer

    assert synthetic_clip.DEFAULT_RECIPE.vision_tower == "resnet"
    resnet = synthetic_clip.build_model(SMALL)
    assert isinstance(resnet.visual, ModifiedResNet)
    # Stages of one block each, the stem 8 wide: the last stage gives 8 × 32 channels.
    assert [len(stage) for stage in (resnet.visual.layer1, resnet.visual.layer2, resnet.visual.layer3,
                                     resnet.visual.layer4)] == [1, 1, 1, 1]
    assert resnet.visual.attnpool.c_proj.in_features == 8 * 32
    vit = synthetic_clip.build_model(dataclasses.replace(SMALL, vision_tower="vit", patch_size=8, vision_width=32,
                                                         vision_layers=1))
    assert isinstance(vit.visual, VisionTransformer) and vit.visual.patch_size == (8, 8)
    # As read back from the recipe's JSON (a list), the key is the same.
    assert synthetic_clip.Recipe(**{**dataclasses.asdict(SMALL), "resnet_layers": [1, 1, 1, 1]}).key() == SMALL.key()
    with pytest.raises(ValueError, match="vision_tower"):
        synthetic_clip.Recipe(vision_tower="convnext")


def test_renders_are_deterministic_from_the_seed() -> None:
    def draw(seed: int) -> tuple[np.ndarray, list[str]]:
        rng = np.random.default_rng(seed)
        bank = sprite_bank(rng, 4, 32)
        samples = [render_sample(rng, 32, bank) for _ in range(5)]
        return np.stack([img for img, _ in samples]), [caption_for(a, rng).text for _, a in samples]

    first, second, other = draw(3), draw(3), draw(4)
    np.testing.assert_array_equal(first[0], second[0])
    assert first[1] == second[1]
    assert not np.array_equal(first[0], other[0])


def test_a_hidden_part_is_a_straight_cut_of_the_object() -> None:
    mask = np.zeros((60, 80), bool)
    mask[10:50, 20:60] = True
    for seed in range(5):
        part = hide_part(np.random.default_rng(seed), mask)
        share = part.sum() / mask.sum()
        assert not (part & ~mask).any() and 0.5 <= share <= 0.95
        # A straight cut of a convex region leaves a convex region.
        hull = cv2.convexHull(np.argwhere(part)[:, ::-1].astype(np.int32))
        assert cv2.contourArea(hull) <= part.sum() * 1.05


def test_a_build_is_identical_from_its_seed_and_reloads_identically(tmp_path) -> None:
    steps: list[int] = []
    path_a = synthetic_clip.build(SMALL, tmp_path / "a", progress=lambda step, loss: steps.append(step))
    path_b = synthetic_clip.build(SMALL, tmp_path / "b")
    assert steps == [0, 1]
    assert path_a.name == path_b.name == f"synthetic-clip-{SMALL.key()}.safetensors"
    weights_a, weights_b = load_file(str(path_a)), load_file(str(path_b))
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        np.testing.assert_array_equal(weights_a[name], weights_b[name], err_msg=name)

    # Cached: a second build does not train.
    synthetic_clip.build(SMALL, tmp_path / "a", progress=lambda step, loss: steps.append(step))
    assert steps == [0, 1]

    trained = synthetic_clip.train(SMALL)
    encoder = synthetic_clip.synthetic_clip_encoder(SMALL, tmp_path / "a")
    assert encoder.model_id == f"synthetic-clip:{SMALL.key()}"
    assert encoder.region_mode == "crops"
    texts = ["a photo of a mug.", "a photo of an object."]
    import torch

    with torch.no_grad():
        expected = trained.encode_text(encoder.tokenizer(texts), normalize=True).numpy()
    np.testing.assert_allclose(encoder.encode_text(texts), expected, atol=1e-6)
    rgb = np.random.default_rng(0).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    mask = np.zeros((40, 48), bool)
    mask[5:30, 10:40] = True
    again = synthetic_clip.load_encoder(path_b)
    np.testing.assert_array_equal(encoder.encode_regions(rgb, [mask]), again.encode_regions(rgb, [mask]))


def test_missing_model_says_how_to_build_it(tmp_path) -> None:
    with pytest.raises(CheckpointError, match="perovss models build synthetic-clip"):
        synthetic_clip.synthetic_clip_encoder(SMALL, tmp_path)


def test_models_build_finds_a_cached_recipe(tmp_path, capsys) -> None:
    from perovss_ros import cli

    synthetic_clip.weights_path(synthetic_clip.DEFAULT_RECIPE, tmp_path).touch()
    assert cli.main(["models", "build", "synthetic-clip", "--dir", str(tmp_path)]) == 0
    assert "cached" in capsys.readouterr().out
