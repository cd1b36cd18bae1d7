#!/usr/bin/env bash
# Does `text`'s order on Kimi Linear's ratio set turn with training? One accelerator, a few minutes.
#
# On 2 CPU cores `text` was judged on this set at 1x, 3x and 9x its 300 updates
# (experiments/results/published*.md, docs/published.md, "Longer training"): attention catches up
# with the Gated DeltaNet hybrids as updates grow (at 27x, one seed of two layouts: pure attention
# 0.0009 behind the 3:1 hybrid), but the hybrids stay within seed noise of each other, and the whole
# set on several seeds at 27x or 81x costs hours there. This script runs the same judgement (the same protocol, mapped depth, seeds and
# float32 proxy as the CPU runs) at STEPS_SCALE x the updates. Attention and the recurrent layers run
# other kernels on an accelerator, so compare its gaps with the CPU's, not digits past the fourth
# decimal (float rounding alone moved a CPU `text` score by up to 0.0002 between two attention blocks).
# Needs jax (with its GPU plugin), flax, optax, numpy, scipy, pandas and pyarrow; not Optuna or Ray.
#
# The device cannot reach a package registry, so bring the corpus cache along: run `make data` here
# with COMPOSER_DATA_DIR=.cache/corpora and carry `.cache` with the working tree.
#
#   PUBLISHED_GPU_DRY=1 bash experiments/published_gpu.sh   # the same judgement at 6 updates, on CPU
#   STEPS_SCALE=81 SEEDS=2 bash experiments/published_gpu.sh
#
# Any further argument is passed to `composer fidelity`.
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSER_DATA_DIR="${COMPOSER_DATA_DIR:-$PWD/.cache/corpora}"
OUT_DIR="${OUT:-runs}"
PY="${PYTHON:-python3}"
SCALE="${STEPS_SCALE:-27}"
SEEDS="${SEEDS:-1}"
if [[ "${PUBLISHED_GPU_DRY:-0}" == "1" ]]; then
  SCALE=0.02
fi
NAME="published-gpu-steps${SCALE}"

"$PY" - <<'PY'
import jax
print("backend", jax.default_backend(), jax.devices())
PY

start=$(date +%s)
"$PY" -m cli fidelity --published kimi2025_ratio --protocol text --steps-scale "$SCALE" --seeds "$SEEDS" \
  --depth 12 --workers 1 --name "$NAME" --runs-dir "$OUT_DIR" --no-progress "$@"
echo "wall $(( $(date +%s) - start )) s"
"$PY" - "$OUT_DIR/$NAME/published.parquet" <<'PY'
import sys
import pandas as pd
d = pd.read_parquet(sys.argv[1])
print(d.groupby("layout").agg(score=("score", "mean"), seeds=("seed", "count"), wall_s=("wall_s", "median"),
                              device=("device", "first")).sort_values("score", ascending=False).to_string())
PY
