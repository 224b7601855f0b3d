#!/usr/bin/env bash
# Container entrypoint: ROS environment, the shipped Fast DDS profile, and TensorRT engines built on
# first start into the engines volume (they are specific to this GPU and TensorRT, so they cannot ship
# in the image). Then runs the command (default: the perovss launch file).
#
# PEROVSS_MODEL (default mobile), PEROVSS_RUNTIME (default auto), PEROVSS_PRECISION (default fp16):
# engines are built when the runtime is tensorrt or auto, TensorRT can run here and the engine
# directory holds none yet. PEROVSS_RANDOM_WEIGHTS=1 builds them on seeded random weights (benchmarks).
set -eo pipefail

if [[ -f /ws/install/setup.bash ]]; then
  # shellcheck disable=SC1091
  . /ws/install/setup.bash
fi
export FASTDDS_DEFAULT_PROFILES_FILE="${FASTDDS_DEFAULT_PROFILES_FILE:-/ws/src/perovss/perovss_ros/ros/fastdds_large_images.xml}"
export PEROVSS_ENGINE_DIR="${PEROVSS_ENGINE_DIR:-/root/.cache/perovss/engines}"

model="${PEROVSS_MODEL:-mobile}"
runtime="${PEROVSS_RUNTIME:-auto}"
precision="${PEROVSS_PRECISION:-fp16}"
if [[ "${runtime}" == "tensorrt" || "${runtime}" == "auto" ]] \
   && ! compgen -G "${PEROVSS_ENGINE_DIR}/*.engine" > /dev/null \
   && python3 -c "from perovss_ros.core.sam.tensorrt_engines import tensorrt_problem as p; raise SystemExit(p() is not None)"; then
  echo "perovss: no TensorRT engines in ${PEROVSS_ENGINE_DIR}; building them for ${model} (${precision}), once" >&2
  extra=()
  [[ "${PEROVSS_RANDOM_WEIGHTS:-0}" == "1" ]] && extra+=(--random-weights)
  if ! python3 -m perovss_ros.cli engines build --model "${model}" --precision "${precision}" "${extra[@]}"; then
    # The node still starts: runtime auto falls back (onnxruntime or torch) if the build keeps failing.
    echo "perovss: building the engines failed (see above); starting anyway" >&2
  fi
fi

exec "$@"
