"""The personal embedding fused with the identity: a look-alike keeps its generic label, mine is renamed.

Two layers: ``PersonalEmbedding`` on hand-made embeddings (numbers worked out in the comments), and
the SceneLabeller/finish_frame step on hand-made frames with the classic backend's real proposals
and HueClip, a stand-in CLIP that sees "square" in anything strongly coloured and also tells red
from blue (so a red square's embedding differs from a blue one's, as a real CLIP's would).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from perovss_ros.core import Pipeline, PipelineConfig
from perovss_ros.core.labelling import PersonalCheck, finish_frame
from perovss_ros.core.labels import RegionLabeller
from perovss_ros.core.labels.personal import PersonalEmbedding, fused_evidence, keep_personal
from perovss_ros.core.labels.prompts import NULL_TEXTS
from perovss_ros.core.registry import build_backend
from perovss_ros.core.scene_segments import GENERIC_ID_MIN
from perovss_ros.core.types import Segment
from tests.core.images import BLUE, RED, background, iou, put_square


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_personal_embedding_prefers_the_concept_over_its_category_and_lookalikes() -> None:
    text = unit(1, 0, 0, 0)  # "mug"
    mine = unit(1, 1, 0, 0)  # my mug: a mug that is red
    other = unit(1, 0, 1, 0)  # another mug: blue
    pe = PersonalEmbedding.build("mug", text, np.stack([mine, mine]), other[None], logit_scale=100.0)
    # embedding = normalise(text + mine) = (1.707, 0.707, 0, 0) / 1.848: cos to mine (1.207 + 0.5) / 1.848
    # = 0.924 > its cos to the text 0.707; cos of the blue mug to it 1.207 / 1.848 = 0.653.
    assert float(pe.embedding @ mine) == pytest.approx(0.9239, abs=1e-4)
    assert float(pe.embedding @ other) == pytest.approx(0.6533, abs=1e-4)
    p_mine, p_other = pe.probability(np.stack([mine, other]))
    assert p_mine > 0.99  # 100 · (0.924 − 0.707) = 21.7 logits for mine
    assert p_other < 0.01  # the negative itself: 100 · (0.653 − 1.0) logits
    # Without negatives the blue mug still loses to the plain word: cos 0.653 against 0.707.
    bare = PersonalEmbedding.build("mug", text, mine[None], np.zeros((0, 4), np.float32), 100.0)
    assert bare.probability(other[None])[0] < 0.01


def test_fusion_lets_a_clear_identity_overrule_a_doubtful_clip_and_not_the_reverse() -> None:
    assert fused_evidence(0.5, 0.0) == 0.0  # both at their boundary
    assert keep_personal(0.3, 0.8)  # 0.5·0.8 + 0.5·(−0.4) = 0.2
    assert not keep_personal(0.3, 0.1)  # 0.05 − 0.2
    assert not keep_personal(0.01, 0.9)  # 0.45 − 0.49: a CLIP nearly sure overrules
    assert keep_personal(0.6, None)  # no identity: the CLIP alone
    assert not keep_personal(0.4, None)


class HueClip:
    """Region ``[s, s·red, s·blue, 1 − s, 0]`` normalised (``s``: 75th percentile saturation, ``red``/``blue``:
    shares of saturated pixels of that hue); texts with ``square`` → e0, null texts → e3, others → e4."""

    model_id = "hue-clip"
    embed_dim = 5
    logit_scale = 100.0

    def encode_text(self, texts: list[str]) -> np.ndarray:
        rows = []
        for t in texts:
            k = 0 if "square" in t else 3 if t in NULL_TEXTS else 4
            rows.append(np.eye(5, dtype=np.float32)[k])
        return np.asarray(rows, np.float32).reshape(len(texts), 5)

    def encode_regions(self, rgb: np.ndarray, masks) -> np.ndarray:
        hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).astype(np.float32)
        rows = []
        for mask in masks:
            m = np.asarray(mask, bool)
            s = float(np.percentile(hsv[..., 1][m], 75)) / 255.0
            vivid = m & (hsv[..., 1] > 100)
            hue = hsv[..., 0][vivid]  # OpenCV hue 0..180: red near 0/180, blue near 120
            red = float(np.mean((hue < 15) | (hue > 165))) if hue.size else 0.0
            blue = float(np.mean((hue > 100) & (hue < 140))) if hue.size else 0.0
            rows.append(unit(s, s * red, s * blue, 1.0 - s, 0.0))
        return np.asarray(rows, np.float32).reshape(len(rows), 5)


def _pipeline(personal_fusion: bool = True) -> Pipeline:
    cfg = PipelineConfig(backend="classic", concept_store=None, labels=True, vocabulary=["square"],
                         personal_fusion=personal_fusion)
    name, encoder, decoder = build_backend(cfg)
    return Pipeline(cfg, encoder, decoder, name, labeller=RegionLabeller(HueClip(), vocabulary=["square"]))


def _frame(red_at: tuple[int, int], blue_at: tuple[int, int], seed: int):
    img, red = put_square(background(seed=seed), *red_at, 32, RED)
    img, blue = put_square(img, *blue_at, 32, BLUE)
    return img, red, blue


def test_a_lookalike_keeps_its_generic_label_while_the_personal_one_is_named() -> None:
    pipe = _pipeline()
    shots = [_frame((20, 30), (100, 70), 10), _frame((90, 20), (20, 70), 11), _frame((50, 60), (110, 10), 12)]
    taught = pipe.teach("my_red", [s[0] for s in shots], masks=[s[1] for s in shots], category="square")
    concept_id = taught.concept.instance_id
    embedding = pipe.scene._personal["my_red"]
    assert len(embedding.negatives) >= 1  # the blue squares of the teach frames, named "square"
    img, red, blue = _frame((30, 40), (100, 60), 3)
    features = pipe.encoder.encode(img)
    outcomes = {}
    for name, mask in (("red", red), ("blue", blue)):
        # The identity chose ``mask`` for my_red, barely passing (margin 0.1): the CLIP has the last word.
        pipe.scene.reset()
        owned = np.zeros(img.shape[:2], np.uint16)
        owned[mask] = concept_id
        segment = Segment(label="my_red", instance_id=concept_id, score=0.9, box_xyxy=(0.0, 0.0, 1.0, 1.0),
                          personal=True)
        segments, demoted = finish_frame(pipe.scene, {"my_red": "square"}, pipe.decoder, features, img, owned,
                                         [segment], {}, {"my_red": 0.1})
        outcomes[name] = (segments, demoted, owned)
    segments, demoted, owned = outcomes["red"]
    assert demoted == [] and [(s.label, s.category, s.personal) for s in segments if s.personal] == [
        ("my_red", "square", True)]
    assert iou(owned == concept_id, red) == 1.0
    segments, demoted, owned = outcomes["blue"]
    assert demoted == ["my_red"] and not any(s.personal for s in segments)
    on_blue = [s for s in segments if iou(owned == s.instance_id, blue) >= 0.9]
    assert [(s.label, s.category, s.personal) for s in on_blue] == [("square", "square", False)]
    assert on_blue[0].instance_id >= GENERIC_ID_MIN and not (owned == concept_id).any()


def test_a_clear_identity_keeps_the_segment_and_forget_drops_the_embedding() -> None:
    pipe = _pipeline()
    shots = [_frame((20, 30), (100, 70), 10), _frame((90, 20), (20, 70), 11)]
    taught = pipe.teach("my_red", [s[0] for s in shots], masks=[s[1] for s in shots], category="square")
    img, _, blue = _frame((30, 40), (100, 60), 3)
    owned = np.zeros(img.shape[:2], np.uint16)
    owned[blue] = taught.concept.instance_id
    check = PersonalCheck("my_red", taught.concept.instance_id, blue, margin=1.0)
    _, demoted = pipe.scene.step(pipe.decoder, pipe.encoder.encode(img), img, owned, [check])
    assert demoted == []  # margin 1 (a perfect region match): 0.5 + 0.5·(2p − 1) ≥ 0 for any p
    pipe.forget("my_red")
    assert not pipe.scene.has_personal("my_red")


def test_without_personal_fusion_no_embedding_is_built_and_nothing_is_demoted() -> None:
    pipe = _pipeline(personal_fusion=False)
    img, red, blue = _frame((20, 30), (100, 70), 10)
    taught = pipe.teach("my_red", [img], masks=[red], category="square")
    assert not pipe.scene.has_personal("my_red")
    owned = np.zeros(img.shape[:2], np.uint16)
    owned[blue] = taught.concept.instance_id
    segment = Segment(label="my_red", instance_id=taught.concept.instance_id, score=0.9,
                      box_xyxy=(0.0, 0.0, 1.0, 1.0), personal=True)
    segments, demoted = finish_frame(pipe.scene, {"my_red": "square"}, pipe.decoder, pipe.encoder.encode(img), img,
                                     owned, [segment], {}, {"my_red": 0.0})
    assert demoted == [] and [s.label for s in segments if s.personal] == ["my_red"]
