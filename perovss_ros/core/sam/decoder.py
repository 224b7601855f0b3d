"""SAM mask decoder behind the ``MaskDecoder`` protocol, batched over prompt sets, with PerSAM guidance.

Prompt sets are decoded together when they produce the same number of prompt
tokens (points, SAM's padding point when there is no box, box corners): in the
usual case (every concept prompted alike) that is one decoder call for all K
sets. Sets of another shape go in a second call instead of being padded, so a
batched decode gives the same masks as decoding each set alone.

Runtime ``torch`` runs segment_anything's modules (with PerSAM guidance by
subclassing); ``onnxruntime`` runs the same decoder exported in memory as one
guided graph (:mod:`perovss_ros.core.sam.decoder_graph`), equal to ~1e-6;
``tensorrt`` runs that graph as an engine (``TensorRtDecoder``, given by the backend).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.transforms import ResizeLongestSide
from torch import Tensor

from perovss_ros.core.errors import InvalidInputError
from perovss_ros.core.sam.decoder_graph import export_decoder_onnx
from perovss_ros.core.sam.encoder import EMBEDDING_KEY, INPUT_HW_KEY
from perovss_ros.core.sam.engines import OnnxRuntimeDecoder, onnxruntime_providers
from perovss_ros.core.sam.guided import GuidedMaskDecoder
from perovss_ros.core.types import DecodeOutput, Features, Guidance, Prompts

RUNTIMES = ("torch", "onnxruntime", "tensorrt")
"""Where the decoder runs: PyTorch modules, the exported guided graph in ONNX Runtime, or its TensorRT engine."""


def _as_float_tensor(value: object, what: str, device: torch.device) -> Tensor:
    """``value`` (tensor, array, numbers) as float32 on ``device``; InvalidInputError if not numeric."""
    if isinstance(value, Tensor):
        return value.detach().to(device=device, dtype=torch.float32)
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{what} must be numeric, got {type(value).__name__}: {exc}") from None
    return torch.from_numpy(array).to(device)


@dataclass
class _PromptInputs:
    """One validated prompt set in the model's input frame.

    ``coords`` ``1×n×2`` or None, ``labels`` ``1×n``, ``box`` ``1×4`` or None,
    ``mask`` ``1×1×4h×4w`` low-res logits or None.
    """

    coords: Tensor | None
    labels: Tensor
    box: Tensor | None
    mask: Tensor | None

    @property
    def num_tokens(self) -> int:
        """Prompt tokens SAM makes of it: points, a padding point when there is no box, two box corners."""
        points = 0 if self.coords is None else int(self.coords.shape[1])
        if self.box is None:
            return points + 1 if points else 0
        return points + 2

    def graph_points(self) -> tuple[np.ndarray, np.ndarray]:
        """``num_tokens×2`` coordinates and labels for the decoder graph (box corners as labels 2 and 3)."""
        coords = [] if self.coords is None else [self.coords[0].cpu().numpy()]
        labels = [] if self.coords is None else [self.labels[0].cpu().numpy().astype(np.float32)]
        if self.box is None and self.coords is not None:
            coords.append(np.zeros((1, 2), np.float32))
            labels.append(np.array([-1.0], np.float32))
        if self.box is not None:
            coords.append(self.box.reshape(2, 2).cpu().numpy())
            labels.append(np.array([2.0, 3.0], np.float32))
        return (np.concatenate(coords).astype(np.float32).reshape(-1, 2),
                np.concatenate(labels).astype(np.float32).reshape(-1))


class DecoderGraphRunner(Protocol):
    """An exported guided-decoder runner (``OnnxRuntimeDecoder``, ``TensorRtDecoder``)."""

    def run_tensors(self, feed: dict[str, Tensor]) -> dict[str, Tensor]:
        """Tensors named by ``graph_names.input_names(True)`` → ``iou_predictions``, ``low_res_masks``."""


class SamMaskDecoder:
    """Decodes K prompt sets against one image's SAM embedding in batched decoder calls."""

    supports_guidance = True

    def __init__(self, sam: Sam, runtime: str = "torch", threads: int = 0, graph: DecoderGraphRunner | None = None
                 ) -> None:
        """``graph``: the engine for runtime ``tensorrt`` (required there; ignored otherwise)."""
        if not isinstance(sam.mask_decoder, GuidedMaskDecoder):
            raise TypeError("SamMaskDecoder needs a Sam whose mask_decoder is a GuidedMaskDecoder")
        if runtime not in RUNTIMES:
            raise InvalidInputError(f"decoder runtime {runtime!r} unknown; use one of: {', '.join(RUNTIMES)}")
        self.sam = sam
        self.runtime = runtime
        self._graph: DecoderGraphRunner | None = None
        if runtime == "onnxruntime":
            providers = onnxruntime_providers(sam.device)
            if providers is None:
                raise InvalidInputError(f"onnxruntime has no provider for device {sam.device.type!r} here; "
                                        "install onnxruntime-gpu or set device: cpu")
            # Exported in memory from these very weights (a second or two), so it can never be stale.
            buffer = io.BytesIO()
            export_decoder_onnx(sam, buffer, guided=True)
            self._graph = OnnxRuntimeDecoder(buffer.getvalue(), providers=providers, guided=True, threads=threads)
        elif runtime == "tensorrt":
            if graph is None:
                raise InvalidInputError("runtime 'tensorrt' needs the decoder engine (build_sam_backend loads it)")
            self._graph = graph
        self.img_size = int(sam.image_encoder.img_size)
        self.transform = ResizeLongestSide(self.img_size)
        self.grid_hw = tuple(int(v) for v in sam.prompt_encoder.image_embedding_size)
        self.mask_input_hw = tuple(int(v) for v in sam.prompt_encoder.mask_input_size)
        self.embed_dim = int(sam.prompt_encoder.embed_dim)

    @property
    def device(self) -> torch.device:
        """Device the model runs on."""
        return self.sam.device

    def decode_tensors(self, image_embedding: Tensor, sparse: Tensor, dense: Tensor, multimask: bool,
                       bias: Tensor | None = None, bias_on: Tensor | None = None,
                       target_embedding: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Tensor layer: one decoder call for B prompt sets of equal token count.

        ``image_embedding`` ``1×C×h×w``; ``sparse`` ``B×T×C`` and ``dense``
        ``B×C×h×w`` (or ``1×C×h×w`` shared by all sets) prompt embeddings (segment_anything ``PromptEncoder``);
        ``bias`` ``B×h·w`` attention bias with ``bias_on`` ``B`` bool (None = all
        rows), ``target_embedding`` ``B×C``. Returns low-res logits ``B×M×4h×4w``
        and predicted IoU ``B×M`` (M = 3 if ``multimask`` else 1).
        """
        with torch.inference_mode():
            return self.sam.mask_decoder(
                image_embeddings=image_embedding,
                image_pe=self.sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multimask,
                bias=bias,
                bias_on=bias_on,
                target_embedding=target_embedding,
            )

    def prompt_inputs(self, prompts: Prompts, image_hw: tuple[int, int]) -> _PromptInputs:
        """Validate one prompt set (image pixels) and map it to the model's input frame."""
        device = self.device
        points = None
        if prompts.points is not None:
            points = _as_float_tensor(prompts.points, "prompt points", device)
            if points.numel() == 0:
                points = None
            elif points.ndim != 2 or points.shape[1] != 2:
                raise InvalidInputError(f"prompt points must be N×2 (x, y), got {tuple(points.shape)}")
            elif not torch.isfinite(points).all():
                raise InvalidInputError("prompt points must be finite")
        labels = np.asarray(prompts.labels if prompts.labels is not None else [], dtype=np.int64).reshape(-1)
        n_points = 0 if points is None else points.shape[0]
        if labels.shape[0] != n_points:
            raise InvalidInputError(f"prompt has {n_points} points but {labels.shape[0]} labels")
        if not np.isin(labels, (-1, 0, 1)).all():
            raise InvalidInputError(
                f"point labels must be 1 (positive), 0 (negative) or -1, got {labels.tolist()}"
            )
        box = None
        if prompts.box is not None:
            box = _as_float_tensor(prompts.box, "prompt box", device).reshape(-1)
            if box.shape[0] != 4 or not torch.isfinite(box).all():
                raise InvalidInputError(f"prompt box must be 4 finite numbers XYXY, got {prompts.box!r}")
            box = self.transform.apply_boxes_torch(box[None], image_hw)
        mask = None
        if prompts.mask_logits is not None:
            mask = _as_float_tensor(prompts.mask_logits, "prompt mask_logits", device)
            if tuple(mask.shape[-2:]) != self.mask_input_hw or mask.numel() != np.prod(self.mask_input_hw):
                raise InvalidInputError(
                    f"mask_logits must be 1×{self.mask_input_hw[0]}×{self.mask_input_hw[1]} "
                    f"(this model's low-res logits), got {tuple(mask.shape)}"
                )
            mask = mask.reshape(1, 1, *self.mask_input_hw)
        coords = None if points is None else self.transform.apply_coords_torch(points, image_hw)[None]
        return _PromptInputs(coords, torch.as_tensor(labels, device=device)[None], box, mask)

    def embed_prompts(self, prompts: Prompts, image_hw: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """Sparse ``1×T×C`` and dense ``1×C×h×w`` embeddings of one prompt set given in image pixels."""
        return self._embed(self.prompt_inputs(prompts, image_hw))

    def _embed(self, inputs: _PromptInputs) -> tuple[Tensor, Tensor]:
        points = None if inputs.coords is None else (inputs.coords, inputs.labels)
        with torch.inference_mode():
            return self.sam.prompt_encoder(points=points, boxes=inputs.box, masks=inputs.mask)

    def _guidance_tensors(self, guidance: list[Guidance | None], rows: list[int]
                          ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """Stack the guidance of ``rows`` into (bias ``G×h·w``, bias_on ``G``, target ``G×C``) or Nones."""
        biases = [guidance[i].attention_bias if guidance[i] is not None else None for i in rows]
        targets = [guidance[i].target_embedding if guidance[i] is not None else None for i in rows]
        bias = bias_on = target = None
        if any(b is not None for b in biases):
            bias = torch.zeros(len(rows), self.grid_hw[0] * self.grid_hw[1], device=self.device)
            for j, b in enumerate(biases):
                if b is not None:
                    b = _as_float_tensor(b, "attention_bias", self.device)
                    if tuple(b.shape) != self.grid_hw:
                        raise InvalidInputError(
                            f"attention_bias must be {self.grid_hw[0]}×{self.grid_hw[1]} (the feature grid), "
                            f"got {tuple(b.shape)}"
                        )
                    bias[j] = b.reshape(-1)
            present = [b is not None for b in biases]
            bias_on = None if all(present) else torch.tensor(present, device=self.device)
        if any(t is not None for t in targets):
            # Zero rows leave the sets without a target exactly unguided (x + 0 == x).
            target = torch.zeros(len(rows), self.embed_dim, device=self.device)
            for j, t in enumerate(targets):
                if t is not None:
                    t = _as_float_tensor(t, "target_embedding", self.device).reshape(-1)
                    if t.shape[0] != self.embed_dim:
                        raise InvalidInputError(
                            f"target_embedding must have {self.embed_dim} values, got {t.shape[0]}"
                        )
                    target[j] = t
        return bias, bias_on, target

    def decode(self, features: Features, rgb: np.ndarray, prompts: list[Prompts],
               guidance: list[Guidance | None] | None = None) -> DecodeOutput:
        """Numpy layer: decode K prompt sets (image pixels) against ``features`` from ``SamImageEncoder``.

        All sets must agree on ``multimask``. Returns masks ``K×M×H×W`` bool at
        image size, scores ``K×M`` float32 (predicted IoU) and low-res logits
        ``K×M×4h×4w`` (feed one back as ``Prompts.mask_logits``). ``rgb`` is unused.
        """
        logits, scores = self.decode_logits(features, prompts, guidance)
        return self._output(logits, scores.float().cpu().numpy(), features)

    def decode_best(self, features: Features, rgb: np.ndarray, prompts: list[Prompts],
                    guidance: list[Guidance | None] | None = None) -> DecodeOutput:
        """``decode``, keeping per set only the mask with the highest score (the cascade's choice).

        Returns masks ``K×1×H×W`` bool, scores ``K×1`` and logits ``K×1×4h×4w``:
        exactly the rows ``decode`` would give at ``scores.argmax(1)``, but only
        those are upscaled to image size (a third of the work for multimask sets).
        """
        logits, scores = self.decode_logits(features, prompts, guidance)
        scores_np = scores.float().cpu().numpy()
        if not prompts:
            return self._output(logits[:, :1], scores_np[:, :1], features)
        best = scores_np.argmax(axis=1)
        rows = np.arange(len(best))
        return self._output(logits[torch.from_numpy(rows), torch.from_numpy(best)][:, None],
                            scores_np[rows, best][:, None], features)

    def _output(self, logits: Tensor, scores: np.ndarray, features: Features) -> DecodeOutput:
        """DecodeOutput of ``K×M`` low-res logits and scores, masks upscaled to image size."""
        if logits.shape[0] == 0:
            masks = np.zeros((0, logits.shape[1], *features.image_hw), bool)
        else:
            masks = self.upscale(logits, features)
        return DecodeOutput(masks=masks, scores=scores, logits=logits)

    def decode_logits(self, features: Features, prompts: list[Prompts],
                      guidance: list[Guidance | None] | None = None) -> tuple[Tensor, Tensor]:
        """Low-res logits ``K×M×4h×4w`` and predicted IoU ``K×M`` of K prompt sets (no upscaling)."""
        if EMBEDDING_KEY not in features.extra:
            raise InvalidInputError("features were not made by the SAM encoder (no SAM embedding in extra)")
        if guidance is not None and len(guidance) != len(prompts):
            raise InvalidInputError(f"got {len(prompts)} prompt sets but {len(guidance)} guidance entries")
        multimask = {bool(p.multimask) for p in prompts}
        if len(multimask) > 1:
            raise InvalidInputError("prompt sets mix multimask=True and False; decode them in separate calls")
        num_out = 3 if multimask == {True} else 1
        if not prompts:
            return torch.zeros(0, num_out, *self.mask_input_hw), torch.zeros(0, num_out)
        guidance = guidance if guidance is not None else [None] * len(prompts)

        inputs = [self.prompt_inputs(p, features.image_hw) for p in prompts]
        groups: dict[int, list[int]] = {}
        for i, item in enumerate(inputs):
            groups.setdefault(item.num_tokens, []).append(i)

        embedding = features.extra[EMBEDDING_KEY]
        with torch.inference_mode():
            logits = torch.empty(len(prompts), num_out, *self.mask_input_hw, device=self.device)
            scores = torch.empty(len(prompts), num_out, device=self.device)
            for tokens, rows in groups.items():
                bias, bias_on, target = self._guidance_tensors(guidance, rows)
                if self._graph is not None and tokens > 0:
                    logits[rows], scores[rows] = self._run_graph(embedding, [inputs[i] for i in rows], num_out == 3,
                                                                 bias, bias_on, target)
                    continue
                embedded = [self._embed(inputs[i]) for i in rows]
                sparse = torch.cat([e[0] for e in embedded])
                if all(inputs[i].mask is None for i in rows):
                    # All rows are SAM's no-mask embedding: one row, so the decoder broadcasts the image keys.
                    dense = embedded[0][1]
                else:
                    dense = torch.cat([e[1] for e in embedded])
                logits[rows], scores[rows] = self.decode_tensors(embedding, sparse, dense, num_out == 3,
                                                                 bias, bias_on, target)
        return logits, scores

    def _run_graph(self, embedding: Tensor, inputs: list[_PromptInputs], multimask: bool, bias: Tensor | None,
                   bias_on: Tensor | None, target: Tensor | None) -> tuple[Tensor, Tensor]:
        """One graph call for prompt sets of equal token count → (logits ``G×M×4h×4w``, IoU ``G×M``)."""
        count = len(inputs)
        device = self.device
        points = [item.graph_points() for item in inputs]
        masks = torch.zeros(count, 1, *self.mask_input_hw, device=device)
        has_mask = torch.zeros(count, device=device)
        for j, item in enumerate(inputs):
            if item.mask is not None:
                masks[j] = item.mask[0]
                has_mask[j] = 1.0
        grid_cells = self.grid_hw[0] * self.grid_hw[1]
        if bias is None:
            bias_on_rows = torch.zeros(count, device=device)
        else:
            bias_on_rows = torch.ones(count, device=device) if bias_on is None else bias_on.float()
        out = self._graph.run_tensors({
            "image_embeddings": embedding.float(),
            "point_coords": torch.from_numpy(np.stack([c for c, _ in points])).to(device),
            "point_labels": torch.from_numpy(np.stack([lab for _, lab in points])).to(device),
            "mask_input": masks,
            "has_mask_input": has_mask,
            "attention_bias": torch.zeros(count, grid_cells, device=device) if bias is None else bias,
            "bias_on": bias_on_rows,
            "target_embedding": torch.zeros(count, self.embed_dim, device=device) if target is None else target,
        })
        pick = slice(1, None) if multimask else slice(0, 1)
        return out["low_res_masks"][:, pick].to(device), out["iou_predictions"][:, pick].to(device)

    def upscale(self, logits: Tensor, features: Features) -> np.ndarray:
        """Low-res logits ``K×M×h'×w'`` → ``K×M×H×W`` bool masks at image size (SAM's postprocessing)."""
        with torch.inference_mode():
            full = self.sam.postprocess_masks(logits, features.extra[INPUT_HW_KEY], features.image_hw)
            return (full > self.sam.mask_threshold).cpu().numpy()
