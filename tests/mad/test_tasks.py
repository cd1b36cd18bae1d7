"""The six MAD task generators against docs/mad_tasks.md: forms, statistics, and every knob."""

import ast
import dataclasses
import itertools
import pathlib

import numpy as np
import pytest

import composer.mad as mad
from composer.mad import IGNORE, TASKS
from composer.mad import CompressionConfig as C
from composer.mad import FuzzyInContextRecallConfig as FR
from composer.mad import InContextRecallConfig as CR
from composer.mad import MemorizationConfig as M
from composer.mad import NoisyInContextRecallConfig as NR
from composer.mad import SelectiveCopyingConfig as SC

NAMES = list(TASKS)
SMALL = {"in_context_recall": CR(vocab_size=8, seq_len=12),
         "noisy_in_context_recall": NR(vocab_size=12, noise_vocab_size=4, frac_noise=0.4,
                                       seq_len=12),
         "fuzzy_in_context_recall": FR(vocab_size=10, seq_len=24, k_motif=2, v_motif=2),
         "selective_copying": SC(vocab_size=8, seq_len=12, num_tokens_to_copy=3),
         "compression": C(vocab_size=8, seq_len=12),
         "memorization": M(vocab_size=8, seq_len=12)}
RECALL = ["in_context_recall", "noisy_in_context_recall", "fuzzy_in_context_recall"]


def gen(cfg, n=64, seed=0, training=False):
    return mad.generate(cfg, n, seed, training=training)


def full_tokens(batch):
    """The sequence before the shift: inputs plus the last training target."""
    return np.concatenate([batch.inputs, batch.targets[:, -1:]], axis=1)


def runs(tokens, num_keys, pad):
    """Alternating key / value runs of a fuzzy-recall sequence (pads dropped)."""
    kept = [int(t) for t in tokens if t != pad]
    return [tuple(g) for _, g in itertools.groupby(kept, key=lambda t: t < num_keys)]


def expected_recall_labels(tokens, nsv):
    """Test labels of one (noisy) recall sequence, walked pair by pair as §2/§3 describe."""
    labels, table = np.full(len(tokens) - 1, IGNORE), {}
    for i in range(0, len(tokens) - 2, 2):
        k, v = tokens[i], tokens[i + 1]
        if k >= nsv:
            assert v >= nsv, "a noise pair has two noise tokens"
            continue
        if k in table:
            assert table[k] == v, "a key keeps its value within a sequence"
            labels[i] = v
        table[k] = v
    assert table.get(tokens[-2]) == tokens[-1], "the probe re-queries a context key"
    labels[-1] = tokens[-1]
    return labels


def noise_pair_fraction(cfg, n=2000):
    tokens = full_tokens(gen(cfg, n, training=True))
    nsv = cfg.vocab_size - cfg.noise_vocab_size
    return (tokens[:, 0:-2:2] >= nsv).mean()


# ---- shapes, ranges, determinism --------------------------------------------------------------

@pytest.mark.parametrize("preset", ["paper", "cpu", "small"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("training", [True, False])
def test_shapes_dtypes_ranges(name, preset, training):
    cfg = {"paper": mad.PAPER_SETTINGS, "cpu": mad.CPU_SETTINGS, "small": SMALL}[preset][name]
    b = gen(cfg, 32, training=training)
    assert b.inputs.shape == b.targets.shape == (32, TASKS[name].input_length(cfg))
    assert b.inputs.dtype == b.targets.dtype == np.int32
    assert b.inputs.min() >= 0 and b.inputs.max() < TASKS[name].vocab_size(cfg)
    scored = b.targets[b.targets != IGNORE]
    assert scored.size and scored.min() >= 0 and scored.max() < cfg.vocab_size
    assert b.task == name and b.training is training and len(b) == 32


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed(name):
    cfg = SMALL[name]
    a, b, c = gen(cfg, seed=3), gen(cfg, seed=3), gen(cfg, seed=4)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)
    assert not np.array_equal(a.inputs, c.inputs)


@pytest.mark.parametrize("name", NAMES)
def test_splits_sizes_and_independence(name):
    cfg = dataclasses.replace(SMALL[name], num_train_examples=40, num_test_examples=24)
    train, test = mad.generate_split(cfg, "train", 0), mad.generate_split(cfg, "test", 0)
    assert len(train) == 40 and train.training and len(test) == 24 and not test.training
    np.testing.assert_array_equal(train.inputs, mad.generate_split(cfg, "train", 0).inputs)
    assert not np.array_equal(train.inputs[:24], test.inputs)
    bigger = dataclasses.replace(cfg, num_train_examples=80, num_test_examples=48)
    assert len(mad.generate_split(bigger, "train", 0)) == 80
    assert len(mad.generate_split(bigger, "test", 0)) == 48


def test_no_task_module_imports_jax():
    # The task generators are numpy only; the proxy evaluator beside them is what needs JAX.
    root = pathlib.Path(mad.__file__).parent / "tasks"
    assert list(root.glob("*.py"))
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] in ("jax", "jaxlib", "primitives") for n in names), path


# ---- the mean number of scored test positions at the baselines (§11.5) ------------------------

@pytest.mark.parametrize("name,expected,tol", [
    ("in_context_recall", 56.00, 0.05), ("noisy_in_context_recall", 43.57, 0.3),
    ("fuzzy_in_context_recall", 4.37, 0.2), ("selective_copying", 16, 0),
    ("compression", 32, 0), ("memorization", 16, 0)])
def test_mean_scored_at_baseline(name, expected, tol):
    b = gen(mad.PAPER_SETTINGS[name], 2000, seed=1)
    assert abs(b.num_scored.mean() - expected) <= tol


# ---- train vs test target forms (§1.1) --------------------------------------------------------

@pytest.mark.parametrize("name", RECALL)
def test_recall_training_targets_are_the_full_shift(name):
    b = gen(SMALL[name], training=True)
    np.testing.assert_array_equal(b.targets[:, :-1], b.inputs[:, 1:])
    assert (b.targets != IGNORE).all()


@pytest.mark.parametrize("name", ["in_context_recall", "noisy_in_context_recall"])
def test_recall_test_targets_score_a_subset_of_the_same_sequences(name):
    train, test = gen(SMALL[name], training=True), gen(SMALL[name], training=False)
    np.testing.assert_array_equal(train.inputs, test.inputs)
    np.testing.assert_array_equal(test.targets[test.scored], train.targets[test.scored])
    assert test.scored.mean() < 0.5


@pytest.mark.parametrize("name", RECALL)
def test_train_on_scored_only_trains_on_test_form_targets(name):
    cfg = dataclasses.replace(SMALL[name], train_on_scored_only=True)
    train = gen(cfg, training=True)
    assert train.scored.mean() < 0.5 and (train.num_scored >= 1).all()
    if name != "fuzzy_in_context_recall":  # fuzzy test sampling differs (fixed key size)
        test = gen(cfg, training=False)
        np.testing.assert_array_equal(train.targets, test.targets)
        np.testing.assert_array_equal(train.targets, gen(SMALL[name]).targets)


@pytest.mark.parametrize("name", ["selective_copying", "compression", "memorization"])
def test_training_flag_does_not_change_the_other_tasks(name):
    a, b = gen(SMALL[name], training=True), gen(SMALL[name], training=False)
    np.testing.assert_array_equal(a.inputs, b.inputs)
    np.testing.assert_array_equal(a.targets, b.targets)


# ---- task structure (the worked examples of §2-§7) --------------------------------------------

def test_in_context_recall_scores_requeried_keys_and_probe():
    cfg = CR(vocab_size=8, seq_len=12)
    tokens, test = full_tokens(gen(cfg, 200, training=True)), gen(cfg, 200)
    assert tokens[:, 0::2].max() < 4 and tokens[:, 1::2].min() >= 4  # keys 0-3, values 4-7
    shared = 0
    for row, labels in zip(tokens, test.targets):
        np.testing.assert_array_equal(labels, expected_recall_labels(row, nsv=8))
        pairs = set(zip(row[0::2].tolist(), row[1::2].tolist()))
        shared += len({v for _, v in pairs}) < len(pairs)
    assert shared > 0, "values are drawn with replacement: two keys may share one"


def test_noisy_recall_skips_noise_and_always_keeps_a_real_pair():
    cfg = NR(vocab_size=12, noise_vocab_size=4, frac_noise=0.95, seq_len=16)
    tokens, test = full_tokens(gen(cfg, 500, training=True)), gen(cfg, 500)
    for row, labels in zip(tokens, test.targets):
        np.testing.assert_array_equal(labels, expected_recall_labels(row, nsv=8))
    assert ((tokens[:, 0:-2:2] < 8).sum(axis=1) >= 1).all()  # the §9 fix: no crash, a real pair
    assert (test.targets[test.inputs >= 8] == IGNORE).all()


def _check_fuzzy_sequence(row, labels, cfg, training):
    nk, pad = cfg.num_key_tokens, cfg.vocab_size - 1
    seq = runs(row, nk, pad)
    keys, values = seq[0::2], seq[1::2]
    assert len(keys) == len(values) and seq[0][0] < nk
    table, expected = {}, []
    for i, (k, v) in enumerate(zip(keys, values)):
        assert len(set(k)) == len(k) <= cfg.k_motif and len(set(v)) == len(v) <= cfg.v_motif
        assert training or len(k) == cfg.k_motif
        assert table.setdefault(k, v) == v, "a key motif keeps its value"
        if k in keys[:i] or i == len(keys) - 1:
            expected.extend(v)
    assert keys[-1] in keys[:-1] or not cfg.guarantee_probe
    scored = labels[labels != IGNORE].tolist()
    assert training or scored == expected
    return keys[-1] in keys[:-1]


def test_fuzzy_recall_structure_and_scoring():
    cfg = SMALL["fuzzy_in_context_recall"]
    for training in (False, True):
        b = gen(cfg, 300, training=training)
        # At test time the last target is the final value token, as in training.
        for row, labels in zip(np.concatenate([b.inputs, b.targets[:, -1:]], axis=1), b.targets):
            _check_fuzzy_sequence(row, labels, cfg, training)
    assert (b.inputs[:, :2] == cfg.vocab_size - 1).all()  # at least two pads on the left


def test_selective_copying_structure():
    cfg = SMALL["selective_copying"]
    b, n, T = gen(cfg, 300), cfg.num_tokens_to_copy, cfg.seq_len
    blank, copy = cfg.vocab_size - 2, cfg.vocab_size - 1
    assert (b.inputs[:, T - n - 1] == copy).all() and (b.inputs[:, T - n:] == blank).all()
    assert (b.inputs[:, T - n - 2] != blank).all()  # no blank ever follows c_n
    head = b.inputs[:, :T - n - 1]
    assert ((head == blank).sum(axis=1) == cfg.num_blanks).all()
    np.testing.assert_array_equal(head[head != blank].reshape(-1, n), b.targets[:, T - n:])
    assert (b.targets[:, :T - n] == IGNORE).all()


def test_compression_autoencoder_targets():
    cfg = SMALL["compression"]
    b = gen(cfg, 100)
    np.testing.assert_array_equal(b.targets, b.inputs)
    assert (b.inputs[:, -1] == cfg.vocab_size - 1).all()
    assert b.inputs[:, :-1].max() < cfg.vocab_size - 1
    assert TASKS["compression"].autoencoder
    assert [n for n, s in TASKS.items() if s.autoencoder] == ["compression"]


def test_memorization_fact_table_and_targets():
    cfg = SMALL["memorization"]
    np.testing.assert_array_equal(mad.fact_table(cfg), [3, 4, 6])  # the §7 worked example
    b = gen(cfg, 100)
    assert (b.inputs[:, 1::2] == cfg.vocab_size - 1).all() and (b.targets[:, 0::2] == IGNORE).all()
    np.testing.assert_array_equal(b.targets[:, 1::2], mad.fact_table(cfg)[b.inputs[:, 0::2]])


def test_memorization_table_matches_the_reference_construction():
    rng = np.random.default_rng(12345)  # MAD: shuffle the key tuples, then the value tuples, zip
    keys, values = [(k,) for k in range(127)], [(v,) for v in range(127, 255)]
    rng.shuffle(keys)
    rng.shuffle(values)
    expected = dict(zip(keys, values))
    table = mad.fact_table(M())
    assert all(table[k] == v for (k,), (v,) in expected.items())


def test_memorization_table_is_shared_by_seeds_and_splits():
    cfg = M(vocab_size=64, num_train_examples=64, num_test_examples=64)
    tables = []
    for batch in (mad.generate_split(cfg, "train", 0), mad.generate_split(cfg, "test", 9)):
        table = np.full(cfg.num_facts, -1)
        table[batch.inputs[:, 0::2]] = batch.targets[:, 1::2]
        tables.append(table)
    np.testing.assert_array_equal(tables[0], tables[1])
    np.testing.assert_array_equal(tables[0][tables[0] >= 0], mad.fact_table(cfg)[tables[0] >= 0])


# ---- every knob changes the data as documented ------------------------------------------------

@pytest.mark.parametrize("cls", [CR, NR])
def test_recall_vocab_size_sets_key_and_value_ranges(cls):
    for V in (16, 48):
        cfg = cls(vocab_size=V, seq_len=64) if cls is CR else cls(vocab_size=V, seq_len=64,
                                                                 noise_vocab_size=8)
        nsv = V - getattr(cfg, "noise_vocab_size", 0)
        tokens = full_tokens(gen(cfg, 300, training=True))
        real = tokens[:, 0::2] < nsv
        assert tokens[:, 0::2][real].max() == nsv // 2 - 1
        assert tokens[:, 1::2][real].min() == nsv // 2 and tokens[:, 1::2][real].max() == nsv - 1


def test_recall_vocab_size_lowers_scored_count():
    assert abs(gen(CR(vocab_size=128), 500).num_scored.mean() - 23.8) < 1.0  # §2: "about 24"


@pytest.mark.parametrize("cls", [CR, NR])
def test_recall_seq_len_sets_length_and_pairs(cls):
    for T in (16, 64):
        b = gen(cls(seq_len=T), 50)
        assert b.inputs.shape[1] == T - 1
    assert gen(CR(seq_len=256), 200).num_scored.mean() == pytest.approx(256 / 2 - 8, abs=0.05)


def test_noisy_frac_noise_sets_the_noise_pair_share():
    fracs = [noise_pair_fraction(NR(frac_noise=p, seq_len=64)) for p in (0.0, 0.2, 0.6)]
    assert fracs[0] == 0
    for measured, p in zip(fracs[1:], (0.2, 0.6)):
        assert abs(measured - p * 30 / 31) < 0.02  # one of the 31 context pairs is kept real
    assert gen(NR(frac_noise=0.8), 1000).num_scored.mean() < 9  # §3: "about 7.5"


def test_noisy_noise_vocab_size_sets_the_noise_range():
    for noise in (4, 16):
        cfg = NR(vocab_size=32, noise_vocab_size=noise, frac_noise=0.5, seq_len=64)
        tokens = full_tokens(gen(cfg, 200, training=True))
        nsv = 32 - noise
        noise_tok = tokens[:, :-2][np.repeat(tokens[:, 0:-2:2] >= nsv, 2, axis=1)]
        assert noise_tok.min() == nsv and noise_tok.max() == 31
        assert tokens[tokens < nsv].max() == nsv - 1


def test_fuzzy_vocab_size_sets_key_value_and_pad_tokens():
    for V in (10, 32):
        cfg = FR(vocab_size=V, seq_len=64, k_motif=2, v_motif=2)
        x = gen(cfg, 200, training=True).inputs
        assert x.max() == V - 1 and (x[:, 0] == V - 1).all()  # pad
        assert set(np.unique(x[x < V - 1])) == set(range(V - 1))  # keys and values


def test_fuzzy_seq_len_sets_length():
    for T in (24, 64):
        assert gen(FR(vocab_size=10, seq_len=T, k_motif=2, v_motif=2), 10).inputs.shape[1] == T


@pytest.mark.parametrize("knob", ["k_motif", "v_motif"])
def test_fuzzy_motif_sizes_bound_the_runs(knob):
    for size in (1, 3):
        cfg = dataclasses.replace(FR(vocab_size=16, seq_len=64, k_motif=2, v_motif=2),
                                  **{knob: size})
        key_lens, val_lens = set(), set()
        for row in full_tokens(gen(cfg, 100, training=True)):
            seq = runs(row, cfg.num_key_tokens, cfg.vocab_size - 1)
            key_lens |= {len(r) for r in seq[0::2]}
            val_lens |= {len(r) for r in seq[1::2]}
        assert (key_lens if knob == "k_motif" else val_lens) == set(range(1, size + 1))
    test = gen(FR(vocab_size=16, seq_len=64, k_motif=3, v_motif=2), 100)
    seqs = np.concatenate([test.inputs, test.targets[:, -1:]], axis=1)
    assert {len(r) for row in seqs for r in runs(row, 7, 15)[0::2]} == {3}  # test keys: k_motif


def test_fuzzy_guarantee_probe():
    present = {}
    for guarantee in (True, False):
        cfg = FR(vocab_size=10, seq_len=32, k_motif=2, v_motif=2, guarantee_probe=guarantee)
        b = gen(cfg, 1000)
        seqs = np.concatenate([b.inputs, b.targets[:, -1:]], axis=1)
        present[guarantee] = np.mean([_check_fuzzy_sequence(r, t, cfg, False)
                                      for r, t in zip(seqs, b.targets)])
    assert present[True] == 1.0 and 0.9 < present[False] < 1.0  # MAD leaves ~3 % unanswerable
    assert FR().guarantee_probe, "the fix is the default"


def test_selective_copying_knobs():
    base = SC(vocab_size=8, seq_len=32, num_tokens_to_copy=4)
    b = gen(base, 200)
    assert b.inputs.shape[1] == 32 and (b.num_scored == 4).all()
    assert ((b.inputs == 6).sum(axis=1) == 32 - 8 - 1 + 4).all()  # blanks: B + n
    b = gen(dataclasses.replace(base, num_tokens_to_copy=10), 200)
    assert (b.num_scored == 10).all() and ((b.inputs == 6).sum(axis=1) == 32 - 21 + 10).all()
    b = gen(dataclasses.replace(base, seq_len=64), 200)
    assert b.inputs.shape[1] == 64 and (b.num_scored == 4).all()
    b = gen(dataclasses.replace(base, vocab_size=32), 200)
    assert b.inputs.max() == 31 and b.targets.max() == 29 and (b.inputs == 30).sum() > 0


def test_compression_knobs():
    for V, T in ((8, 12), (32, 64)):
        b = gen(C(vocab_size=V, seq_len=T), 200)
        assert b.inputs.shape[1] == T and (b.num_scored == T).all()
        assert set(np.unique(b.inputs)) == set(range(V))


def test_memorization_knobs():
    for V in (64, 512):
        cfg = M(vocab_size=V)
        table = mad.fact_table(cfg)
        assert len(table) == cfg.num_facts == (V - 1) // 2 and len(set(table)) == len(table)
        assert table.min() >= (V - 1) // 2 and table.max() < V - 1
        b = gen(cfg, 400)
        assert b.inputs[:, 0::2].max() == cfg.num_facts - 1
    assert (gen(M(seq_len=12), 10).num_scored == 6).all()
    other = M(vocab_size=64, table_seed=1)
    assert not np.array_equal(mad.fact_table(other), mad.fact_table(M(vocab_size=64)))
    b = gen(other, 50)
    np.testing.assert_array_equal(b.targets[:, 1::2], mad.fact_table(other)[b.inputs[:, 0::2]])


# ---- validation --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls,kwargs,field", [
    (CR, {"vocab_size": 1}, "vocab_size"), (CR, {"seq_len": 31}, "seq_len"),
    (CR, {"seq_len": 2}, "seq_len"), (CR, {"num_train_examples": 0}, "num_train_examples"),
    (CR, {"num_test_examples": -1}, "num_test_examples"),
    (CR, {"train_on_scored_only": 1}, "train_on_scored_only"),
    (NR, {"frac_noise": 1.0}, "frac_noise"), (NR, {"frac_noise": -0.1}, "frac_noise"),
    (NR, {"noise_vocab_size": 31}, "noise_vocab_size"),
    (NR, {"noise_vocab_size": 0, "vocab_size": 16}, "noise_vocab_size"),
    (NR, {"seq_len": 7}, "seq_len"),
    (FR, {"k_motif": 0}, "k_motif"), (FR, {"v_motif": 9}, "vocab_size"),
    (FR, {"seq_len": 12}, "seq_len"), (FR, {"guarantee_probe": None}, "guarantee_probe"),
    (SC, {"num_tokens_to_copy": 0}, "num_tokens_to_copy"), (SC, {"seq_len": 33,
     "num_tokens_to_copy": 16}, "seq_len"), (SC, {"vocab_size": 2}, "vocab_size"),
    (C, {"seq_len": 1}, "seq_len"), (C, {"vocab_size": 2.0}, "vocab_size"),
    (M, {"seq_len": 31}, "seq_len"), (M, {"vocab_size": 2}, "vocab_size"),
    (M, {"table_seed": -1}, "table_seed"),
])
def test_bad_configs_name_the_field(cls, kwargs, field):
    with pytest.raises(ValueError, match=rf"{cls.__name__}\.{field}="):
        cls(**kwargs)


@pytest.mark.parametrize("n,seed", [(0, 0), (2.0, 0), (2, -1), (2, "a")])
def test_bad_requests(n, seed):
    with pytest.raises(ValueError):
        gen(SMALL["compression"], n, seed)


def test_configs_are_frozen_and_keyword_only():
    with pytest.raises(dataclasses.FrozenInstanceError):
        CR().vocab_size = 4
    with pytest.raises(TypeError):
        CR(8, 32)


# ---- registry and presets ----------------------------------------------------------------------

def test_registry_shape():
    mad_order = ["in_context_recall", "noisy_in_context_recall", "fuzzy_in_context_recall",
                 "selective_copying", "compression", "memorization"]
    assert sorted(NAMES) == sorted(mad_order) and list(mad.PAPER_SETTINGS) == mad_order
    for name, spec in TASKS.items():
        cfg = spec.config_cls()
        assert spec.name == name and mad.spec_for(cfg) is spec
        assert spec.vocab_size() == cfg.vocab_size
    assert TASKS["in_context_recall"].input_length() == 127
    assert TASKS["fuzzy_in_context_recall"].input_length() == 128
    with pytest.raises(TypeError):
        TASKS["compression"].vocab_size(CR())
    with pytest.raises(TypeError):
        mad.spec_for(object())


def test_paper_sweeps_are_one_at_a_time():
    counts = {name: len(s) for name, s in mad.PAPER_SWEEPS.items()}
    assert counts == {"in_context_recall": 11, "noisy_in_context_recall": 14,
                      "fuzzy_in_context_recall": 11, "selective_copying": 13, "compression": 11,
                      "memorization": 6}
    for name, sweep in mad.PAPER_SWEEPS.items():
        base = dataclasses.asdict(sweep[0])
        assert sweep[0] == mad.PAPER_SETTINGS[name] and len(set(sweep)) == len(sweep)
        for cfg in sweep[1:]:
            assert sum(v != base[k] for k, v in dataclasses.asdict(cfg).items()) == 1


def test_cpu_settings_follow_section_11_3():
    s = mad.CPU_SETTINGS
    assert (s["in_context_recall"].vocab_size, s["in_context_recall"].seq_len) == (8, 32)
    assert (s["noisy_in_context_recall"].noise_vocab_size, s["noisy_in_context_recall"].vocab_size,
            s["noisy_in_context_recall"].frac_noise) == (8, 16, 0.2)
    fr = s["fuzzy_in_context_recall"]
    assert (fr.vocab_size, fr.seq_len, fr.k_motif, fr.v_motif, fr.num_key_tokens) == (10, 32, 2, 2, 4)
    assert s["selective_copying"].num_blanks == 23 and s["compression"].seq_len == 16
    assert all(s[n].train_on_scored_only for n in RECALL)
    assert mad.CPU_STEPS == {"in_context_recall": 250, "noisy_in_context_recall": 600,
                             "fuzzy_in_context_recall": 300, "selective_copying": 300,
                             "compression": 200, "memorization": 150}
    for name, cfg in s.items():
        assert cfg.num_train_examples == mad.CPU_STEPS[name] * mad.CPU_BATCH_SIZE
        assert cfg.num_test_examples == 512
