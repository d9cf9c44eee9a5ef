#!/usr/bin/env bash
# The GPU measurement in one go, for a machine with a GPU (and no broker needed):
#
#   bash benchmarks/gpu_scoring.sh OUT_DIR ARTIFACT DATA [ARTIFACT DATA ...]
#
# For each artifact and its data, benchmarks/scoring_paths.py on every Keras backend this
# Python can import (tensorflow, jax, torch): numpy on the CPU against Keras' compiled function
# on the backend's GPU, by batch size and as the worker's decode-and-score stage, with how far
# the scores differ.  Writes OUT_DIR/scoring_<artifact>_<backend>.json and prints the tables
# (progress and errors: OUT_DIR/stderr.log).  BACKENDS="jax" limits the backends tried;
# SECONDS_PER_RUN and REPEATS are scoring_paths.py's --seconds and --repeats.
set -euo pipefail
out=$1
shift
mkdir -p "$out"
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || echo "no nvidia-smi"
while [ $# -ge 2 ]; do
  artifact=$1 data=$2
  shift 2
  for backend in ${BACKENDS:-tensorflow jax torch}; do
    "$py" -c "import $backend" 2>/dev/null || { echo "== $backend: not installed, skipped"; continue; }
    echo "== $(basename "$artifact") on keras-$backend"
    KERAS_BACKEND=$backend "$py" "$here/scoring_paths.py" --artifact "$artifact" --data "$data" \
      --seconds "${SECONDS_PER_RUN:-1}" --repeats "${REPEATS:-3}" \
      --json "$out/scoring_$(basename "$artifact")_$backend.json" 2>>"$out/stderr.log" \
      || echo "== $(basename "$artifact") on keras-$backend FAILED (exit $?)"
  done
done
