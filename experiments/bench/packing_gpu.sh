#!/usr/bin/env bash
# The packing benchmark on one accelerator, in under five minutes (no Optuna or Ray needed: only JAX,
# Flax, Optax and this repository). Sequential runs are measured up to K = 4; larger packs are compared
# with that per-evaluation rate (marked "estimated_from_k" in the results).
#
#   bash experiments/bench/packing_gpu.sh            # writes experiments/bench/results/packing_gpu.json
#
# What the device needs: on CPU a capacity member (6 layers, d = 64, float32, its data included)
# added about 0.28 GiB of peak memory (0.84 GiB alone, 2.83 GiB at K = 8), so K = 64 needs of the
# order of 18 GiB: one H200 holds it. bf16 compute is not wired for the MAD trainer (float32 only);
# it would roughly halve activations and speed the matmuls.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XLA_PYTHON_CLIENT_PREALLOCATE=false
python - <<'PY'
import jax
print("devices:", jax.devices())
PY
timeout 280 python experiments/bench/packing.py --protocols capacity --packs 1,4,16,64 --sequential-max 4 \
    --out experiments/bench/results/packing_gpu.json
