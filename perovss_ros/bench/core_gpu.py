"""The GPU check (``tools/gpu_bench.sh``): encoders × runtimes × K on one device, fp16 checked against fp32.

For each encoder (``tiny``, ``mobile``, ``vit_b``) and runtime (``torch-fp32``,
``torch-fp16`` = the encoder under fp16 autocast, ``onnxruntime``, ``tensorrt``
where importable) a pipeline with K personal concepts (K ∈ {1, 4, 8}) processes
the same synthetic frames: median ms per frame, fps, encode and decode stages.
Every result that is not torch fp32 is compared with torch fp32 on the same
frames: per-concept mask IoU (min and mean) and the image embedding's max
absolute difference. PerSAM's official per-object loop (one encode and three
decoder calls per object, ``core_scaling.reference_frame``) runs on torch fp32
at every K in the same run. Models without a checkpoint on disk run on seeded
random weights: speed is real, masks are not, and the report says so.

A configuration that cannot run here (no TensorRT, no CUDA provider) is listed
with the reason, never dropped silently; ``--budget-s`` (default 480 s) stops
starting new configurations so the whole check stays within 8 minutes. TensorRT
engines are built before the timed check (``--engines-only``, cached, so only a
device's first run pays the minutes a build takes).
``--dry-run`` checks it all end to end on the CPU: tiny encoder, small frames,
one frame per K, and bfloat16 autocast standing in for fp16.

No ROS here: it runs on a machine with only CUDA PyTorch, numpy, OpenCV,
segment-anything (and onnxruntime / TensorRT where installed).
Run: ``python -m perovss_ros.bench.core_gpu --out DIR`` (``--help``).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from perovss_ros.bench.core_scaling import (
    MemoEncoder,
    device_problem,
    label_masks,
    mask_agreement,
    reference_concept,
    reference_frame,
)

HELP = "GPU check: encoders × runtimes × K, fp16 against fp32, and the official per-object loop"
ENCODERS = ("tiny", "mobile", "vit_b")
RUNTIMES = ("torch-fp32", "torch-fp16", "onnxruntime", "tensorrt")
GOAL_FPS = 30.0
"""The issue's hardware goal: mobile encoder, TensorRT fp16, K = 4 on an AGX Orin-class device."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the GPU check."""
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--encoders", default=",".join(ENCODERS), help="comma-separated SAM models")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated, of: " + ", ".join(RUNTIMES))
    parser.add_argument("--ks", default="1,4,8", help="numbers of concepts K")
    parser.add_argument("--frames", type=int, default=20, help="timed frames per configuration and K")
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first (CUDA kernels, autotuning)")
    parser.add_argument("--size", default="640x480", help="frame size WxH")
    parser.add_argument("--seed", type=int, default=0, help="scene and random-weights seed")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="no new configuration starts after this many seconds (default 480)")
    parser.add_argument("--out", default=".", help="directory for gpu_bench.json and gpu_bench.md")
    parser.add_argument("--engines-only", action="store_true",
                        help="only build (or find) the TensorRT engines of the encoders, untimed, and exit")
    parser.add_argument("--dry-run", action="store_true",
                        help="CPU end-to-end check: --device cpu, tiny encoder, 160x120, 1 frame, K 1,4")


@dataclass
class _Variant:
    """One runtime of one encoder: what encodes and decodes, or why it cannot run here."""

    runtime: str
    encoder: object = None
    decoder: object = None
    skipped: str | None = None


def weight_source(model: str) -> tuple[bool, str]:
    """(random weights?, what a benchmark report says about the weights of ``model``)."""
    from perovss_ros.core.sam import sam_checkpoint_available
    from perovss_ros.core.sam.registry import sam_spec

    if sam_spec(model).checkpoint is None:
        return False, "seeded random weights (tiny has no checkpoint)"
    if sam_checkpoint_available({"model": model}):
        return False, "official checkpoint"
    return True, "seeded random weights: no checkpoint found (speed is real, masks are not)"


def _variants(model: str, device: str, runtimes: list[str], seed: int) -> tuple[list[_Variant], str]:
    """Every asked runtime of ``model`` on ``device``, sharing one ``Sam``; and the weights line."""
    from perovss_ros.core.sam import SamImageEncoder, SamMaskDecoder, build_sam_backend

    random_weights, weights = weight_source(model)
    base, torch_decoder = build_sam_backend({"model": model, "device": device, "runtime": "torch", "seed": seed},
                                            random_weights=random_weights)
    sam, model_id = base.sam, base.model_id
    out = []
    for runtime in runtimes:
        variant = _Variant(runtime)
        try:
            if runtime == "torch-fp32":
                variant.encoder, variant.decoder = SamImageEncoder(sam, model_id), torch_decoder
            elif runtime == "torch-fp16":
                variant.encoder, variant.decoder = SamImageEncoder(sam, model_id, half=True), torch_decoder
            elif runtime == "onnxruntime":
                variant.encoder, variant.decoder = _onnxruntime_pair(sam, model_id)
            elif runtime == "tensorrt":
                from perovss_ros.core.sam.backend import tensorrt_runners
                from perovss_ros.core.sam.tensorrt_engines import tensorrt_problem

                variant.skipped = tensorrt_problem()
                if variant.skipped is None:
                    engines = tensorrt_runners(sam, model, model_id)
                    variant.encoder = SamImageEncoder(sam, model_id, engines[0])
                    variant.decoder = SamMaskDecoder(sam, runtime="tensorrt", graph=engines[1])
            else:
                variant.skipped = f"unknown runtime; use: {', '.join(RUNTIMES)}"
        except Exception as exc:  # a runtime that fails to build is a finding of the check, not its end
            variant.skipped = f"{type(exc).__name__}: {exc}"
        out.append(variant)
    return out, weights


def _onnxruntime_pair(sam, model_id: str):
    from perovss_ros.core.sam import SamImageEncoder, SamMaskDecoder
    from perovss_ros.core.sam.engines import onnxruntime_providers
    from perovss_ros.core.sam.graph_cache import cached_encoder

    providers = onnxruntime_providers(sam.device)
    if providers is None:
        raise RuntimeError("onnxruntime has no CUDA provider here (install onnxruntime-gpu)")
    return SamImageEncoder(sam, model_id, cached_encoder(sam, model_id, providers=providers)), \
        SamMaskDecoder(sam, runtime="onnxruntime")


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _measure(variant: _Variant, scene, names: list[str], k: int, warmup: int, count: int
             ) -> tuple[dict, list[dict[str, np.ndarray]]]:
    """Teach K concepts and process ``warmup + count`` frames → (timing row, per-frame label masks)."""
    from perovss_ros.core import Pipeline, PipelineConfig

    # Frames are what is timed: turned teach shots would only add encodes the memo cannot serve.
    config = PipelineConfig.coerce({"backend": "sam", "model": "tiny", "presence": False, "concept_store": None,
                                    "turned_shots": False})
    pipe = Pipeline(config, MemoEncoder(variant.encoder), variant.decoder, "sam")
    for j in range(k):
        pipe.teach(f"concept_{j}", scene.teach_frames[:1], masks=scene.teach_masks(names[j % len(names)])[:1])
    pipe.encoder = variant.encoder
    totals, encodes, decodes, masks = [], [], [], []
    for i in range(warmup + count):
        frame = scene.frames[i % len(scene.frames)]
        _sync()
        tick = time.perf_counter()
        result = pipe.process(frame)
        _sync()
        if i >= warmup:
            totals.append(time.perf_counter() - tick)
            encodes.append(result.timings.get("encode", 0.0))
            decodes.append(result.timings.get("decode", 0.0))
            masks.append(label_masks(result))
    median = statistics.median(totals)
    return ({"median_ms": 1000 * median, "fps": 1.0 / median, "encode_ms": 1000 * statistics.median(encodes),
             "decode_ms": 1000 * statistics.median(decodes)}, masks)


def _embedding_diff(variant: _Variant, fp32: _Variant, frame: np.ndarray) -> float:
    """Max |embedding − torch fp32 embedding| on one frame."""
    ours = variant.encoder.encode(frame).grid.float().cpu()
    want = fp32.encoder.encode(frame).grid.float().cpu()
    return float((ours - want).abs().max())


def _reference(variant: _Variant, scene, names: list[str], k: int, warmup: int, count: int) -> dict:
    """The official per-object loop with K objects on torch fp32: median ms per frame."""
    memo = MemoEncoder(variant.encoder)
    refs = [reference_concept(memo, scene.teach_frames[0], scene.teach_masks(names[j % len(names)])[0])
            for j in range(k)]
    times = []
    for i in range(warmup + count):
        _sync()
        tick = time.perf_counter()
        reference_frame(variant.encoder, variant.decoder, scene.frames[i % len(scene.frames)], refs)
        _sync()
        if i >= warmup:
            times.append(time.perf_counter() - tick)
    median = statistics.median(times)
    return {"median_ms": 1000 * median, "fps": 1.0 / median}


def _environment(device: str) -> dict:
    env = {"device": device, "torch": torch.__version__, "python": platform.python_version(),
           "machine": platform.machine()}
    if device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
        env["compute_capability"] = "{}.{}".format(*torch.cuda.get_device_capability(0))
    for module in ("onnxruntime", "tensorrt"):
        try:
            env[module] = __import__(module).__version__
        except Exception:
            env[module] = None
    return env


def run_gpu_check(args: argparse.Namespace) -> dict:
    """Run every configuration within the budget; returns the report dict (see ``write_report``)."""
    from perovss_ros.sim.scenes import make_scene

    start = time.perf_counter()
    problem = device_problem(args.device)
    if problem is not None:
        return {"environment": {"device": args.device}, "skipped_all": problem, "results": [], "reference": [],
                "skipped": [], "weights": {}, "seconds": 0.0}
    ks = sorted({int(k) for k in str(args.ks).split(",") if k.strip()})
    width, height = (int(v) for v in str(args.size).lower().split("x"))
    scene = make_scene(seed=args.seed, num_frames=max(4, args.frames), size=(width, height), num_objects=3,
                       num_lookalikes=2)
    names = [obj.name for obj in scene.objects]
    report: dict = {"environment": _environment(args.device), "ks": ks, "frames": args.frames,
                    "warmup": args.warmup, "size": [width, height], "weights": {}, "results": [], "reference": [],
                    "skipped": []}
    runtimes = [r for r in str(args.runtimes).split(",") if r.strip()]
    if "torch-fp32" not in runtimes:
        runtimes.insert(0, "torch-fp32")  # the baseline every other result is checked against
    try:
        for model in [m for m in str(args.encoders).split(",") if m.strip()]:
            _run_encoder(report, model, args, runtimes, scene, names, ks, start)
    except KeyboardInterrupt:  # the hard time limit of tools/gpu_bench.sh: keep what was measured
        report["interrupted"] = True
    report["seconds"] = time.perf_counter() - start
    return report


def _run_encoder(report: dict, model: str, args: argparse.Namespace, runtimes: list[str], scene,
                 names: list[str], ks: list[int], start: float) -> None:
    """Every runtime of one encoder at every K, then the official loop; appends to ``report``."""
    if time.perf_counter() - start > args.budget_s:
        report["skipped"].append({"encoder": model, "runtime": "all", "reason": "time budget used up"})
        return
    variants, report["weights"][model] = _variants(model, args.device, runtimes, args.seed)
    fp32 = variants[runtimes.index("torch-fp32")]
    baseline: dict[int, list] = {}
    for variant in variants:
        if variant.skipped is None and time.perf_counter() - start > args.budget_s:
            variant.skipped = "time budget used up"
        if variant.skipped is not None:
            report["skipped"].append({"encoder": model, "runtime": variant.runtime, "reason": variant.skipped})
            print(f"{model} {variant.runtime}: skipped: {variant.skipped}", flush=True)
            continue
        diff = None if variant is fp32 else _embedding_diff(variant, fp32, scene.frames[0])
        for k in ks:
            row, masks = _measure(variant, scene, names, k, args.warmup, args.frames)
            row = {"encoder": model, "runtime": variant.runtime, "precision": _precision(variant), "k": k, **row}
            if variant is fp32:
                baseline[k] = masks
            else:
                row.update(mask_agreement(masks, baseline[k]), embedding_max_abs_diff=diff)
            report["results"].append(row)
            print(_row_text(row), flush=True)
    for k in ks:
        ref = {"encoder": model, "k": k, **_reference(fp32, scene, names, k, args.warmup, args.frames)}
        report["reference"].append(ref)
        print(f"{model} official per-object loop K={k}: {ref['median_ms']:.1f} ms, {ref['fps']:.1f} fps",
              flush=True)
    del variants, fp32
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _precision(variant: _Variant) -> str:
    if variant.runtime == "tensorrt":
        return "fp16 engine"
    return variant.encoder.precision


def _row_text(row: dict) -> str:
    text = (f"{row['encoder']} {row['runtime']} ({row['precision']}) K={row['k']}: {row['median_ms']:.1f} ms, "
            f"{row['fps']:.1f} fps (encode {row['encode_ms']:.1f}, decode {row['decode_ms']:.1f})")
    if "mask_iou_min" in row:
        text += (f"; vs fp32 mask IoU min {row['mask_iou_min']:.3f} mean {row['mask_iou_mean']:.3f}, "
                 f"embedding max |diff| {row['embedding_max_abs_diff']:.2e}")
    return text


def _goal_line(report: dict) -> str:
    hits = [r for r in report["results"] if r["encoder"] == "mobile" and r["runtime"] == "tensorrt" and r["k"] == 4]
    if not hits:
        return f"goal (mobile, TensorRT fp16, K=4, >= {GOAL_FPS:.0f} fps on an AGX Orin-class device): not measured"
    fps = hits[0]["fps"]
    verdict = "met" if fps >= GOAL_FPS else "not met"
    return f"goal (mobile, TensorRT fp16, K=4, >= {GOAL_FPS:.0f} fps): {fps:.1f} fps, {verdict} on this device"


def markdown(report: dict) -> str:
    """The report as Markdown: environment, weights, one table of results, the reference loop, skips."""
    env = report["environment"]
    lines = ["# perovss GPU check", ""]
    lines += [f"- {key}: {value}" for key, value in env.items()]
    if "skipped_all" in report:
        return "\n".join([*lines, "", f"**Skipped:** {report['skipped_all']}", ""])
    width, height = report["size"]
    lines += [f"- frames: {report['frames']} timed after {report['warmup']} warm-up, {width}x{height}, "
              f"presence off; {report['seconds']:.0f} s in all", ""]
    lines += ["## Weights", ""] + [f"- {model}: {text}" for model, text in report["weights"].items()] + [""]
    lines += ["## Pipeline per frame", "",
              "| encoder | runtime | precision | K | ms | fps | encode ms | decode ms | mask IoU vs fp32 (min / mean) "
              "| embedding max abs diff |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["results"]:
        agree = f"{r['mask_iou_min']:.3f} / {r['mask_iou_mean']:.3f}" if "mask_iou_min" in r else "(baseline)"
        diff = f"{r['embedding_max_abs_diff']:.2e}" if r.get("embedding_max_abs_diff") is not None else ""
        lines.append(f"| {r['encoder']} | {r['runtime']} | {r['precision']} | {r['k']} | {r['median_ms']:.1f} | "
                     f"{r['fps']:.1f} | {r['encode_ms']:.1f} | {r['decode_ms']:.1f} | {agree} | {diff} |")
    lines += ["", "## Official per-object loop (torch fp32)", "",
              "| encoder | K | ms | fps | ours torch fp32 speedup |", "|---|---|---|---|---|"]
    ours = {(r["encoder"], r["k"]): r for r in report["results"] if r["runtime"] == "torch-fp32"}
    for ref in report["reference"]:
        mine = ours.get((ref["encoder"], ref["k"]))
        speedup = f"{ref['median_ms'] / mine['median_ms']:.2f}x" if mine else ""
        lines.append(f"| {ref['encoder']} | {ref['k']} | {ref['median_ms']:.1f} | {ref['fps']:.1f} | {speedup} |")
    lines += ["", "## Not run", ""]
    lines += [f"- {s['encoder']} {s['runtime']}: {s['reason']}" for s in report["skipped"]] or ["- nothing"]
    if report.get("interrupted"):
        lines += ["", "**Interrupted by the time limit:** the rows above are what was measured before it."]
    lines += ["", _goal_line(report), ""]
    return "\n".join(lines)


def write_report(report: dict, out: str | Path) -> tuple[Path, Path]:
    """Write ``gpu_bench.json`` and ``gpu_bench.md`` into ``out``; returns their paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / "gpu_bench.json", folder / "gpu_bench.md"
    json_path.write_text(json.dumps(report, indent=1, default=str))
    md_path.write_text(markdown(report))
    return json_path, md_path


def build_engines(args: argparse.Namespace) -> int:
    """``--engines-only``: build (or find in the cache) each encoder's TensorRT engines, untimed by the check.

    A first build takes minutes per model (vit_b the longest), which would eat the
    check's 8 minutes; the engines are cached, so later runs find them at once.
    """
    from perovss_ros.core.sam import build_sam_backend
    from perovss_ros.core.sam.backend import tensorrt_runners
    from perovss_ros.core.sam.tensorrt_engines import tensorrt_problem

    problem = device_problem(args.device) or tensorrt_problem()
    if problem is not None:
        print(f"TensorRT engines: not built: {problem}")
        return 0
    for model in [m for m in str(args.encoders).split(",") if m.strip()]:
        random_weights, _ = weight_source(model)
        base, _ = build_sam_backend({"model": model, "device": args.device, "runtime": "torch", "seed": args.seed},
                                    random_weights=random_weights)
        tick = time.perf_counter()
        tensorrt_runners(base.sam, model, base.model_id)
        print(f"TensorRT engines of {base.model_id}: ready in {time.perf_counter() - tick:.0f} s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m perovss_ros.bench.core_gpu``: 0 when written, 1 when the device is missing (report says why)."""
    parser = argparse.ArgumentParser(description=HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    if args.dry_run:
        args.device, args.encoders, args.size, args.frames, args.warmup = "cpu", "tiny", "160x120", 1, 0
        args.ks = "1,4" if args.ks == "1,4,8" else args.ks
    if args.engines_only:
        return build_engines(args)
    report = run_gpu_check(args)
    json_path, md_path = write_report(report, args.out)
    if "skipped_all" in report:
        print(f"gpu check skipped: {report['skipped_all']}", file=sys.stderr)
    print(f"wrote {json_path} and {md_path}")
    return 1 if "skipped_all" in report else 0


if __name__ == "__main__":
    sys.exit(main())
