"""Δ between two rows and its 95% interval, with the pretraining seed as the unit of replication.

Transfers of one backbone share its pretraining noise, so they are not independent samples of
the backbone's quality: each pretraining seed's transfer seeds are averaged first, and the
interval is Student's t over the per-seed differences where both rows have the seeds (paired),
Welch's over the per-seed means otherwise. Counting every (pretraining seed, transfer seed)
pair as a sample makes a "95%" interval too narrow: it covers the true Δ in 83% of the draws of
tests/test_report_stats.py's simulation at 3 × 3 seeds, 81% at 2 × 3.

A unit is ``('seed', s)`` for a backbone of pretraining seed ``s``; a backbone without a known
seed (a file) is one fixed backbone, so there each transfer is a unit: ``('transfer', t)``, or
``('run', path)`` without a seed.
"""
import math
import statistics
from typing import Dict, List, Optional

from scipy import stats


def unit_of(seed, path: str) -> tuple:
    """The unit a run's value belongs to; ``seed`` is (pretraining, transfer) or pretraining."""
    backbone, transfer = seed if isinstance(seed, tuple) else (seed, None)
    if backbone is not None:
        return ('seed', backbone)
    return ('transfer', transfer) if transfer is not None else ('run', path)


def unit_name(unit: tuple) -> str:
    return {'seed': 'seed', 'transfer': 'transfer seed', 'run': 'run'}[unit[0]] + f' {unit[1]}'


def means(units: Dict[tuple, List[float]]) -> Dict[tuple, float]:
    return {unit: math.fsum(values) / len(values) for unit, values in units.items()}


def counts(units: Dict[tuple, List[float]], transfers: bool) -> str:
    """``3 backbones`` (× the transfers per backbone, ``× 2–3`` where they differ), ``3 runs``."""
    n = len(units)
    if any(kind != 'seed' for kind, _ in units):
        return f"{n} run{'s' * (n != 1)}"
    text = f"{n} backbone{'s' * (n != 1)}"
    if not transfers:
        return text
    per = sorted({len(values) for values in units.values()})
    return text + ' × ' + (f'{per[0]}' if len(per) == 1 else f'{per[0]}–{per[-1]}')


def compare(a: Dict[tuple, List[float]], b: Dict[tuple, List[float]]) -> Optional[dict]:
    """Δ = mean(a) − mean(b) over their units, with a 95% interval.

    Paired over the units both have when there are at least two (or the units are the same);
    the units only one side has are left out and named in ``dropped``. Welch's t otherwise.
    ``low``/``high`` are None where there are too few units for an interval; ``n`` is the
    number of pairs, or (units of ``a``, units of ``b``); ``common`` the paired units.
    """
    ma, mb = means(a), means(b)
    if not ma or not mb:
        return None
    common = sorted(set(ma) & set(mb), key=str)
    half = None
    if len(common) >= 2 or (common and set(ma) == set(mb)):
        diffs = [ma[u] - mb[u] for u in common]
        mean, kind, n = statistics.mean(diffs), 'paired', len(common)
        if len(diffs) > 1:
            half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(
                len(diffs))
        dropped = dict(row=sorted(unit_name(u) for u in set(ma) - set(mb)),
                       ref=sorted(unit_name(u) for u in set(mb) - set(ma)))
    else:
        xa, xb = list(ma.values()), list(mb.values())
        mean, kind, n = statistics.mean(xa) - statistics.mean(xb), 'unpaired', (len(xa), len(xb))
        if len(xa) > 1 and len(xb) > 1:
            va, vb = statistics.variance(xa) / len(xa), statistics.variance(xb) / len(xb)
            half = 0.0
            if va + vb > 0:  # Welch-Satterthwaite degrees of freedom
                df = (va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1))
                half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
        common, dropped = [], dict(row=[], ref=[])
    return dict(mean=mean, low=None if half is None else mean - half,
                high=None if half is None else mean + half, kind=kind, n=n, common=common,
                dropped=dropped)
