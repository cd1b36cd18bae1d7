"""The shipped published sets: notation, checks on every file, and facts of the papers they hold."""

import json

import pytest

from composer.errors import UsageError
from search.published.sets import MIN_LAYOUTS, SETS_DIR, expand, load_set, resolve_sets, set_names


@pytest.mark.parametrize("notation,expected", [
    ("(SM)x2AM", "SMSMAM"), ("S^3A", "SSSA"), ("2A4M", "AAMMMM"), ("((GM)x2AM)x2", "GMGMAMGMGMAM"),
    ("AM(SM)x3", "AMSMSMSM"), ("sm", "SM"),
])
def test_expand(notation, expected):
    assert expand(notation) == expected


@pytest.mark.parametrize("bad", ["(SM", "SM)", "()", "A-M", "x3"])
def test_expand_refuses(bad):
    with pytest.raises(ValueError):
        expand(bad)


def test_every_shipped_set_loads_with_its_citation():
    sets = resolve_sets("all")
    assert [s.name for s in sets] == set_names() and len(sets) >= 8
    for s in sets:
        assert len(s.layouts) >= MIN_LAYOUTS
        assert s.citation.arxiv and s.citation.table and s.direction in ("lower", "higher")
        assert len({row.label for row in s.layouts}) == len(s.layouts), s.name


def _by_name():
    return {s.name: s for s in resolve_sets("all")}


def test_bae_block_counts_and_positions():
    s = _by_name()["bae2025_1b"]
    rows = {r.label: r.layout for r in s.layouts}
    assert rows["Transformer (AM)x16"] == "AM" * 16 and rows["Mamba-2 (SM)x13"] == "SM" * 13
    blocks = [rows["1:3 middle {3,7,11}"][i:i + 2] for i in range(0, 26, 2)]
    assert [i + 1 for i, b in enumerate(blocks) if b == "AM"] == [3, 7, 11] and len(blocks) == 13
    assert rows["1:12 A at block 1 of 13"].startswith("AM") and rows["1:12 A at block 1 of 13"].count("A") == 1


def test_press_orderings_hold_sixteen_of_each_and_parameter_matched_ones_match():
    sets = _by_name()
    for row in sets["press2020_orderings"].layouts:
        assert row.layout.count("A") == 16 and row.layout.count("M") == 16
    base = [r for r in sets["press2020_orderings"].layouts if r.values]
    assert len(base) == 1 and len(base[0].values) == 5 and base[0].value == pytest.approx(18.648, abs=1e-3)
    for row in sets["press2020_param_matched"].layouts:  # an f sublayer has 2x the parameters of an s
        assert 4 * row.layout.count("A") + 8 * row.layout.count("M") == 192, row.label


def test_gated_deltanet_set_follows_the_released_configurations_and_the_published_order():
    sets = _by_name()
    s = sets["gated_deltanet2025_1.3b"]
    rows = {r.label: r.layout for r in s.layouts}
    assert rows["Gated DeltaNet"] == "GM" * 16  # 16 layers, each a Gated DeltaNet mixer and an MLP
    h1, h2 = rows["Gated DeltaNet-H1"], rows["Gated DeltaNet-H2"]
    assert h1[0::2] == "GW" * 9 and set(h1[1::2]) == {"M"}  # 18 layers alternating, Gated DeltaNet first
    assert h2[0::2] == "SGW" * 6 and set(h2[1::2]) == {"M"}  # H2 assumed at H1's 18 mixers
    assert rows["Samba"] == {r.label: r.layout for r in sets["samba2025_layers_1.3b"].layouts}["Samba"]
    order = [r.label for r in sorted(s.layouts, key=lambda r: r.value)]
    assert order == ["Gated DeltaNet-H2", "Gated DeltaNet-H1", "Samba", "Gated DeltaNet", "Mamba-2", "Transformer++"]
    assert s.citation.arxiv == "2412.06464" and s.heuristic == "recurrent_and_attention"


def _write(tmp_path, **changes):
    raw = json.loads((SETS_DIR / "samba2025_position.json").read_text())
    raw.update(changes)
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(raw))
    return path


def test_a_custom_set_file_is_accepted(tmp_path):
    path = _write(tmp_path, name="custom")
    assert resolve_sets(str(path))[0].name == "custom"


@pytest.mark.parametrize("changes,words", [
    ({"layouts": [{"layout": "AM", "value": 1.0}] * 3}, "at least 4"),
    ({"layouts": [{"layout": "AXM", "value": 1.0}] * 4}, "unknown primitive"),
    ({"layouts": [{"layout": "(AM", "value": 1.0}] * 4}, "layouts[0].layout"),
    ({"layouts": [{"layout": "AM", "value": "low"}] * 4}, "layouts[0].value"),
    ({"layouts": [{"layout": "AM", "value": 1.0, "values": ["x"]}] * 4}, "layouts[0].values"),
    ({"direction": "down"}, "direction"),
    ({"heuristic": "vibes"}, "heuristic"),
    ({"noise": {"kind": "guess"}}, "noise.kind"),
    ({"noise": {"kind": "seed_sd", "value": "large"}}, "noise.value"),
    ({"citation": {"authors": "A", "year": 2025, "title": "T"}}, "citation.arxiv"),
])
def test_malformed_sets_name_the_field(tmp_path, changes, words):
    with pytest.raises(UsageError, match="custom.json") as e:
        load_set(_write(tmp_path, **changes))
    assert words in str(e.value)


def test_unreadable_files_and_unknown_names(tmp_path):
    bad = tmp_path / "custom.json"
    bad.write_text("{not json")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_set(bad)
    missing = tmp_path / "custom2.json"
    missing.write_text(json.dumps({"name": "x"}))
    with pytest.raises(UsageError, match="missing field"):
        load_set(missing)
    with pytest.raises(UsageError, match="unknown set 'nosuch'.*bae2025_1b"):
        resolve_sets("nosuch")
