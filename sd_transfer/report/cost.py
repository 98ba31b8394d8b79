"""SD against born-again networks at the cost each recorded.

SD's case is cost: one run, where born-again networks train K generations, each a run of its
own with a teacher from the second on. Every run records its images, teacher forwards and
device-hours (:class:`~sd_transfer.engine.CostHook`); generation k of a born-again chain costs
what generations 1..k cost together. Generations are linked by what they recorded (each one's
teacher is a checkpoint in the previous generation's run folder), not by folder names.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

from .tables import TextTable, amount, fmt, setting_label

COST_KEYS = ('device_hours', 'teacher_images', 'images')


def chain_costs(pretrain_runs) -> Dict[str, Dict[str, float]]:
    """Run folder -> the cost of its born-again chain up to it (its own for other runs)."""
    by_folder = {osp.realpath(run.path): run for run in pretrain_runs}
    done = {}

    def total(run):
        folder = osp.realpath(run.path)
        if folder not in done:
            own = run.meta.get('cost') or {}
            done[folder] = {k: own.get(k) or 0 for k in COST_KEYS}
            teacher = run.meta.get('teacher') or {}
            parent = by_folder.get(osp.dirname(osp.realpath(teacher.get('path') or '/')))
            if (run.meta.get('generation') or 0) > 1 and parent is not None:
                done[folder] = {k: v + total(parent)[k] for k, v in done[folder].items()}
        return done[folder]

    for run in pretrain_runs:
        total(run)
    return {run.path: done[osp.realpath(run.path)] for run in pretrain_runs}


def born_again_table(pretrain_runs, cls_rows, labels) -> Optional[TextTable]:
    """The final backbones of SD and of born-again generations of one architecture, depth and
    validation data, with top-1 and cost (means over seeds); None unless both were run."""
    final = {}
    for row in cls_rows:  # the last cycle of each setting
        ident = row.backbone
        if ident.config and (ident.setting not in final
                             or ident.cycle > final[ident.setting].backbone.cycle):
            final[ident.setting] = row
    groups = {}
    for row in final.values():
        ident = row.backbone
        sd = json.loads(ident.sd) if ident.sd else {}
        kind = ('SD' if ident.teacher == 'snapshots' and sd.get('kd_weight') != 0
                else 'born-again' if ident.generation is not None else None)
        if kind:
            group = (tuple(json.loads(ident.family)[:2]), ident.data)
            groups.setdefault(group, []).append((kind, row))
    costs = chain_costs(pretrain_runs)
    body = []
    for members in groups.values():
        if len({kind for kind, _ in members}) < 2:
            continue
        for kind, row in sorted(members, key=lambda m: (m[0] != 'SD', m[1].backbone.generation)):
            mean = {k: sum(costs[p][k] for p in row.runs) / len(row.runs) for k in COST_KEYS}
            top1 = 'accuracy/top1'
            body.append([kind, setting_label(labels[row.backbone], row.backbone),
                         row.counts(top1), f'{fmt(row.mean(top1))} ± {fmt(row.std(top1))}'] +
                        [amount(mean[k]) for k in COST_KEYS])
    if not body:
        return None
    return TextTable('SD vs born-again at recorded cost',
                     ['Method', 'Backbone', 'n', 'top-1', 'device-h', 'teacher fwd', 'images'],
                     body, ['born-again generation k: the cost of generations 1..k together; '
                            'means over seeds'], lead=2)
