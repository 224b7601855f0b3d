"""Scaling benchmark: frames per second of the pipeline with K = 1, 2, 4, 8 concepts (SAM, CPU or ``--device cuda``).

In the same run, a reference loop does what PerSAM's official per-object
scripts do: for every object, encode the frame again, compute its confidence
map, then make the three decoder calls (guided first decode, two refinements),
one object at a time. All configurations run on each frame in turn (round-robin), so
a load change on a shared machine hits them alike; medians over frames.

``--scaling-model tiny`` (default) is the issue's figure; ``mobile`` runs MobileSAM's
TinyViT and ``vit_b`` the real ViT-B architecture on seeded random weights (no checkpoint needed): the regime
the design is built for, where the image encoder dominates (vit_b about 8.5 s an
encode on 2 CPU cores, so 2 frames of K = 1, 2, 4, 8 and the reference at K = 4
take 5-8 minutes; mobile about 1 s). A "where the time
goes" breakdown (per-stage medians, single decoder calls at B = 1 and B = K,
at 1 thread and the default) and a cost model explain the figures:
ours(K) ≈ E + K·c_K, reference(K) ≈ K·(E + c_1), with E the encode and c the
three cascade calls per concept.

``--device cuda`` runs the same on a GPU (the torch encoder in fp16 autocast;
``--scaling-runtime tensorrt`` for engines) and is skipped with a message where
torch sees no CUDA device. Nothing here imports ROS: it runs on a bare machine
with CUDA PyTorch, numpy, OpenCV and segment-anything.

Run alone: ``python -m perovss_ros.bench.core_scaling`` (``--help`` for options);
``perovss bench core`` calls :func:`run_scaling`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from perovss_ros.core import matching

HELP = "frames per second with K concepts (SAM) against PerSAM's per-object reference loop"

# Per-model defaults: ViT-B encodes a frame in seconds on a CPU, so fewer frames and repetitions.
_DEFAULTS = {
    "tiny": {"frames": 8, "warmup": 2, "breakdown_reps": 5, "breakdown_threads": "1,0", "teach_frames": 3},
    "mobile": {"frames": 5, "warmup": 1, "breakdown_reps": 3, "breakdown_threads": "0", "teach_frames": 3},
    "vit_b": {"frames": 2, "warmup": 0, "breakdown_reps": 1, "breakdown_threads": "0", "teach_frames": 1},
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the scaling benchmark (also used under ``perovss bench core``)."""
    group = parser.add_argument_group("scaling (SAM)")
    group.add_argument("--scaling-model", choices=tuple(_DEFAULTS), default="tiny",
                       help="tiny (the issue's figure), mobile (MobileSAM's TinyViT) or vit_b (real ViT-B), "
                            "the last two on seeded random weights")
    group.add_argument("--scaling-ks", default="1,2,4,8", help="numbers of concepts K, comma-separated")
    group.add_argument("--scaling-frames", type=int, default=None,
                       help="timed frames per K, median reported (default 8 for tiny, 5 for mobile, 2 for vit_b)")
    group.add_argument("--scaling-warmup", type=int, default=None,
                       help="untimed frames before the measurement (default 2 for tiny, 1 for mobile, 0 for vit_b)")
    group.add_argument("--scaling-size", default="320x240", help="frame size WxH")
    group.add_argument("--scaling-reference-k", default="4",
                       help="K of the per-object reference loop; a comma list (e.g. 4,8) runs several")
    group.add_argument("--scaling-threads", type=int, default=0,
                       help="torch CPU threads (0 = torch's default); 1 gives steadier numbers on a busy machine")
    group.add_argument("--scaling-seed", type=int, default=0, help="scene and model seed")
    group.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                       help="where SAM runs (cuda: skipped with a message when torch sees no CUDA device)")
    group.add_argument("--scaling-runtime", choices=("auto", "torch", "onnxruntime", "tensorrt"), default="auto",
                       help="runtime of the pipeline's SAM decoder; default auto, the config's default, resolved as "
                            "the backend resolves it (onnxruntime on a CPU where installed); the pipeline's encoder "
                            "and the reference loop always run PyTorch")
    group.add_argument("--scaling-cascade", default="full,adaptive",
                       help="cascade modes measured at every K, comma-separated (full, adaptive); with both, "
                            "their speed, decoded prompt sets and mask agreement are reported")
    group.add_argument("--scaling-onnx-encoder", action="store_true",
                       help="also run every K (full cascade) with the image encoder in onnxruntime too (the graph "
                            "cache; exported the first time, untimed), interleaved with the rest, same threads")
    group.add_argument("--scaling-breakdown-reps", type=int, default=None,
                       help="repetitions of each call in the time breakdown (default 5 for tiny, 1 for vit_b)")
    group.add_argument("--scaling-breakdown-threads", default=None,
                       help="torch thread counts of the breakdown, comma-separated, 0 = the benchmark's "
                            "(default 1,0 for tiny, 0 for vit_b)")


@dataclass
class _Reference:
    """What the per-object reference loop needs of one concept: its target vector and embedding."""

    target: torch.Tensor  # C, L2-normalised mean of the masked reference features
    embedding: torch.Tensor  # C, un-normalised mean (target-semantic prompting)


def _median_ms(values: list[float]) -> float:
    return 1000.0 * statistics.median(values)


def reference_concept(encoder, rgb: np.ndarray, mask: np.ndarray) -> _Reference:
    """PerSAM's reference-shot step: masked features of the shot on the grid → target vectors."""
    features = encoder.encode(rgb)
    grid = features.grid
    height, width = mask.shape
    # The mask goes through the same resize + pad as the image, then down to the grid (as persam.py).
    size = (round(height * features.scale), round(width * features.scale))
    resized = F.interpolate(torch.from_numpy(mask)[None, None].float(), size=size, mode="bilinear")
    padded = torch.zeros(1, 1, encoder.img_size, encoder.img_size)
    padded[..., : size[0], : size[1]] = resized
    on_grid = (F.interpolate(padded, size=tuple(grid.shape[-2:]), mode="bilinear")[0, 0] > 0).to(grid.device)
    local = grid[:, on_grid].T  # n×C
    mean = local.mean(0)
    return _Reference(target=mean / mean.norm(), embedding=mean)


def reference_frame(encoder, decoder, rgb: np.ndarray, concepts: list[_Reference]) -> None:
    """One frame of the official per-object loop: encode per object, then three decoder calls per object."""
    from perovss_ros.core.types import Guidance, Prompts

    for concept in concepts:
        features = encoder.encode(rgb)
        grid = features.grid
        c, h, w = grid.shape
        sim = (concept.target @ (grid / grid.norm(dim=0, keepdim=True)).reshape(c, h * w)).reshape(1, 1, h, w)
        sim = F.interpolate(sim, scale_factor=4, mode="bilinear")
        sim = encoder.sam.postprocess_masks(sim, features.extra["sam_input_hw"], features.image_hw)[0, 0]
        flat_w = sim.shape[1]
        pos, neg = int(sim.argmax()), int(sim.argmin())
        points = np.array([[pos % flat_w, pos // flat_w], [neg % flat_w, neg // flat_w]], np.float32)
        labels = np.array([1, 0])
        bias = ((sim - sim.mean()) / sim.std())[None, None]
        bias = F.interpolate(bias, size=(h, w), mode="bilinear")[0, 0].sigmoid()
        guide = Guidance(attention_bias=bias, target_embedding=concept.embedding)
        first = decoder.decode(features, rgb, [Prompts(points, labels)], [guide])
        second = decoder.decode(features, rgb, [Prompts(points, labels, mask_logits=first.logits[0, :1],
                                                        multimask=True)])
        best = int(second.scores[0].argmax())
        ys, xs = np.nonzero(second.masks[0, best])
        box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())) if xs.size else None
        decoder.decode(features, rgb, [Prompts(points, labels, box=box, mask_logits=second.logits[0, best:best + 1],
                                               multimask=True)])


def _interleaved(steps: dict[str, object], frames: list[np.ndarray], warmup: int, count: int
                 ) -> dict[str, list[float]]:
    """Run every ``steps[name](frame)`` on the same frame, round-robin, ``warmup`` + ``count`` frames.

    Interleaving makes a load change on a shared machine hit every configuration
    alike, so the ratios stay meaningful. Returns the timed seconds per name.
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for i in range(warmup + count):
        frame = frames[i % len(frames)]
        for name, step in steps.items():
            tick = time.perf_counter()
            step(frame)
            if i >= warmup:
                times[name].append(time.perf_counter() - tick)
    return times


class SetCounter:
    """Decoder wrapper that counts the prompt sets decoded (the cascade's cost in decoder work), nothing else."""

    def __init__(self, decoder) -> None:
        self._decoder = decoder
        self.sets = 0

    def decode(self, features, rgb, prompts, guidance=None):
        """``decoder.decode``, counted."""
        self.sets += len(prompts)
        return self._decoder.decode(features, rgb, prompts, guidance)

    def decode_best(self, features, rgb, prompts, guidance=None):
        """``decoder.decode_best`` (or ``decode``), counted."""
        self.sets += len(prompts)
        return getattr(self._decoder, "decode_best", self._decoder.decode)(features, rgb, prompts, guidance)

    def __getattr__(self, name: str):
        return getattr(self._decoder, name)


def label_masks(result) -> dict[str, np.ndarray]:
    """Concept name → ``H×W`` bool mask of one FrameResult."""
    return {s.label: result.instance_mask == s.instance_id for s in result.segments}


def mask_iou(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """IoU of two bool masks; None or empty counts as empty, and two empty masks agree (1.0)."""
    empty = np.zeros((1, 1), bool)  # broadcasts against the other mask
    return matching.mask_iou(empty if a is None else a, empty if b is None else b, both_empty=1.0)


def mask_agreement(ours: list[dict[str, np.ndarray]], theirs: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """Per-concept mask IoU over the same frames (label masks of each): ``mask_iou_min`` and ``mask_iou_mean``."""
    ious = [mask_iou(a.get(n), b.get(n)) for a, b in zip(ours, theirs, strict=True) for n in set(a) | set(b)]
    return {"mask_iou_min": min(ious) if ious else 1.0, "mask_iou_mean": float(np.mean(ious)) if ious else 1.0}


class MemoEncoder:
    """Encoder wrapper that encodes each distinct image once: teaching K concepts from the same
    captures would otherwise re-encode them K times (minutes with ViT-B). Setup only, never timed."""

    def __init__(self, encoder) -> None:
        self._encoder = encoder
        self.model_id = encoder.model_id
        self._cache: dict[tuple, object] = {}

    def encode(self, rgb: np.ndarray):
        """``encoder.encode(rgb)``, reused for an identical ``H×W×3 uint8`` image."""
        key = (rgb.shape, hash(rgb.tobytes()))
        if key not in self._cache:
            self._cache[key] = self._encoder.encode(rgb)
        return self._cache[key]

    def __getattr__(self, name: str):
        return getattr(self._encoder, name)


def _ints(text: str, what: str) -> list[int]:
    values = sorted({int(k) for k in str(text).split(",") if k.strip()})
    if not values or values[0] < 1:
        raise ValueError(f"{what} must list positive integers, got {text!r}")
    return values


def _option(args: argparse.Namespace, name: str, model: str):
    """``args.scaling_<name>`` or, when not given, the per-model default."""
    value = getattr(args, f"scaling_{name}", None)
    return _DEFAULTS[model][name] if value is None else value


def _decoder_call_ms(decoder, features, rgb: np.ndarray, batch: int, reps: int, seed: int) -> dict[str, float]:
    """Median ms of one decoder call for ``batch`` prompt sets, as the cascade makes them.

    ``first``: 2 points with PerSAM guidance, single mask; ``refine``: the same points plus
    low-res mask logits, multimask (both refinement steps look like this), through
    ``decode_best`` when the decoder has it, as the cascade calls it. Includes the
    upscaling of the masks to image size.
    """
    from perovss_ros.core.types import Guidance, Prompts

    gen = torch.Generator().manual_seed(seed)
    height, width = rgb.shape[:2]
    grid_hw = decoder.grid_hw
    prompts, guides = [], []
    for _ in range(batch):
        xy = torch.rand(2, 2, generator=gen) * torch.tensor([width - 1, height - 1])
        prompts.append(Prompts(xy.numpy().astype(np.float32), np.array([1, 0])))
        guides.append(Guidance(torch.rand(*grid_hw, generator=gen), torch.randn(decoder.embed_dim, generator=gen)))
    first = decoder.decode(features, rgb, prompts, guides)
    refine = [Prompts(p.points, p.labels, mask_logits=first.logits[i, :1], multimask=True)
              for i, p in enumerate(prompts)]
    refine_call = getattr(decoder, "decode_best", decoder.decode)
    out: dict[str, list[float]] = {"first": [], "refine": []}
    for _ in range(reps):
        tick = time.perf_counter()
        decoder.decode(features, rgb, prompts, guides)
        out["first"].append(time.perf_counter() - tick)
        tick = time.perf_counter()
        refine_call(features, rgb, refine)
        out["refine"].append(time.perf_counter() - tick)
    return {name: _median_ms(values) for name, values in out.items()}


def _breakdown(encoder, decoder, rgb: np.ndarray, kmax: int, reps: int, threads: list[int], seed: int
               ) -> dict[int, dict[str, float]]:
    """Per torch thread count: encode ms, and one first/refine decoder call at B = 1 and B = ``kmax``."""
    before = torch.get_num_threads()
    rows: dict[int, dict[str, float]] = {}
    try:
        for count in threads:
            torch.set_num_threads(count)
            if reps > 1:
                encoder.encode(rgb)  # warm-up; ViT-B (reps 1) is warm from the measured frames already
            ticks = []
            for _ in range(reps):
                tick = time.perf_counter()
                features = encoder.encode(rgb)
                ticks.append(time.perf_counter() - tick)
            row = {"encode": _median_ms(ticks)}
            for batch in sorted({1, kmax}):
                _decoder_call_ms(decoder, features, rgb, batch, 1, seed)  # warm-up
                for name, ms in _decoder_call_ms(decoder, features, rgb, batch, reps, seed).items():
                    row[f"{name}_b{batch}"] = ms
            rows[count] = row
    finally:
        torch.set_num_threads(before)
    return rows


STAGES = ("encode", "match", "prompt", "decode", "resolve", "output")


def taught_pipeline(config, memo, decoder, scene, k: int, teach_frames: list[np.ndarray]):
    """A sam ``Pipeline`` (``config``: PipelineConfig, dict or path) with K concepts, concept j taught
    from the scene's object j mod N on ``teach_frames`` through ``memo``; the caller sets the
    encoder that times the frames."""
    from perovss_ros.core import Pipeline, PipelineConfig

    names = [obj.name for obj in scene.objects]
    # Frames are what is timed: turned teach shots would only add encodes the memo cannot serve.
    pipe = Pipeline(replace(PipelineConfig.coerce(config), turned_shots=False), memo, decoder, "sam")
    for j in range(k):
        masks = scene.teach_masks(names[j % len(names)])[: len(teach_frames)]
        pipe.teach(f"concept_{j}", teach_frames, masks=masks)
    return pipe


def device_problem(device: str) -> str | None:
    """Why ``device`` cannot run here (``cuda`` without a CUDA device), or None."""
    if device == "cuda" and not torch.cuda.is_available():
        return ("--device cuda, but torch sees no CUDA device (a CPU-only torch wheel, no GPU, or no driver); "
                "run with --device cpu or on the GPU machine")
    return None


def decoder_runtime(asked: str, device: str) -> str:
    """The decoder runtime the benchmark runs for ``--scaling-runtime``: ``auto`` resolved as the backend does."""
    from perovss_ros.core.sam.backend import resolve_runtime

    return resolve_runtime(str(asked or "auto"), torch.device(device))


def run_scaling(args: argparse.Namespace) -> dict:
    """Measure the pipeline at each K and the reference loop at ``--scaling-reference-k``; print tables.

    One pipeline per K (concept j is scene object j mod 3 under its own name), all
    sharing one SAM (``--scaling-model``), measured frame by frame in turn with the
    reference loop. Returns ``{"model", "k": {K: {"fps", "median_ms", "<stage>_ms"...}},
    "reference": {...} (first reference K), "references": {K: {...}}, "breakdown": {threads: {...}},
    "speedup_vs_reference": float, "time_ratio_kmax_k1": float, ...}``.
    """
    from perovss_ros.core.sam import SamMaskDecoder, build_sam_backend
    from perovss_ros.sim.scenes import make_scene

    device = str(getattr(args, "device", "cpu") or "cpu")
    problem = device_problem(device)
    if problem is not None:
        print(f"scaling: skipped: {problem}")
        return {"skipped": problem, "device": device}
    model = str(args.scaling_model or "tiny")
    frames = int(_option(args, "frames", model))
    warmup = int(_option(args, "warmup", model))
    reps = int(_option(args, "breakdown_reps", model))
    ks = _ints(args.scaling_ks, "--scaling-ks")
    ref_ks = _ints(args.scaling_reference_k, "--scaling-reference-k")
    width, height = (int(v) for v in str(args.scaling_size).lower().split("x"))
    threads_before = torch.get_num_threads()
    if args.scaling_threads > 0:
        torch.set_num_threads(args.scaling_threads)
    bench_threads = torch.get_num_threads()
    breakdown_threads = sorted({int(t) or bench_threads
                                for t in str(_option(args, "breakdown_threads", model)).split(",") if t.strip()})
    try:
        seed = int(args.scaling_seed)
        scene = make_scene(seed=seed, num_frames=max(frames, 4), size=(width, height),
                           num_objects=3, num_lookalikes=2)
        names = [obj.name for obj in scene.objects]
        # PerSAM's computation on both sides (identity off): the benchmark measures batching over K
        # against the official per-object loop, not the identity stage (timed by --part quality).
        runtime = decoder_runtime(args.scaling_runtime, device)
        config = {"backend": "sam", "model": model, "presence": False, "identity": False, "concept_store": None,
                  "seed": seed, "runtime": runtime, "device": device}
        # One model for every configuration: same weights, one copy in memory (ViT-B is 360 MB).
        encoder, reference_decoder = build_sam_backend({**config, "runtime": "torch"},
                                                       random_weights=model != "tiny")
        decoder = reference_decoder
        if runtime == "tensorrt":
            from perovss_ros.core.sam.backend import tensorrt_runners

            engine = tensorrt_runners(encoder.sam, model, encoder.model_id)[1]
            decoder = SamMaskDecoder(encoder.sam, runtime="tensorrt", graph=engine)
        elif runtime != "torch":
            # Same weights; ONNX Runtime held to the benchmark's thread count like torch.
            decoder = SamMaskDecoder(encoder.sam, runtime=runtime, threads=max(0, args.scaling_threads))
        memo = MemoEncoder(encoder)
        teach_frames = scene.teach_frames[: int(_DEFAULTS[model]["teach_frames"])]
        stages: dict[int, dict[str, list[float]]] = {}
        steps: dict[str, object] = {}
        modes = [m for m in str(getattr(args, "scaling_cascade", "full") or "full").split(",") if m.strip()]
        if "full" not in modes:
            modes.insert(0, "full")  # the stage table and the speedups are the full cascade's
        cascade: dict[tuple[int, str], dict] = {}
        for k in ks:
            for mode in modes:
                counter = SetCounter(decoder)
                pipe = taught_pipeline({**config, "cascade": mode}, memo, counter, scene, k, teach_frames)
                pipe.encoder = encoder  # frames are always encoded afresh
                counter.sets = 0
                cascade[k, mode] = {"counter": counter, "masks": []}
                if mode == "full":
                    stages[k] = {key: [] for key in (*STAGES, "total")}

                def step(frame, pipe=pipe, record=stages[k] if mode == "full" else None,
                         seen=cascade[k, mode]["masks"]) -> None:
                    result = pipe.process(frame)
                    seen.append(label_masks(result))
                    for key, values in (record or {}).items():
                        values.append(result.timings.get(key, 0.0))

                steps[f"k{k}" if mode == "full" else f"k{k}-{mode}"] = step

        onnx_stages: dict[int, dict[str, list[float]]] = {}
        if getattr(args, "scaling_onnx_encoder", False):
            from perovss_ros.core.sam import SamImageEncoder
            from perovss_ros.core.sam.engines import onnxruntime_providers
            from perovss_ros.core.sam.graph_cache import cached_encoder

            onnx_encoder = SamImageEncoder(encoder.sam, encoder.model_id, cached_encoder(
                encoder.sam, encoder.model_id, threads=max(0, args.scaling_threads),
                providers=onnxruntime_providers(encoder.device)))
            for k in ks:
                pipe = taught_pipeline({**config, "cascade": "full"}, memo, decoder, scene, k, teach_frames)
                pipe.encoder = onnx_encoder
                onnx_stages[k] = {key: [] for key in ("encode", "decode")}

                def onnx_step(frame, pipe=pipe, record=onnx_stages[k]) -> None:
                    result = pipe.process(frame)
                    for key, values in record.items():
                        values.append(result.timings.get(key, 0.0))

                steps[f"k{k}-onnx-encoder"] = onnx_step

        refs = [reference_concept(memo, scene.teach_frames[0], scene.teach_masks(names[j % len(names)])[0])
                for j in range(max(ref_ks))]
        for rk in ref_ks:
            steps[f"reference{rk}"] = lambda frame, rk=rk: reference_frame(encoder, reference_decoder, frame,
                                                                            refs[:rk])
        times = _interleaved(steps, scene.frames, warmup, frames)
        breakdown = _breakdown(encoder, decoder, scene.frames[0], ks[-1], reps, breakdown_threads, seed)
    finally:
        torch.set_num_threads(threads_before)

    results: dict = {"model": model, "device": device, "threads": bench_threads, "size": [width, height],
                     "runtime": runtime, "runtime_asked": args.scaling_runtime, "frames": frames, "k": {},
                     "breakdown": breakdown, "breakdown_kmax": ks[-1]}
    for k in ks:
        row = {"fps": 1.0 / statistics.median(times[f"k{k}"]), "median_ms": _median_ms(times[f"k{k}"])}
        for key, values in stages[k].items():
            row[f"{key}_ms"] = _median_ms(values[warmup:])
        results["k"][k] = row
    results["cascade"] = _cascade_rows(cascade, times, ks, modes, warmup + frames)
    if onnx_stages:
        results["onnx_encoder"] = {k: {"median_ms": _median_ms(times[f"k{k}-onnx-encoder"]),
                                       "encode_ms": _median_ms(values["encode"][warmup:]),
                                       "decode_ms": _median_ms(values["decode"][warmup:])}
                                   for k, values in onnx_stages.items()}
    results["references"] = {rk: {"k": rk, "fps": 1.0 / statistics.median(times[f"reference{rk}"]),
                                  "median_ms": _median_ms(times[f"reference{rk}"])} for rk in ref_ks}
    results["reference"] = results["references"][ref_ks[0]]
    for rk, ref in results["references"].items():
        if rk in results["k"]:
            ref["speedup"] = ref["median_ms"] / results["k"][rk]["median_ms"]
    if "speedup" in results["reference"]:
        results["speedup_vs_reference"] = results["reference"]["speedup"]
    results["time_ratio_kmax_k1"] = results["k"][ks[-1]]["median_ms"] / results["k"][ks[0]]["median_ms"]
    _print_table(results, ks)
    return results


def _cascade_rows(cascade: dict, times: dict, ks: list[int], modes: list[str], frames: int) -> dict:
    """Per K and mode: median ms, prompt sets decoded per frame, and (not full) mask agreement with full."""
    rows: dict = {}
    for k in ks:
        for mode in modes:
            entry = cascade[k, mode]
            row = {"median_ms": _median_ms(times[f"k{k}" if mode == "full" else f"k{k}-{mode}"]),
                   "sets_per_frame": entry["counter"].sets / max(1, frames)}
            if mode != "full":
                row.update(mask_agreement(entry["masks"], cascade[k, "full"]["masks"]))
            rows.setdefault(k, {})[mode] = row
    return rows


def _print_table(results: dict, ks: list[int]) -> None:
    width, height = results["size"]
    print(f"\nscaling, {results['model']} SAM{' (seeded random weights)' if results['model'] != 'tiny' else ''}, "
          f"{results['device']} ({results['threads']} torch threads), {width}x{height}, presence off, "
          f"decoder runtime {results['runtime']}{' (auto)' if results['runtime_asked'] == 'auto' else ''}, "
          f"encoder torch, median of {results['frames']} frames")
    print(f"{'K':>3} {'fps':>7} {'median ms':>10} {'encode ms':>10} {'decode ms':>10} {'decode/K':>9}")
    for k in ks:
        row = results["k"][k]
        print(f"{k:>3} {row['fps']:>7.2f} {row['median_ms']:>10.1f} {row['encode_ms']:>10.1f} "
              f"{row['decode_ms']:>10.1f} {row['decode_ms'] / k:>9.1f}")
    for ref in results["references"].values():
        print(f"reference per-object loop, K={ref['k']}: {ref['fps']:.2f} fps, {ref['median_ms']:.1f} ms/frame")
        if "speedup" in ref:
            print(f"ours vs reference at K={ref['k']}: {ref['speedup']:.2f}x faster (target >= 2.5)")
    print(f"time(K={ks[-1]}) / time(K={ks[0]}): {results['time_ratio_kmax_k1']:.2f} (target <= 2)")
    for k, row in results.get("onnx_encoder", {}).items():
        text = (f"encoder onnxruntime, K={k}: {row['median_ms']:.1f} ms (encode {row['encode_ms']:.1f}, "
                f"decode {row['decode_ms']:.1f}); encoder torch: {results['k'][k]['median_ms']:.1f} ms")
        for ref in results["references"].values():
            if ref["k"] == k:
                text += f"; vs reference {ref['median_ms'] / row['median_ms']:.2f}x"
        print(text)
    for k, by_mode in results["cascade"].items():
        for mode, row in by_mode.items():
            text = (f"cascade {mode:>8}, K={k}: {row['median_ms']:.1f} ms, "
                    f"{row['sets_per_frame']:.1f} prompt sets decoded per frame")
            if "mask_iou_min" in row:
                text += f"; masks vs full IoU min {row['mask_iou_min']:.3f} mean {row['mask_iou_mean']:.3f}"
            print(text)
    _print_breakdown(results, ks)


def _print_breakdown(results: dict, ks: list[int]) -> None:
    """The "where the time goes" tables and the cost model behind the two ratios."""
    print(f"\nwhere the time goes: process() stages, medians in ms ({results['threads']} threads)")
    print(f"{'stage':>10} " + " ".join(f"{'K=' + str(k):>8}" for k in ks))
    for key in (*STAGES, "total"):
        print(f"{key:>10} " + " ".join(f"{results['k'][k][key + '_ms']:>8.1f}" for k in ks))
    kmax = results["breakdown_kmax"]
    print(f"single calls, medians in ms (first = guided decode, refine = mask input + multimask; "
          f"decoder calls include upscaling to image size; /set = per prompt set at B={kmax})")
    print(f"{'threads':>7} {'encode':>8} {'first B=1':>10} {'first B=' + str(kmax):>10} {'/set':>6} "
          f"{'refine B=1':>11} {'refine B=' + str(kmax):>11} {'/set':>6}")
    for count, row in results["breakdown"].items():
        print(f"{count:>7} {row['encode']:>8.1f} {row['first_b1']:>10.1f} {row[f'first_b{kmax}']:>10.1f} "
              f"{row[f'first_b{kmax}'] / kmax:>6.1f} {row['refine_b1']:>11.1f} {row[f'refine_b{kmax}']:>11.1f} "
              f"{row[f'refine_b{kmax}'] / kmax:>6.1f}")
    row = results["breakdown"].get(results["threads"])
    if row is None:
        return
    encode = row["encode"]
    alone = row["first_b1"] + 2 * row["refine_b1"]
    batched = (row[f"first_b{kmax}"] + 2 * row[f"refine_b{kmax}"]) / kmax
    print(f"cost model: E = encode {encode:.0f} ms; cascade per concept c_1 = {alone:.0f} ms alone, "
          f"c_K = {batched:.0f} ms batched (K={kmax}); E / c_K = {encode / batched:.1f}")
    print("  ours(K) ≈ E + K·c_K, reference(K) ≈ K·(E + c_1); with c_K ≈ c_1 the targets need "
          "E / c ≥ 4 (2.5x at K=4) and E / c ≥ 6 (K=8 within 2x of K=1)")
    for rk in results["references"]:
        ours = encode + rk * batched
        print(f"  predicted at K={rk}: ours {ours:.0f} ms, reference {rk * (encode + alone):.0f} ms, "
              f"speedup {rk * (encode + alone) / ours:.2f}x")
    print(f"  predicted time(K={kmax}) / time(K=1): {(encode + kmax * batched) / (encode + batched):.2f}")


def main(argv: list[str] | None = None) -> int:
    """``python -m perovss_ros.bench.core_scaling``."""
    parser = argparse.ArgumentParser(description=HELP)
    add_arguments(parser)
    run_scaling(parser.parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
