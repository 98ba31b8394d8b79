"""The report's Δ intervals at the sizes studies run: several transfer seeds per backbone.

Rows are filled as the report fills them (``Row.add`` with the (pretraining seed, transfer seed)
of each run) and compared with the report's own ``delta``.
"""
import statistics

import numpy as np
import pytest
from scipy import stats

from sd_transfer.report.runs import BackboneId
from sd_transfer.report.tables import Row, delta, delta_cell

KEY = 'pascal_voc/AP50'


def row(values: dict, name='sd') -> Row:
    """A transfer row from ``{(pretraining seed, transfer seed): value}``."""
    filled = Row(BackboneId(config=name), 'faster-rcnn_tiny')
    for (backbone, transfer), value in values.items():
        filled.add(f'{name}/{backbone}_{transfer}', (backbone, transfer), {KEY: value}, 1.0)
    return filled


def test_interval_is_over_pretraining_seeds():
    """The issue's case: 3 backbones × 3 transfers, per-backbone differences 1, 2 and 3."""
    noise = [-0.4, 0.1, 0.3]  # transfer noise, the same on both sides: it cancels per backbone
    base = row({(b, t): 40.0 + b + noise[t] for b in range(3) for t in range(3)}, 'base')
    sd = row({(b, t): 40.0 + b + (b + 1) + noise[t] for b in range(3) for t in range(3)})
    d = delta(sd, base, KEY)
    half = stats.t.ppf(0.975, 2) * statistics.stdev([1, 2, 3]) / 3 ** 0.5
    assert (d['mean'], d['kind'], d['n']) == (pytest.approx(2.0), 'paired', 3)
    assert d['high'] - d['mean'] == pytest.approx(half) == pytest.approx(2.484, abs=1e-3)
    assert delta_cell(sd, base, KEY) == '+2.00 [-0.48, +4.48] paired n=3 backbones × 3'


def test_missing_seed_is_named_and_a_zero_width_interval_is_exact():
    base = row({(0, 0): 40.0, (1, 0): 41.0, (2, 0): 42.0}, 'base')
    sd = row({(0, 0): 41.0, (1, 0): 42.0, (3, 0): 50.0})  # seed 2 failed, seed 3 extra
    d = delta(sd, base, KEY)
    assert (d['kind'], d['n'], d['mean'], d['low'], d['high']) == ('paired', 2, 1.0, 1.0, 1.0)
    assert delta_cell(sd, base, KEY) == ('+1.00 exact paired n=2 backbones × 1, without seed 3 '
                                         '(this row only), seed 2 (baseline only)')


def test_disjoint_seeds_are_compared_unpaired_over_backbone_means():
    base = row({(b, t): 40.0 + b + 0.1 * t for b in (0, 1) for t in (0, 1)}, 'base')
    sd = row({(b, t): 40.0 + b + 0.1 * t for b in (5, 6, 7) for t in (0, 1)})
    d = delta(sd, base, KEY)
    assert (d['kind'], d['n']) == ('unpaired', (3, 2))
    assert delta_cell(sd, base, KEY).endswith(
        'unpaired n=3 backbones × 2 vs 2 backbones × 2')


DESIGNS = [(3, 1), (3, 3), (2, 3), (5, 2)]  # pretraining seeds × transfer seeds


def coverage(backbones: int, transfers: int, paired: bool, draws: int, rng) -> float:
    """How often the report's 95% interval holds the true Δ = 0.

    Each backbone has its own pretraining noise (sd 1), shared by all its transfers, and a part
    its seed shares with the other arm's backbone of that seed (data order, initial weights;
    sd 1); each transfer adds its own noise (sd 1).
    """
    hits = 0
    for _ in range(draws):
        seed_noise = rng.normal(0, 1, backbones)
        arms = []
        for arm, offset in (('sd', 0), ('base', 0 if paired else backbones)):
            backbone = rng.normal(0, 1, backbones) + (seed_noise if paired else 0)
            runs = backbone[:, None] + rng.normal(0, 1, (backbones, transfers))
            arms.append(row({(b + offset, t): 50.0 + runs[b, t] for b in range(backbones)
                             for t in range(transfers)}, arm))
        d = delta(arms[0], arms[1], KEY)
        hits += d['low'] <= 0 <= d['high']
    return hits / draws


def test_intervals_cover_the_true_difference():
    """≥ 0.93 for a 95% interval (2000 draws: the binomial sd of a true 0.95 is 0.005). Counting
    every transfer as a sample gives 0.83 at 3 × 3 seeds and 0.81 at 2 × 3 here."""
    rng = np.random.default_rng(0)
    found = {(b, t, paired): coverage(b, t, paired, 2000, rng)
             for b, t in DESIGNS for paired in (True, False)}
    assert {design: value >= 0.93 for design, value in found.items()} == dict.fromkeys(
        found, True), found
