"""Training curves of pretraining runs, drawn from their mmengine scalars as PNG bytes.

``matplotlib.figure.Figure`` renders with Agg without touching pyplot's global state or
backend, so this works headless and inside tests.
"""
import io
import os.path as osp
import re
from typing import Dict, List

from matplotlib.figure import Figure


def plot_names(paths: List[str]) -> Dict[str, str]:
    """A file-name stem per run folder: its last folder names, as few as tell all apart."""
    parts = {p: [re.sub(r'[^A-Za-z0-9_.-]+', '_', part) for part in
                 osp.abspath(p).strip(osp.sep).split(osp.sep)] for p in paths}
    for depth in range(1, max((len(v) for v in parts.values()), default=0) + 1):
        names = {p: '__'.join(v[-depth:]) for p, v in parts.items()}
        if len(set(names.values())) == len(names):
            return names
    return {p: f'run{k}' for k, p in enumerate(paths)}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format='png', dpi=100)
    return buffer.getvalue()


def training_curves(scalars, title: str) -> bytes:
    """Learning rate (top) and losses (bottom) over iterations; dotted lines where a snapshot
    becomes the teacher (logged at the start of cycle k, the teacher is cycle k-1's student).

    ``loss`` is the total: plain CE for a baseline, CE and KD weighted for SD.
    """
    fig = Figure(figsize=(8, 6), layout='constrained')
    lr_ax, loss_ax = fig.subplots(2, 1, sharex=True)
    for ax, keys in ((lr_ax, ('lr',)), (loss_ax, ('loss', 'loss_ce', 'loss_kd'))):
        for key in keys:
            points = [(r['step'], r[key]) for r in scalars.train if key in r]
            if points:
                ax.plot(*zip(*points), label=key)
    for swap in scalars.teacher:
        for ax in (lr_ax, loss_ax):
            ax.axvline(swap['step'], color='grey', linestyle=':', linewidth=1)
        lr_ax.annotate(f"teacher ← cycle {swap['sd/teacher_cycle'] - 1}", (swap['step'], 1),
                       xycoords=('data', 'axes fraction'), rotation=90, va='top', ha='right',
                       fontsize=8, color='grey')
    lr_ax.set_ylabel('learning rate')
    loss_ax.set_ylabel('loss')
    loss_ax.set_xlabel('iteration')
    loss_ax.legend()
    lr_ax.set_title(title, fontsize=10)
    return _png(fig)


def val_top1(curves: List[dict]) -> bytes:
    """Validation top-1 per epoch of every run on one axis, one colour per setting.

    ``curves``: dicts with ``setting``, ``label`` and ``scalars``; the teacher's accuracy is drawn
    dashed where the run logged it (``teacher/accuracy/top1``).
    """
    fig = Figure(figsize=(8, 5), layout='constrained')
    ax = fig.subplots()
    colours = {}
    for curve in curves:
        colour = colours.setdefault(curve['setting'], f'C{len(colours) % 10}')
        for key, style, suffix in (('accuracy/top1', '-', ''),
                                   ('teacher/accuracy/top1', '--', ' teacher')):
            points = [(r['step'], r[key]) for r in curve['scalars'].val if key in r]
            if points:
                ax.plot(*zip(*points), style, color=colour, marker='.',
                        label=curve['label'] + suffix)
    ax.set_xlabel('epoch')
    ax.set_ylabel('val top-1 (%)')
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)
