"""Tensor names of the exported SAM graphs: the contract between the exporter and every loader.

The exporter (:mod:`perovss_ros.core.sam.export`), the in-memory graphs of the
``onnxruntime`` runtime and the engine loaders (:mod:`perovss_ros.core.sam.engines`)
all bind tensors by these names; nothing else spells them.

Image encoder graph (one per model, fixed input size ``S`` = the model's ``img_size``)
  ``image``              ``1×3×S×S`` float32, normalised and zero-padded (``Sam.preprocess``)
  ``image_embeddings``   ``1×256×S/16×S/16`` float32

Decoder graph (the same names as segment_anything's and nanosam's exports)
  inputs
    ``image_embeddings``  ``1×256×h×w`` float32 (the encoder output)
    ``point_coords``      ``B×N×2`` float32, points in the *model input* frame
                          (after ``ResizeLongestSide``), box corners as two points
    ``point_labels``      ``B×N`` float32: 1 positive, 0 negative, 2 box top-left,
                          3 box bottom-right, -1 padding
    ``mask_input``        ``B×1×4h×4w`` float32 low-res logits (zeros when unused)
    ``has_mask_input``    ``B`` float32, 1 where ``mask_input`` is used
  outputs
    ``iou_predictions``   ``B×4`` float32 (mask token 0 = single mask, 1..3 multimask)
    ``low_res_masks``     ``B×4×4h×4w`` float32 logits
  ``B`` (prompt sets) and ``N`` (points per set) are dynamic axes.

  The *guided* variant (perovss's own runtime) adds PerSAM's guidance inputs
  ``attention_bias`` ``B×h·w``, ``bias_on`` ``B`` (1 where the bias applies) and
  ``target_embedding`` ``B×256`` (zeros = none); with ``bias_on`` 0 and a zero
  target a row decodes exactly as unguided SAM.
"""

from __future__ import annotations

ENCODER_INPUT = "image"
ENCODER_OUTPUT = "image_embeddings"

INPUT_NAMES = ("image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input")
OUTPUT_NAMES = ("iou_predictions", "low_res_masks")
GUIDANCE_INPUT_NAMES = ("attention_bias", "bias_on", "target_embedding")
DYNAMIC_AXES = {
    "attention_bias": {0: "num_sets"},
    "bias_on": {0: "num_sets"},
    "target_embedding": {0: "num_sets"},
    "point_coords": {0: "num_sets", 1: "num_points"},
    "point_labels": {0: "num_sets", 1: "num_points"},
    "mask_input": {0: "num_sets"},
    "has_mask_input": {0: "num_sets"},
    "iou_predictions": {0: "num_sets"},
    "low_res_masks": {0: "num_sets"},
}
"""Dynamic axes of the decoder graph (prompt sets, points per set)."""


def input_names(guided: bool) -> tuple[str, ...]:
    """The decoder graph's input names, in order (with PerSAM's guidance inputs when ``guided``)."""
    return INPUT_NAMES + GUIDANCE_INPUT_NAMES if guided else INPUT_NAMES
