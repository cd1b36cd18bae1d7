#!/usr/bin/env bash
# The fidelity ground truth on one accelerator, in about ten minutes: two layouts at the 100M scale,
# bf16, 20M tokens a run. Needs jax (with its GPU plugin), flax, optax, orbax-checkpoint, numpy, scipy,
# pandas and pyarrow; not Optuna or Ray (matplotlib is optional: without it no PNG is drawn).
#
# The device cannot reach a package registry, so bring the corpus cache along: run `make data` here
# with COMPOSER_DATA_DIR=.cache/corpora and carry `.cache` with the working tree.
#
#   FIDELITY_GPU_DRY=1 bash experiments/fidelity_gpu.sh   # same command at the tiny scale, on CPU, seconds
#
# It runs the fair recipe of `composer fidelity` (learning rate chosen per layout from the default grid
# on a dev split, sizes matched to the Llama shape): three runs per layout. Any further argument is
# passed to `composer fidelity`, e.g. `--lrs 1e-3,2e-3 --match flops --untied-head`.
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSER_DATA_DIR="${COMPOSER_DATA_DIR:-$PWD/.cache/corpora}"
OUT_DIR="${OUT:-runs}"
PY="${PYTHON:-python3}"

"$PY" - <<'PY'
import jax
print("backend", jax.default_backend(), jax.devices())
PY

if [[ "${FIDELITY_GPU_DRY:-0}" == "1" ]]; then
  ARGS=(--scale tiny --dtype float32 --batch-size 4 --seq-len 128 --tokens 4k --val-windows 8)
else
  ARGS=(--scale 100M --dtype bfloat16 --batch-size 16 --seq-len 1024 --tokens 20M --val-windows 512)
fi
start=$(date +%s)
"$PY" -m cli fidelity --name gpu-fidelity --runs-dir "$OUT_DIR" "${ARGS[@]}" --seeds 1 \
  --patterns AMAMAM,AAAMMM --winner AAAMMM --proxy-from experiments/results/mad_discrimination.jsonl \
  --proxy-seeds 0 --no-progress "$@"
echo "wall $(( $(date +%s) - start )) s"
"$PY" - "$OUT_DIR/gpu-fidelity/fidelity.parquet" <<'PY'
import sys
import pandas as pd
cols = ["layout", "target_pattern", "params", "param_ratio", "lr", "dev_loss", "tokens", "val_loss", "val_bpb",
        "tokens_per_s", "compile_s", "wall_s"]
print(pd.read_parquet(sys.argv[1])[cols].to_string(index=False))
PY
