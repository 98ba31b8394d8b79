"""Collect pretraining and transfer runs into report.md, results.csv, results.json and plots."""
import csv
import dataclasses
import io
import json
import os.path as osp
from collections import Counter
from typing import List, Optional, Tuple

from ..errors import UserError
from ..io import atomic_write_bytes, atomic_write_json, atomic_write_text
from . import plots
from .runs import find_runs
from .tables import (backbone_labels, build_rows, choose_baseline, flat_rows, markdown_tables,
                     setting_label)

__all__ = ['write_report']


def write_report(dirs: List[str], out_dir: str, baseline: Optional[str] = None,
                 planned: Optional[List[str]] = None) -> Tuple[str, str]:
    """Write the report files into ``out_dir``; return (path of report.md, text to print).

    ``planned``: the work dirs of a study's plan; those without a finished run are listed.
    """
    pretrain, transfer, incomplete = find_runs(dirs)
    if not (pretrain or transfer or incomplete):
        raise UserError(f"no pretraining or transfer runs in {', '.join(dirs)}")
    rows = build_rows(pretrain, transfer, incomplete)
    labels = backbone_labels({row.backbone for table in rows.values() for row in table})
    reference = choose_baseline(labels, baseline)

    tables = markdown_tables(rows, labels, reference)
    missing = _missing_section(planned, pretrain, transfer) + _incomplete_section(incomplete)
    curves = _write_plots(pretrain, labels, out_dir)
    lines = ['# SD transfer report', '',
             f"Runs in {', '.join(f'`{d}`' for d in dirs)}: {len(pretrain)} pretraining, "
             f'{len(transfer)} transfer, {len(incomplete)} incomplete or not counted.', '',
             *_environment_section(pretrain, transfer),
             'Values in %: mean ± sample std over the n runs (seeds) of one setting '
             '(std – for n = 1). A setting is what a run actually ran: its resolved config '
             '(after command-line options), batch size and number of processes.', '',
             reference.note, '',
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


def _environment_section(pretrain, transfer) -> List[str]:
    """The package versions, devices and world sizes the runs recorded, with their counts."""
    envs = [run.meta.get('env') for run in pretrain] + [run.env for run in transfer]
    counts = Counter(json.dumps(env, sort_keys=True) for env in envs if env)
    if not counts:
        return ['Environment: not recorded by these runs.', '']
    lines = ['Environment of the runs:', '']
    for text, n in counts.most_common():
        env = json.loads(text)
        packages = ', '.join(f'{k} {env[k]}' for k in
                             ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmseg') if k in env)
        lines.append(f"- {env.get('device')}, {env.get('world_size')} process(es); {packages} "
                     f'({n} run{"s" * (n != 1)})')
    return lines + ['']


def _missing_section(planned, pretrain, transfer) -> List[str]:
    if not planned:
        return []
    found = {osp.realpath(run.path) for run in pretrain + transfer}
    missing = [p for p in planned if osp.realpath(p) not in found]
    lines = [f'## Study: {len(planned) - len(missing)} of {len(planned)} planned runs finished', '']
    if missing:
        lines += ['Missing (not finished):', ''] + [f'- `{p}`' for p in missing] + ['']
    return lines


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
