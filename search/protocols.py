"""The protocol registry: every way Composer scores a layout, by name, with one default.

A **protocol** is a named, frozen recipe that turns a layout into a score (higher is better): the MAD
recipes of ``composer.mad.protocol`` (``capacity``, ``cpu``, ``paper``, ``paper-full``), the real-text
proxies of ``search.evaluators.text`` (``text``, ``text-lr``) and their combination
(``search.evaluators.mix``: ``mix``). Each is registered here once, with the evaluator kind that runs it,
what it measures, what it costs and how well the judges say it ranks layouts (docs/fidelity.md,
docs/published.md). Every command (``composer evaluate``, ``search``, ``fidelity``, ``fidelity
--published``) resolves ``--protocol`` here and builds its evaluator through ``evaluator_config``, so
the same name means the same experiment everywhere, and ``composer evaluate`` reproduces a leaderboard
score exactly. ``composer protocols`` prints this table.

Adding a protocol: register an evaluator kind if it needs new code (``search.evaluators
.register_evaluator``), then ``register_protocol(ProtocolSpec(name, kind, ...))``.
"""

from __future__ import annotations

import dataclasses

from composer.errors import UsageError
from search.evaluators import _PROTOCOL_KINDS, EvaluatorConfig
from search.evaluators import DEFAULT_PROTOCOL as _DEFAULT

__all__ = ["ProtocolSpec", "PROTOCOLS", "DEFAULT_PROTOCOL", "register_protocol", "get_protocol_spec",
           "protocol_names", "evaluator_config", "check_protocol"]

DEFAULT_PROTOCOL = _DEFAULT
"""The one default protocol of every command (defined beside ``EvaluatorConfig``; docs/search.md: why)."""


@dataclasses.dataclass(frozen=True)
class ProtocolSpec:
    """A registered protocol: its name, the evaluator kind that runs it and what a user should know."""

    name: str
    kind: str
    """Evaluator kind (``search.evaluators.EVALUATORS``): ``mad``, ``text``, ``mix`` or a user's."""
    measures: str
    """What the score is, in one line."""
    cost: str
    """Measured cost of one evaluation on 2 CPU cores (the depth is said)."""
    fidelity: str = "not yet judged"
    """What the judges say of its ranking (published sets; the real-text study)."""
    chance: float | None = None
    """The score of a model that learned nothing (uniform guessing); ``None``: not stated. A search whose
    best layout scores about this says so (``search.results.reports.LearningCheck``)."""


PROTOCOLS: dict[str, ProtocolSpec] = {}


def register_protocol(spec: ProtocolSpec) -> ProtocolSpec:
    """Add ``spec`` under its name; a name is registered once (a different spec under it is refused)."""
    if spec.name in PROTOCOLS and PROTOCOLS[spec.name] != spec:
        raise ValueError(f"protocol {spec.name!r} is already registered")
    PROTOCOLS[spec.name] = spec
    if spec.kind != "mad":  # a non-MAD protocol selects its own evaluator kind
        _PROTOCOL_KINDS[spec.name] = spec.kind
    return spec


def _mad_recipes() -> dict:
    from composer.mad.protocol import PROTOCOLS as MAD

    return MAD


def protocol_names() -> tuple[str, ...]:
    """Every registered name: the MAD recipes of ``composer.mad.protocol`` and the protocols an evaluator
    kind was registered with (``register_evaluator(..., protocols=...)``) included."""
    return tuple(dict.fromkeys([*PROTOCOLS, *_mad_recipes(), *_PROTOCOL_KINDS]))


def get_protocol_spec(name: str, flag: str = "--protocol") -> ProtocolSpec:
    """The registered protocol ``name``; an unknown name is a usage error that lists every name.

    A MAD recipe registered in ``composer.mad.protocol.PROTOCOLS`` (a user's) is a protocol of kind
    ``mad`` without registering it twice; so is a protocol named when its evaluator kind was registered."""
    if name in PROTOCOLS:
        return PROTOCOLS[name]
    if name in _mad_recipes():
        return ProtocolSpec(name, "mad", "a MAD recipe (composer.mad.protocol)", "-")
    if name in _PROTOCOL_KINDS:
        kind = _PROTOCOL_KINDS[name]
        return ProtocolSpec(name, kind, f"registered with the evaluator kind {kind!r}", "-")
    raise UsageError(f"{flag}: unknown protocol {name!r}; registered protocols: "
                     f"{', '.join(protocol_names())} (composer protocols lists them)")


def check_protocol(name: str, flag: str = "--protocol") -> str:
    get_protocol_spec(name, flag)
    return name


def evaluator_config(protocol: str = DEFAULT_PROTOCOL, *, seed: int = 0, tasks: tuple[str, ...] | None = None,
                     steps_scale: float | None = None, space: tuple[str, ...] = (), kind: str | None = None):
    """The ``EvaluatorConfig`` of ``protocol`` (the one way every command builds an evaluator).

    ``kind`` overrides the registered kind only for the hidden test evaluator (``fake``).
    """
    spec = get_protocol_spec(protocol) if kind in (None, "mad") else None
    if tasks and spec is not None and spec.kind != "mad":
        raise UsageError(f"--tasks: protocol {protocol!r} has no MAD tasks; drop --tasks (or name a MAD "
                         "protocol, e.g. --protocol capacity)")
    return EvaluatorConfig(kind=kind or spec.kind, protocol=protocol, seed=seed, tasks=tasks,
                           steps_scale=steps_scale, space=space)


for _spec in (
    # Costs: median per six-layer evaluation, as a ratio to ``capacity`` timed beside it (the machine is
    # shared; experiments/bench/results/protocols*.json). Fidelity: Spearman against the fair real-text
    # study over its 13 layouts, and the complete published sets where the protocol beats the set's rule
    # of thumb (tests/test_readme_numbers.py checks both against the committed results).
    ProtocolSpec("capacity", "mad", "graded memorization: recall of 1,023 key-value facts after 150 steps "
                 "(about 75 exposures each) at the cpu model's widths",
                 "16.4 s per six-layer evaluation on 2 shared cores (5.8 s idle); 26 s median at 12 layers",
                 "fair real text: Spearman +0.40 over 13 layouts; published: above the rule of thumb on 0 of 10 "
                 "sets", chance=1 / 1024),
    ProtocolSpec("cpu", "mad", "the six MAD tasks at CPU size (recall, noisy recall, fuzzy recall, "
                 "selective copying, compression, memorization)", "62 s per six-layer evaluation on 2 cores (3.8x "
                 "capacity); 230 s median at 12 layers", "fair real text: Spearman +0.47 over 13 layouts; "
                 "published: above the rule of thumb on 3 of 9 sets"),
    ProtocolSpec("paper", "mad", "the six MAD tasks at the paper's widths (d=128), learning rate x weight "
                 "decay swept per task and the best kept", "accelerator-sized; not measured on CPU"),
    ProtocolSpec("paper-full", "mad", "paper, over the paper's full grid of task settings",
                 "accelerator-sized; not measured on CPU"),
    ProtocolSpec("capacity-lr", "mad", "capacity at the best of peak learning rates 3e-4, 1e-3, 3e-3 per layout, "
                 "chosen on a generated dev split, the chosen rate retrained and scored on test",
                 "4.0x capacity timed beside it (49.8 vs 12.4 s per six-layer evaluation)",
                 "fair real text: Spearman +0.41 over 13 layouts, its scores saturated (0.993-1.000)",
                 chance=1 / 1024),
    ProtocolSpec("text", "text", "1 - bits per byte of a byte LM at the proxy widths after 300 steps on "
                 "real text",
                 "3.05x capacity timed beside it (17.8 vs 5.8 s per six-layer evaluation, idle); 110 s median "
                 "at 12 layers; make search 54.2 min with two workers on 2 cores",
                 "fair real text: Spearman +0.87 over 13 layouts; published: above the rule "
                 "of thumb on 4 of 9 sets", chance=0.0),
    ProtocolSpec("text-lr", "text", "text, with the learning rate chosen per layout from 1e-3, 3e-3, 1e-2 on "
                 "a dev split", "249 s median at 12 layers on Kimi Linear's set (text: 77 s on the same layouts, "
                 "timed on another day)", "fair real text: Spearman +0.90 over 13 layouts; published: above the rule "
                 "of thumb on 0 of 3 sets", chance=0.0),
    ProtocolSpec("text-short", "text", "text after 100 updates (a third of text's), scored on 128 validation "
                 "windows", "1.11x capacity timed beside it (6.5 vs 5.8 s per six-layer evaluation, idle)",
                 "fair real text: Spearman +0.50 over 13 layouts; published: above the rule of thumb on 4 of 8 "
                 "sets", chance=0.0),
    ProtocolSpec("text-noconv", "text",
                 "text, with the 4-tap short convolution of Mamba-2 and Gated DeltaNet layers cut to one tap",
                 "as text (79 vs 77 s median at 12 layers on Kimi Linear's set, timed on different days)",
                 "fair real text: Spearman +0.89 over 13 layouts; published: above the rule of thumb on 1 of 8 sets",
                 chance=0.0),
    ProtocolSpec("text-long", "text",
                 "text on windows of 1,024 bytes, 2 per update (the same bytes per update and validation bytes)",
                 "2.0x text (153 vs 77 s median at 12 layers on Kimi Linear's set, timed on different days)",
                 "published: level with the rule of thumb on Kimi Linear's ratio (+0.41), the one set it was "
                 "run on (stopped by its rule, docs/published.md)", chance=0.0),
    ProtocolSpec("mix", "mix", "capacity and text, each standardised, averaged", "capacity + text",
                 "fair real text: Spearman +0.59 over 13 layouts; published: above the rule of thumb on 0 of 9 "
                 "sets"),
):
    register_protocol(_spec)
