"""Open-vocabulary labels for segments (ROS-free): CLIP text and region embeddings, zero-shot scores.

    from perovss_ros.core.labels import RegionLabeller, build_clip_encoder
    encoder = build_clip_encoder("synthetic-clip")      # or ("ViT-B-16", checkpoint=path)
    labeller = RegionLabeller(encoder, vocabulary=["mug", "ball"])
    labeller.label(rgb, masks)          # rgb H×W×3 uint8 RGB, masks K×H×W bool -> [RegionLabel]
    labeller.infer_category(images, masks)   # the word for a taught concept, or label None

Modules: ``protocols`` (TextEncoder, RegionEncoder), ``prompts`` (templates, the
cached ensemble), ``pooling`` (coverage-weighted mask pooling), ``clearclip``
(dense ViT features), ``open_clip_encoder`` (the open_clip implementation),
``zero_shot`` (scores and the "none of these" rule), ``personal`` (a taught concept's
personal embedding and its fusion with the identity), ``labeller``, ``encoders``
(model name → encoder), ``synthetic_clip`` and ``synthetic_world`` (the CLIP
trained on the sim's sprites).
"""

from __future__ import annotations

from perovss_ros.core.labels.encoders import build_clip_encoder
from perovss_ros.core.labels.labeller import RegionLabeller
from perovss_ros.core.labels.open_clip_encoder import OpenClipEncoder, open_clip_encoder
from perovss_ros.core.labels.protocols import RegionEncoder, TextEncoder
from perovss_ros.core.labels.zero_shot import RegionLabel, ZeroShotClassifier

__all__ = ["OpenClipEncoder", "RegionEncoder", "RegionLabel", "RegionLabeller", "TextEncoder",
           "ZeroShotClassifier", "build_clip_encoder", "open_clip_encoder"]
