"""A multi-query recall pilot (experiments/results/proxy_variants.md): does a harder in-context recall
learn inside the default proxy's cost line, and does it order layouts by their attention?

    python experiments/recall_pilot.py 64 128 200 AAAAAA,SSSSSS,MMMMMM [SEEDS]

(vocabulary size, sequence length, steps, layouts, optional comma-separated seeds, default 0): prints
each layout's score (the area under the test-accuracy curve, evaluations every 50 steps) and seconds,
at the ``cpu`` protocol's widths and trainer."""

import dataclasses
import sys
import time

from composer.mad.evaluate import Evaluator
from composer.mad.protocol import CPU
from composer.mad.tasks.in_context_recall import InContextRecallConfig

V, T, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
seeds = [int(s) for s in sys.argv[5].split(",")] if len(sys.argv) > 5 else [0]
cfg = InContextRecallConfig(vocab_size=V, seq_len=T, train_on_scored_only=True,
                            num_train_examples=steps * 32, num_test_examples=512)
p = dataclasses.replace(CPU, name="recall-pilot", settings={"in_context_recall": cfg},
                        steps={"in_context_recall": steps}, eval_every={"in_context_recall": 50},
                        selection={"in_context_recall": "auc"})
ev = Evaluator(p)
for seed in seeds:
    for pat in sys.argv[4].split(","):
        t = time.time()
        r = ev.evaluate(pat, seed=seed)
        print(pat, seed, V, T, steps, round(r.score, 4), f"{time.time()-t:.1f}s", flush=True)
