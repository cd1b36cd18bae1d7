#!/usr/bin/env bash
# The packing benchmark on one accelerator, in under five minutes (no Optuna or Ray needed: only JAX,
# Flax, Optax and this repository). Sequential runs are measured up to K = 4; larger packs are compared
# with that per-evaluation rate (marked "estimated_from_k" in the results).
#
#   bash experiments/bench/packing_gpu.sh            # writes experiments/bench/results/packing_gpu.json
#
# What the device needs: K up to 64 members of a 6-layer d = 64 candidate (capacity) is about
# 64 x 0.1 GiB of activations and optimiser state, well inside one H200; bf16 compute (not yet wired
# for the MAD trainer, which runs float32) would halve it and speed the matmuls.
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
