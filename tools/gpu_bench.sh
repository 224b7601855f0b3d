#!/usr/bin/env bash
# The GPU check (issue 10): encoders (tiny, mobile, vit_b) x runtimes (torch fp32, torch fp16,
# onnxruntime, TensorRT where importable) x K in {1, 4, 8}, fp16 checked against fp32, and PerSAM's
# official per-object loop, in one run of at most 8 minutes. Writes gpu_bench.json and gpu_bench.md.
#
#   tools/gpu_bench.sh [--dry-run] [--out DIR] [extra options of perovss_ros.bench.core_gpu]
#
# --dry-run checks the whole script on the CPU (tiny encoder, small frames, one frame per K).
# Needs CUDA PyTorch, numpy, OpenCV and segment-anything; no ROS. PYTHON picks the interpreter.
# TensorRT engines are built first, outside the 8 minutes (minutes per model on a device's first run;
# cached in $PEROVSS_ENGINE_DIR or ~/.cache/perovss/engines, so later runs find them).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
out="."
dry_run=0
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --dry-run) dry_run=1; args+=(--dry-run); shift ;;
    *) args+=("$1"); shift ;;
  esac
done

export PYTHONPATH="${here}${PYTHONPATH:+:${PYTHONPATH}}"
if [[ "${dry_run}" == 0 ]]; then
  "${python}" -m perovss_ros.bench.core_gpu --engines-only "${args[@]}"
fi
# 420 s of configurations plus the last one and the report: within 8 minutes; the hard stop is a
# backstop that still writes what was measured.
exec timeout --signal=INT 480 "${python}" -m perovss_ros.bench.core_gpu --out "${out}" --budget-s 420 "${args[@]}"
