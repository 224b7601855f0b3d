"""The tiny SAM backend: vanilla equivalence, batching, guidance, determinism and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from segment_anything import SamPredictor

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.protocols import ImageEncoder, MaskDecoder
from perovss_ros.core.sam import build_sam_backend, build_sam_model, sam_checkpoint_available
from perovss_ros.core.sam.registry import build_tiny_sam
from perovss_ros.core.types import Guidance, Prompts


@pytest.fixture(scope="module")
def backend():
    return build_sam_backend({"model": "tiny", "seed": 0, "device": "cpu"})


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 160×120 RGB image with a bright disc on a noisy background."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 80, (120, 160, 3), dtype=np.uint8)
    yy, xx = np.mgrid[:120, :160]
    rgb[(yy - 60) ** 2 + (xx - 90) ** 2 < 25**2] = (220, 40, 30)
    return rgb


@pytest.fixture(scope="module")
def vanilla(image):
    """segment_anything's own predictor on the unmodified tiny Sam (same seed)."""
    predictor = SamPredictor(build_sam_model("tiny", 0))
    predictor.set_image(image)
    return predictor


def test_protocols_and_model_id(backend, image) -> None:
    encoder, decoder = backend
    assert isinstance(encoder, ImageEncoder) and isinstance(decoder, MaskDecoder)
    assert encoder.model_id == "sam-tiny-seed0" and decoder.supports_guidance
    feats = encoder.encode(image)
    assert tuple(feats.grid.shape) == (256, 32, 32) and feats.grid.dtype == torch.float32
    assert feats.image_hw == (120, 160) and feats.stride == 16.0
    assert feats.scale == pytest.approx(512 / 160)
    assert feats.valid_hw == (24, 32)  # 120·3.2 = 384 px of 512 -> 24 of 32 rows hold the image


CASES = {
    "points_multimask": dict(points=[[90, 60], [10, 10]], labels=[1, 0], box=None, multimask=True),
    "points_box_single": dict(points=[[90, 60]], labels=[1], box=[60, 30, 120, 90], multimask=False),
    "box_only": dict(points=None, labels=None, box=[60, 30, 120, 90], multimask=True),
}


@pytest.mark.parametrize("case", list(CASES))
def test_unguided_decode_equals_vanilla_sam(backend, image, vanilla, case) -> None:
    encoder, decoder = backend
    spec = CASES[case]
    points = None if spec["points"] is None else np.array(spec["points"], np.float32)
    labels = None if spec["labels"] is None else np.array(spec["labels"])
    box = None if spec["box"] is None else np.array(spec["box"], np.float32)
    masks, scores, logits = vanilla.predict(points, labels, box, multimask_output=spec["multimask"])
    out = decoder.decode(encoder.encode(image), image,
                         [Prompts(points, labels, None if box is None else tuple(box), None, spec["multimask"])])
    assert np.array_equal(out.logits[0].numpy(), logits)
    assert np.array_equal(out.scores[0], scores)
    assert np.array_equal(out.masks[0], masks) and out.masks.dtype == bool
    # Feeding the low-res logits back as mask input also matches (the refinement step).
    masks2, _, logits2 = vanilla.predict(points, labels, box, mask_input=logits[:1], multimask_output=True)
    out2 = decoder.decode(encoder.encode(image), image,
                          [Prompts(points, labels, None if box is None else tuple(box), out.logits[0, :1], True)])
    assert np.array_equal(out2.logits[0].numpy(), logits2) and np.array_equal(out2.masks[0], masks2)


def _mixed_prompt_sets(low_res: torch.Tensor) -> tuple[list[Prompts], list[Guidance | None]]:
    gen = torch.Generator().manual_seed(5)
    prompts = [
        Prompts(np.array([[90, 60], [5, 5]], np.float32), np.array([1, 0]), multimask=True),
        Prompts(np.array([[80, 50], [150, 110]], np.float32), np.array([1, 0]), box=(60, 30, 120, 90),
                multimask=True),
        Prompts(np.array([[90, 60], [70, 60], [5, 100]], np.float32), np.array([1, 1, 0]), multimask=True),
        Prompts(np.array([[100, 70], [5, 5]], np.float32), np.array([1, 0]), mask_logits=low_res,
                multimask=True),
        Prompts(np.array([[30, 30], [5, 5]], np.float32), np.array([1, 0]), multimask=True),
    ]
    guidance = [
        Guidance(torch.rand(32, 32, generator=gen), torch.randn(256, generator=gen)),
        None,
        Guidance(attention_bias=torch.rand(32, 32, generator=gen)),
        Guidance(target_embedding=torch.randn(256, generator=gen)),
        None,
    ]
    return prompts, guidance


def test_batched_decode_equals_per_set_decode(backend, image) -> None:
    encoder, decoder = backend
    feats = encoder.encode(image)
    first = decoder.decode(feats, image, [Prompts(np.array([[90, 60]], np.float32), np.array([1]))])
    prompts, guidance = _mixed_prompt_sets(first.logits[0])
    batched = decoder.decode(feats, image, prompts, guidance)
    assert batched.masks.shape == (5, 3, 120, 160) and batched.scores.shape == (5, 3)
    for i, (prompt, guide) in enumerate(zip(prompts, guidance, strict=True)):
        alone = decoder.decode(feats, image, [prompt], [guide])
        torch.testing.assert_close(batched.logits[i], alone.logits[0], atol=1e-4, rtol=1e-4)
        np.testing.assert_allclose(batched.scores[i], alone.scores[0], atol=1e-5)
        assert (batched.masks[i] == alone.masks[0]).mean() > 0.999


def test_guidance_changes_the_decode_and_is_per_set(backend, image) -> None:
    encoder, decoder = backend
    feats = encoder.encode(image)
    prompt = Prompts(np.array([[90, 60], [5, 5]], np.float32), np.array([1, 0]))
    gen = torch.Generator().manual_seed(6)
    guide = Guidance(torch.rand(32, 32, generator=gen), torch.randn(256, generator=gen))
    plain = decoder.decode(feats, image, [prompt])
    guided = decoder.decode(feats, image, [prompt, prompt], [guide, None])
    assert not torch.allclose(guided.logits[0], plain.logits[0])
    # An unguided set in a guided batch is untouched (up to batched-matmul rounding).
    torch.testing.assert_close(guided.logits[1], plain.logits[0], atol=1e-5, rtol=1e-5)


def test_guided_decoder_keeps_upstream_parameter_names(backend) -> None:
    encoder, _ = backend
    assert set(encoder.sam.state_dict()) == set(build_tiny_sam().state_dict())


def test_tiny_weights_are_deterministic_per_seed() -> None:
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = build_sam_model("tiny", seed=7).state_dict()
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG was not consumed
    b = build_sam_model("tiny", seed=7).state_dict()
    c = build_sam_model("tiny", seed=8).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_bad_inputs_raise_clear_errors(backend, image) -> None:
    encoder, decoder = backend
    with pytest.raises(InvalidInputError, match="uint8"):
        encoder.encode(image.astype(np.float32))
    with pytest.raises(InvalidInputError, match="H×W×3"):
        encoder.encode(image[..., 0])
    with pytest.raises(InvalidInputError, match="empty"):
        encoder.encode(np.zeros((0, 5, 3), np.uint8))
    feats = encoder.encode(image)
    point = np.array([[10, 10]], np.float32)
    with pytest.raises(InvalidInputError, match="labels"):
        decoder.decode(feats, image, [Prompts(point, np.array([1, 0]))])
    with pytest.raises(InvalidInputError, match="attention_bias"):
        decoder.decode(feats, image, [Prompts(point, np.array([1]))], [Guidance(torch.rand(16, 16))])
    with pytest.raises(InvalidInputError, match="multimask"):
        decoder.decode(feats, image, [Prompts(point, np.array([1]), multimask=True),
                                      Prompts(point, np.array([1]))])
    with pytest.raises(InvalidInputError, match="mask_logits"):
        decoder.decode(feats, image, [Prompts(point, np.array([1]), mask_logits=torch.zeros(1, 64, 64))])
    with pytest.raises(InvalidInputError, match="unknown SAM model"):
        build_sam_backend({"model": "vit_z"})
    assert sam_checkpoint_available({"model": "tiny"}) is False


def test_onnxruntime_decoder_matches_torch_decoder(backend, image) -> None:
    encoder, decoder = backend
    _, ort_decoder = build_sam_backend({"model": "tiny", "seed": 0, "runtime": "onnxruntime"})
    assert ort_decoder.runtime == "onnxruntime"
    feats = encoder.encode(image)
    first = decoder.decode(feats, image, [Prompts(np.array([[90, 60]], np.float32), np.array([1]))])
    prompts, guidance = _mixed_prompt_sets(first.logits[0])
    prompts.append(Prompts(None, None, box=(10, 10, 50, 50), multimask=True))  # box only
    guidance.append(None)
    want = decoder.decode(feats, image, prompts, guidance)
    got = ort_decoder.decode(feats, image, prompts, guidance)
    torch.testing.assert_close(got.logits, want.logits, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
    assert (got.masks == want.masks).mean() > 0.999
    with pytest.raises(InvalidInputError, match="runtime"):
        build_sam_backend({"model": "tiny", "runtime": "tensorflow"})
