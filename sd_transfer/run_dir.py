"""Work dirs that name what makes a run distinct, and a record that keeps two runs out of one.

Two runs in one work dir overwrite each other's checkpoints and results, and ``--resume`` would
continue the other run. So the default work dir spells out what makes a run distinct (config; for
transfer the backbone's name and hash; the seed when given), and every run records its identity
in ``WORK_DIR/run.json``; a later run whose identity differs is refused before it writes anything.
"""
import json
import os
import os.path as osp
from typing import Optional

from .errors import UserError
from .io import atomic_write_json

RECORD = 'run.json'


def config_name(config: str) -> str:
    return osp.splitext(osp.basename(config))[0]


def backbone_name(path: str, meta: Optional[dict], sha256: str) -> str:
    """``<pretraining config>_cycle<k>-<sha8>`` for our exports, ``<file name>-<sha8>`` otherwise."""
    if isinstance(meta, dict) and meta.get('config') and meta.get('cycle') is not None:
        name = f"{config_name(meta['config'])}_cycle{meta['cycle']}"
    else:
        name = config_name(path)
    return f'{name}-{sha256[:8]}'


def default_work_dir(config: str, seed: Optional[int], backbone: Optional[str] = None) -> str:
    """``work_dirs/<config>[_seed<N>]``, or ``work_dirs/<config>/<backbone>[_seed<N>]``."""
    suffix = '' if seed is None else f'_seed{seed}'
    if backbone is None:
        return osp.join('work_dirs', config_name(config) + suffix)
    return osp.join('work_dirs', config_name(config), backbone + suffix)


def identity(kind: str, config: str, seed: Optional[int], backbone: Optional[dict] = None) -> dict:
    """What makes a run distinct: its kind, config file, seed and (transfer) backbone file."""
    record = dict(kind=kind, config=osp.realpath(config), seed=seed)
    if backbone is not None:
        record['backbone'] = dict(path=osp.realpath(backbone['path']),
                                  sha256=backbone['sha256'])
    return record


def _describe(record: dict) -> str:
    text = f"{record.get('kind')} of {record.get('config')}"
    backbone = record.get('backbone')
    if backbone:
        text += f" from backbone {backbone.get('path')} (sha256 {str(backbone.get('sha256'))[:8]})"
    return text + f", seed {record.get('seed')}"


def claim(work_dir: str, record: dict, resume: bool) -> dict:
    """Refuse ``work_dir`` if another run recorded itself there; else record this one.

    Resuming without ``--seed`` continues with the recorded seed (mmengine restores it from the
    checkpoint), so a missing seed then matches. Returns the record written.
    """
    path = osp.join(work_dir, RECORD)
    if osp.isfile(path):
        try:
            with open(path) as f:
                old = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f'{path}: unreadable run record ({e}); remove it or choose another '
                            '--work-dir') from e
        mine = dict(record)
        if resume and mine.get('seed') is None:
            mine['seed'] = old.get('seed')
        keys = ('kind', 'config', 'seed', 'backbone')
        if any(_comparable(old.get(k)) != _comparable(mine.get(k)) for k in keys):
            verb = 'resume' if resume else 'reuse'
            raise UserError(f'cannot {verb} {work_dir}: it holds the {_describe(old)}; this run '
                            f'is the {_describe(mine)} (choose another --work-dir, or leave it '
                            'out for a distinct default)')
        record = mine
    os.makedirs(work_dir, exist_ok=True)
    atomic_write_json(record, path)
    return record


def _comparable(value):
    """Backbones compare by content; the same file may be reached by another path."""
    if isinstance(value, dict) and 'sha256' in value:
        return value['sha256']
    return value
