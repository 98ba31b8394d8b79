"""Collect pretraining and transfer runs into report.md, report.tex, results.csv, results.json
and plots."""
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
from .cost import born_again_table
from .latex import document
from .runs import find_runs
from .tables import (backbone_labels, build_rows, choose_baseline, flat_rows, headline_tables,
                     markdown, setting_label)

__all__ = ['write_report', 'FORMAT']

# results.json's layout; 2: rows over pretraining seeds, with counts, teacher, data, test
# config, per-run values and baseline notes; per-run provenance in 'runs'.
FORMAT = 2


def write_report(dirs: List[str], out_dir: str, baseline: Optional[str] = None,
                 planned: Optional[List[str]] = None) -> Tuple[str, str]:
    """Write the report files into ``out_dir``; return (path of report.md, text to print).

    ``planned``: the work dirs of a study's plan; those without a finished run are listed.
    """
    pretrain, transfer, incomplete = find_runs(dirs)
    if not (pretrain or transfer or incomplete or planned):
        raise UserError(f"no pretraining or transfer runs in {', '.join(dirs)}")
    rows = build_rows(pretrain, transfer, incomplete)
    labels = backbone_labels({row.backbone for table in rows.values() for row in table})
    reference = choose_baseline(labels, baseline)

    headline = headline_tables(rows, labels, reference)
    cost = born_again_table(pretrain, rows['cls'], labels)
    tables = []
    for name, (table, per_class) in headline.items():
        tables += markdown(table)
        if name == 'cls' and cost is not None:
            tables += markdown(cost)
        for sub in per_class:
            tables += markdown(sub)
    missing = _missing_section(planned, pretrain, transfer) + _incomplete_section(incomplete)
    curves = _write_plots(pretrain, labels, out_dir)
    lines = ['# SD transfer report', '',
             f"Runs in {', '.join(f'`{d}`' for d in dirs)}: {len(pretrain)} pretraining, "
             f'{len(transfer)} transfer, {len(incomplete)} incomplete or not counted.', '',
             *_environment_section(pretrain, transfer),
             'Values in %: mean ± sample std over the pretraining seeds of one setting, each '
             'seed the mean of its transfer seeds (std – for one seed); n counts backbones '
             '(pretraining seeds) × transfers of each. A setting is what a run actually ran: its '
             'resolved config (after command-line options), batch size, number of processes, '
             'teacher and data. Cost columns: device-hours and teacher forwards (images the '
             'teacher saw) of the pretraining run up to that cycle, means over seeds.', '',
             reference.note, '',
             *tables, *curves, *missing, *_runs_section(pretrain, transfer, labels)]
    report = osp.join(out_dir, 'report.md')
    atomic_write_text('\n'.join(lines), report)
    tex = [table for table, _ in headline.values()] + ([cost] if cost is not None else [])
    atomic_write_text(document(tex, ', '.join(dirs)), osp.join(out_dir, 'report.tex'))

    records = flat_rows(rows, labels, reference)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(records[0]) if records else ['table'],
                            lineterminator='\n')
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(buffer.getvalue(), osp.join(out_dir, 'results.csv'))
    atomic_write_json(dict(format=FORMAT, baseline=reference.note, rows=records,
                           runs=_provenance(pretrain, transfer, labels),
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


_PACKAGES = ('torch', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmseg')
_PROVENANCE = ('device', 'world_size', 'cuda', 'cudnn', 'driver', 'git_commit', 'git_dirty',
               'command')


def _environment_section(pretrain, transfer) -> List[str]:
    """The package versions, devices, world sizes, CUDA stacks and code versions the runs
    recorded, with their counts (each run's own are in results.json)."""
    envs = [env for env in [run.meta.get('env') for run in pretrain] + [run.env for run in transfer]
            if env]
    if not envs:
        return ['Environment: not recorded by these runs.', '']
    machines = Counter(json.dumps({k: env.get(k) for k in (*_PACKAGES, *_PROVENANCE[:5])})
                       for env in envs)
    lines = ['Environment of the runs:', '']
    for text, n in machines.most_common():
        env = json.loads(text)
        packages = ', '.join(f'{k} {env[k]}' for k in _PACKAGES if env.get(k))
        cuda = ', '.join(f'{k} {env[k]}' for k in ('cuda', 'cudnn', 'driver') if env.get(k))
        lines.append(f"- {env.get('device')}, {env.get('world_size')} process(es); {packages}"
                     f"{f'; {cuda}' if cuda else ''} ({n} run{'s' * (n != 1)})")
    code = Counter((env.get('git_commit'), env.get('git_dirty')) for env in envs)
    lines += ['', 'Code: ' + '; '.join(
        f"{'commit ' + commit[:12] if commit else 'no git commit recorded'}"
        f"{' with uncommitted changes' if dirty else ''} ({n} run{'s' * (n != 1)})"
        for (commit, dirty), n in code.most_common()), '']
    return lines


def _provenance(pretrain, transfer, labels) -> List[dict]:
    """Where each run's numbers come from: folder, what it ran, code, command, CUDA stack."""
    runs = []
    for run in pretrain:
        ident = run.backbone_id(max(run.backbones))
        runs.append(dict(path=run.path, kind='pretrain',
                         backbone=setting_label(labels[ident], ident), config=ident.config,
                         seed=run.seed,
                         **{k: (run.meta.get('env') or {}).get(k) for k in _PROVENANCE}))
    for run in transfer:
        runs.append(dict(path=run.path, kind=run.task, backbone=labels[run.backbone],
                         config=run.config, seed=list(run.seed),
                         **{k: (run.env or {}).get(k) for k in _PROVENANCE}))
    return runs


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
                     f"{'/'.join(str(s) for s in run.seed)} |")
    return lines + ['']
