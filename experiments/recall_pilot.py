"""A multi-query recall pilot (experiments/results/proxy_variants.md): does a harder in-context recall
learn inside the default proxy's cost line? ``python experiments/recall_pilot.py 64 128 200 AAAAAA,SSSSSS,MMMMMM``
(vocab size, sequence length, steps, layouts): prints each layout's score (area under the test-accuracy
curve) and seconds."""

import dataclasses
import sys
import time

from composer.mad.evaluate import Evaluator
from composer.mad.protocol import CPU
from composer.mad.tasks.in_context_recall import InContextRecallConfig

V, T, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cfg = InContextRecallConfig(vocab_size=V, seq_len=T, train_on_scored_only=True,
                            num_train_examples=steps * 32, num_test_examples=512)
p = dataclasses.replace(CPU, name="recall-pilot", settings={"in_context_recall": cfg},
                        steps={"in_context_recall": steps}, eval_every={"in_context_recall": 50},
                        selection={"in_context_recall": "auc"})
ev = Evaluator(p)
for pat in sys.argv[4].split(","):
    t = time.time()
    r = ev.evaluate(pat, seed=0)
    print(pat, V, T, steps, round(r.score, 4), f"{time.time()-t:.1f}s", flush=True)
