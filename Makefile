# Composer: every target works on a fresh clone; `make test` and `make search` install first if needed.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
export JAX_PLATFORMS ?= cpu
export XLA_PYTHON_CLIENT_PREALLOCATE ?= false
# Test processes (pytest-xdist; 0 runs in this process). Whole files go to one worker (--dist loadfile),
# so a module's fixture (a Ray cluster, a trained model) is built once.
TEST_WORKERS ?= 2

.PHONY: install test test-slow lint search demo bench clean data fidelity fidelity-head fidelity-grid published published-d24 published-steps

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# The CPU build of PyTorch (for optuna.GPSampler and the throughput benchmark), pinned so pip
	# takes it rather than a multi-GB CUDA build.
	$(BIN)/python -m pip install -q 'torch==2.13.0'
	$(BIN)/python -m pip install -q -e '.[dev,ray,gp,dashboard,postgres,hf]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q --timeout=600 -n $(TEST_WORKERS) --dist loadfile tests

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q --timeout=3600 -n $(TEST_WORKERS) --dist loadfile -m slow tests

lint: $(STAMP)
	$(BIN)/ruff check primitives composer scaling search cli experiments tests

search: $(STAMP)
	$(BIN)/composer search --budget 200 --scale 350M

# The five-minute quick start (README): every 4-layer A/M layout under text-short (the default proxy
# text at a third of its updates, so the quick start stays within minutes; fewer steps learn nothing: a
# search at chance level says so), a few seed rungs, two fresh seeds for the winner and Llama; then the
# commands that read a run.
demo: $(STAMP)
	$(BIN)/composer search --name demo --depth 4 --budget 24 --final-seeds 2 --scale 350M --protocol text-short
	$(BIN)/composer leaderboard demo --top 5
	$(BIN)/composer report demo
	$(BIN)/composer export demo --top 1 --format nemotron-h

data: $(STAMP)
	$(BIN)/composer data

# The committed ground-truth study under the fair recipe (docs/fidelity.md, "The fair recipe"): every
# layout's peak learning rate chosen from 5e-4,1e-3,2e-3 (one more past an edge) on a dev split of the
# training books, sizes matched to the small scale's Llama shape (non-embedding parameters, +-2 %),
# 2 seeds at 1M tokens (the grid on seed 0, seed 1 at its rate), then the six closest contenders at
# 4M tokens on both seeds, then the one pair whose order turned between 1M and 4M (MMMMAA, AAMMMM)
# at 16M on seed 0 (--ladder; about 75 minutes a run here; its pair's interval takes the pooled seed SD
# of the 4M rung, which has both seeds); contender pairs reported with pooled intervals.
# The contenders come first so a study stopped part-way has the decisive pairs. MMMMMA is the winner
# of `make search` under the capacity proxy, MMMAAA under text-short, MMAAAM under text (attention in
# query blocks of 128) and AMAAAM under text (blocks of 64). Resumable: run it again to continue; a fresh clone continues from the
# committed tables. Its report is copied to experiments/results/fidelity_fair.* whenever it stops.
# (The earlier study at one rate for all, unmatched, is kept as experiments/results/fidelity_small.*.)
FIDELITY_CONTENDERS ?= AMAMAM,MAMAMA,MMMMMA,SMSMAM,AAMMMM,MMMMAA
FIDELITY_ARGS ?= --name fidelity-fair --scale small --tokens 1M --seeds 2 \
	--patterns $(FIDELITY_CONTENDERS),GMGMAM,AAAMMM,MAAMMM,AMMAMM,AAAAAA,AMMMMM,MMMMMM,MMMAAA,MMAAAM,AMAAAM \
	--winner MMMMMA --proxy-from experiments/results/proxy_capacity.jsonl --proxy-protocol capacity --proxy-seeds 3 \
	--long-patterns $(FIDELITY_CONTENDERS) --long-tokens 4M --long-seeds 2 \
	--ladder 16M:AAMMMM,MMMMAA:1 \
	--pairs MAMAMA:AMAMAM,MMMMAA:AAMMMM,MMMMMA:AMAMAM,SMSMAM:AMAMAM,MMMAAA:AMAMAM,MMAAAM:AMAMAM,AMAAAM:AMAMAM
fidelity: $(STAMP)
	$(BIN)/python experiments/fidelity_publish.py --restore runs/fidelity-fair experiments/results/fidelity_fair
	$(BIN)/composer fidelity $(FIDELITY_ARGS); status=$$?; \
	$(BIN)/python experiments/fidelity_publish.py runs/fidelity-fair experiments/results/fidelity_fair; \
	exit $$status

# The head check of the fair study (docs/fidelity.md): AMAMAM and MAMAMA with an LM head of their own,
# under the same fair recipe (their own tuned rate), to compare with the tied runs of fidelity-fair: is
# the MLP-first effect about the head, the learning rate, or neither?
fidelity-head: $(STAMP)
	$(BIN)/python experiments/fidelity_publish.py --restore runs/fidelity-head experiments/results/fidelity_head
	$(BIN)/composer fidelity --name fidelity-head --scale small --tokens 1M --seeds 2 --untied-head \
		--patterns AMAMAM,MAMAMA --proxy-seeds 0 --pairs MAMAMA:AMAMAM; status=$$?; \
	$(BIN)/python experiments/fidelity_publish.py runs/fidelity-head experiments/results/fidelity_head; \
	exit $$status

# The grid check of the fair study (docs/fidelity.md): the fair study tunes each layout's rate once, on
# seed 0 at 1M tokens, and trains later seeds and longer budgets at that rate. This check trains, at
# 4M tokens on seed 0, the two grid neighbours of each 1M-chosen rate on the contender pair whose order
# turned between 1M and 4M (AAMMMM: 2.5e-4 -> 1.25e-4, 5e-4; MMMMAA: 2e-3 -> 1e-3, 4e-3), and reads the
# chosen rate's own 4M run from the fair study (the same run: seed, recipe and dev split). A neighbour
# that wins on the edge of the rates tried gets the next rate out in a study of its own (AAMMMM-up:
# 1e-3, after 5e-4 beat 2.5e-4; MMMMAA-down: 5e-4, after 1e-3 beat 2e-3). Entries are
# STUDY:LAYOUT:RATES, one study each (fidelity-grid4m-STUDY);
# experiments/grid_check.py puts every rate of a layout side by side: is the rate chosen at 1M still
# the best at 4M, and does the pair keep its order at each layout's best 4M rate?
GRID_CHECK ?= AAMMMM:AAMMMM:0.000125,0.0005 MMMMAA:MMMMAA:0.001,0.004 AAMMMM-up:AAMMMM:0.001 \
	MMMMAA-down:MMMMAA:0.0005
fidelity-grid: $(STAMP)
	status=0; for entry in $(GRID_CHECK); do \
		study=$${entry%%:*}; rest=$${entry#*:}; layout=$${rest%%:*}; lrs=$${rest#*:}; name=fidelity-grid4m-$$study; \
		$(BIN)/python experiments/fidelity_publish.py --restore runs/$$name experiments/results/$$name; \
		$(BIN)/composer fidelity --name $$name --scale small --tokens 4M --seeds 1 --patterns $$layout \
			--lrs $$lrs --lr-extend 0 --proxy-seeds 0 || status=$$?; \
		$(BIN)/python experiments/fidelity_publish.py runs/$$name experiments/results/$$name; \
	done; \
	$(BIN)/python experiments/grid_check.py experiments/results/fidelity_fair experiments/results/fidelity_grid4m \
		$(foreach e,$(GRID_CHECK),experiments/results/fidelity-grid4m-$(firstword $(subst :, ,$(e)))) || status=$$?; \
	exit $$status

# The committed published judge (docs/published.md): every protocol on the published sets, proxy layouts
# mapped to 12 layers with matched parameters (Press et al. at their published depth), 2 seeds.
# `capacity` on every set but press2020_param_matched (42 more evaluations at 29-38 layers, left out for
# cost); the costlier `cpu`, `text` and `mix` (from the stored parts) on the mapped sets (PUBLISHED_FEW),
# not on the 29-38-layer orderings of Press et al.
# Resumable: a fresh clone continues from the committed rows; the report is copied to
# experiments/results/published_* whenever it stops, and `text-recall` (from the stored `text` and `cpu`
# rows, experiments/recall_composite.py) is judged again from them.
PUBLISHED_SETS ?= bae2025_1b,bae2025_350m,samba2025_position,samba2025_layers_438m,samba2025_layers_1.3b,mamba2_2024_num_attention,mamba2_2024_hybrids_2.7b,kimi2025_ratio,press2020_orderings,gated_deltanet2025_1.3b
PUBLISHED_FEW ?= bae2025_1b,bae2025_350m,samba2025_position,samba2025_layers_438m,samba2025_layers_1.3b,mamba2_2024_num_attention,mamba2_2024_hybrids_2.7b,kimi2025_ratio,gated_deltanet2025_1.3b
# `text-lr` (a candidate judged 2026-12-07) on the sets it was run on: the held-out sets where `text`
# falls short of the rule of thumb, Samba's position set and Gated DeltaNet's set (docs/published.md).
PUBLISHED_TEXT_LR ?= kimi2025_ratio,samba2025_position,mamba2_2024_num_attention,gated_deltanet2025_1.3b
# `text-noconv` (a candidate judged 2026-12-07): the two held-out sets `text` misses, then Samba's and Bae et al.'s.
PUBLISHED_TEXT_NOCONV ?= kimi2025_ratio,mamba2_2024_num_attention,samba2025_position,samba2025_layers_1.3b,samba2025_layers_438m,bae2025_1b,bae2025_350m,gated_deltanet2025_1.3b
# `text-short` (a candidate judged 2026-12-02) on the mapped sets but Mamba-2's 2.7B hybrids.
PUBLISHED_TEXT_SHORT ?= bae2025_1b,bae2025_350m,samba2025_position,samba2025_layers_438m,samba2025_layers_1.3b,mamba2_2024_num_attention,kimi2025_ratio,gated_deltanet2025_1.3b
# `text-long` (a candidate judged 2026-12-07): Kimi Linear's set, where its judgement stopped by its rule.
PUBLISHED_TEXT_LONG ?= kimi2025_ratio
PUBLISHED_ARGS ?= --seeds 2 --depth 12 --workers 2 --name published --no-progress
published: $(STAMP)
	mkdir -p runs/published
	test -f runs/published/published.parquet || cp experiments/results/published.parquet runs/published/ 2>/dev/null || true
	test -f runs/published/plan.json || cp experiments/results/published_plan.json runs/published/plan.json 2>/dev/null || true
	$(BIN)/composer fidelity --published $(PUBLISHED_SETS) --protocol capacity $(PUBLISHED_ARGS) && \
	$(BIN)/composer fidelity --published $(PUBLISHED_FEW) --protocol text,mix,cpu $(PUBLISHED_ARGS) && \
	$(BIN)/composer fidelity --published $(PUBLISHED_TEXT_SHORT) --protocol text-short $(PUBLISHED_ARGS) && \
	$(BIN)/composer fidelity --published $(PUBLISHED_TEXT_LR) --protocol text-lr $(PUBLISHED_ARGS) && \
	$(BIN)/composer fidelity --published $(PUBLISHED_TEXT_NOCONV) --protocol text-noconv $(PUBLISHED_ARGS) && \
	$(BIN)/composer fidelity --published $(PUBLISHED_TEXT_LONG) --protocol text-long $(PUBLISHED_ARGS); status=$$?; \
	cp runs/published/published.parquet runs/published/published.md runs/published/published-*.png \
		experiments/results/; \
	cp runs/published/plan.json experiments/results/published_plan.json; \
	cp runs/published/summary.json experiments/results/published_summary.json; \
	$(BIN)/python experiments/recall_composite.py > /dev/null || status=$$?; exit $$status

# A published-judge study of its own, resumable from its committed rows: $(1) the study's name under
# runs/, $(2) its prefix under experiments/results/, $(3) the `composer fidelity` arguments. The report
# is copied back to the results whenever the study stops; `status` keeps the judge's exit code.
define published_study
mkdir -p runs/$(1); \
test -f runs/$(1)/published.parquet || cp $(2).parquet runs/$(1)/published.parquet 2>/dev/null || true; \
test -f runs/$(1)/plan.json || cp $(2)_plan.json runs/$(1)/plan.json 2>/dev/null || true; \
$(BIN)/composer fidelity $(3) --workers 2 --name $(1) --no-progress || status=$$?; \
cp runs/$(1)/published.parquet $(2).parquet; cp runs/$(1)/published.md $(2).md; \
cp runs/$(1)/plan.json $(2)_plan.json; cp runs/$(1)/summary.json $(2)_summary.json; \
for png in runs/$(1)/published-*.png; do cp $$png $(2)-text.png; done
endef

# `text` on Mamba-2's attention-count set mapped to 24 layers, where the 12-layer mapping's bound (+0.84)
# no longer keeps a proxy below the rule of thumb (+0.93): is the held-out miss the judge's depth or the proxy?
published-d24: $(STAMP)
	status=0; $(call published_study,published-d24,experiments/results/published_d24,--published \
		mamba2_2024_num_attention --protocol text --seeds 2 --depth 24); exit $$status

# Pilots, not candidates: `text` at 3x and 9x its updates on Kimi Linear's set (docs/published.md, "Longer
# training"), each a study of its own.
PUBLISHED_STEPS ?= 3 9
published-steps: $(STAMP)
	status=0; for k in $(PUBLISHED_STEPS); do \
		$(call published_study,published-steps$${k},experiments/results/published_steps$${k},--published \
			kimi2025_ratio --protocol text --steps-scale $${k} --seeds 2 --depth 12); \
	done; exit $$status

bench: $(STAMP)
	$(BIN)/python experiments/bench/train_throughput.py
	$(BIN)/python experiments/bench/kernels.py
	$(BIN)/python experiments/bench/evaluator.py
	$(BIN)/python experiments/bench/cli_startup.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
