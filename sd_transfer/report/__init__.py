"""Collect pretraining and transfer runs into report.md, results.csv, results.json and plots."""
import csv
import dataclasses
import io
import os.path as osp
from typing import List, Optional, Tuple

from ..errors import UserError
from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from . import plots
from .runs import find_runs
from .tables import (backbone_labels, build_rows, choose_baseline, flat_rows, markdown_tables,
                     setting_label)

__all__ = ['write_report']


def write_report(dirs: List[str], out_dir: str, baseline: Optional[str] = None) -> Tuple[str, str]:
    """Write the report files into ``out_dir``; return (path of report.md, text to print)."""
    pretrain, transfer, incomplete = find_runs(dirs)
    if not (pretrain or transfer or incomplete):
        raise UserError(f"no pretraining or transfer runs in {', '.join(dirs)}")
    rows = build_rows(pretrain, transfer)
    labels = backbone_labels({row.backbone for table in rows.values() for row in table})
    reference = choose_baseline(labels, baseline)

    tables = markdown_tables(rows, labels, reference)
    missing = _incomplete_section(incomplete)
    curves = _write_plots(pretrain, labels, out_dir)
    lines = ['# SD transfer report', '',
             f"Runs in {', '.join(f'`{d}`' for d in dirs)}: {len(pretrain)} pretraining, "
             f'{len(transfer)} transfer, {len(incomplete)} incomplete or not counted.', '',
             'Values in %: mean ± sample std over the n runs (seeds) of one setting '
             '(std – for n = 1).', '', reference.note, '',
             *tables, *curves, *missing, *_runs_section(pretrain, transfer, labels)]
    report = osp.join(out_dir, 'report.md')
    atomic_write_text('\n'.join(lines), report)

    records = flat_rows(rows, labels, reference)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ['table'],
                            lineterminator='\n')
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(buffer.getvalue(), osp.join(out_dir, 'results.csv'))
    atomic_write_json(dict(baseline=reference.note, rows=records,
                           incomplete=[dataclasses.asdict(i) for i in incomplete]),
                      osp.join(out_dir, 'results.json'))
    return report, '\n'.join(tables + missing)


def _write_plots(pretrain, labels, out_dir: str) -> List[str]:
    """One training-curve figure per pretraining run and one val top-1 figure for all."""
    runs = [run for run in pretrain if run.scalars.train or run.scalars.val]
    if not runs:
        return []
    names = plots.plot_names([run.path for run in runs])
    lines = ['## Training curves', '']
    curves = []
    for run in runs:
        ident = run.backbone_id(max(run.backbones))
        setting = setting_label(labels[ident], ident)
        label = f'{setting}, seed {run.seed}'
        curves.append(dict(setting=setting, label=label, scalars=run.scalars))
        file = f'plots/{names[run.path]}.png'
        atomic_write_bytes(plots.training_curves(run.scalars, f'{label} ({run.path})'),
                           osp.join(out_dir, file))
        lines += [f'![{label}: learning rate and losses]({file})', '']
    atomic_write_bytes(plots.val_top1(curves), osp.join(out_dir, 'plots/val_top1.png'))
    return lines + ['![validation top-1 per epoch](plots/val_top1.png)', '']


def _incomplete_section(incomplete) -> List[str]:
    if not incomplete:
        return []
    lines = ['## Incomplete runs', '', 'Not in the tables above:', '',
             '| Run | Kind | Reason |', '|---|---|---|']
    return lines + [f'| `{i.path}` | {i.kind} | {i.reason} |' for i in incomplete] + ['']


def _runs_section(pretrain, transfer, labels) -> List[str]:
    """Which folder each number comes from."""
    lines = ['## Runs', '', '| Run | Kind | Backbone | Config | Seed |', '|---|---|---|---|---|']
    for run in pretrain:
        ident = run.backbone_id(max(run.backbones))
        lines.append(f'| `{run.path}` | pretrain | {setting_label(labels[ident], ident)} | '
                     f'{ident.config} | {run.seed} |')
    for run in transfer:
        lines.append(f'| `{run.path}` | {run.task} | {labels[run.backbone]} | {run.config} | '
                     f'{run.seed} |')
    return lines + ['']
