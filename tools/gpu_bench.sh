#!/usr/bin/env bash
# The GPU check (issue 10): encoders (tiny, mobile, vit_b) x runtimes (torch fp32, torch fp16,
# onnxruntime, TensorRT where importable) x K in {1, 4, 8}, fp16 checked against fp32, and PerSAM's
# official per-object loop, in one run of at most 8 minutes. Writes gpu_bench.json and gpu_bench.md.
#
#   tools/gpu_bench.sh [--dry-run] [--out DIR] [extra options of perovss_ros.bench.core_gpu]
#
# --dry-run checks the whole script on the CPU (tiny encoder, small frames, one frame per K).
# Needs CUDA PyTorch, numpy, OpenCV and segment-anything; no ROS. PYTHON picks the interpreter.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
out="."
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --dry-run) args+=(--dry-run); shift ;;
    *) args+=("$1"); shift ;;
  esac
done

export PYTHONPATH="${here}${PYTHONPATH:+:${PYTHONPATH}}"
# Graphs and engines of this check stay beside its report, not in the user's caches.
export PEROVSS_GRAPH_DIR="${PEROVSS_GRAPH_DIR:-${out}/graphs}"
export PEROVSS_ENGINE_DIR="${PEROVSS_ENGINE_DIR:-${out}/engines}"
# 480 s of configurations plus start-up and the report: within 8 minutes; the hard stop is a backstop.
exec timeout --signal=INT 480 "${python}" -m perovss_ros.bench.core_gpu --out "${out}" --budget-s 420 "${args[@]}"
