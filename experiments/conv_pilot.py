"""A pilot: how much of the ``text`` proxy's preference for Mamba-2 (``S``) and Gated DeltaNet (``G``)
over attention is their short causal convolution (``d_conv`` 4 taps before the recurrence)?

Scores layouts under ``text`` (seed as given) with the convolution of every ``S`` and ``G`` layer at
its default width and at width 1 (one tap: a per-channel scale, no mixing over time), and prints each
score and its wall time (experiments/results/proxy_variants.md, 2026-12-07 fourth)::

    python experiments/conv_pilot.py SMSMSM,GMGMGM 4,1 0
"""

import sys
import time

from search.evaluators import EvaluatorConfig, normalize_result
from search.evaluators.text import TextEvaluator, TextProtocol


def main(layouts: list[str], widths: list[int], seed: int) -> None:
    config = EvaluatorConfig(protocol="text", seed=seed)
    for width in widths:
        ev = TextEvaluator(config, TextProtocol(layer_options=(("S", (("d_conv", width),)),
                                                               ("G", (("d_conv", width),)))))
        for pattern in layouts:
            t = time.time()
            e = normalize_result(ev(pattern, seed), ev.protocol)
            print(f"{pattern} d_conv={width} seed={seed} score={e.score:.4f} {time.time() - t:.0f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1].split(","), [int(w) for w in sys.argv[2].split(",")], int(sys.argv[3]))
