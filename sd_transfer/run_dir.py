"""Work dirs that name what makes a run distinct, and a record that keeps two runs out of one.

Two runs in one work dir overwrite each other's checkpoints and results, and ``--resume`` would
continue the other run. So the default work dir spells out what makes a run distinct (config; for
transfer the backbone's name and hash; the seed when given), and every run records its identity
in ``WORK_DIR/run.json``; a later run whose identity differs is refused before it writes anything.
"""
import fcntl
import json
import os
import os.path as osp
import socket
from typing import Optional

from .errors import UserError
from .io import atomic_write_json, safe_torch_load

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


def identity(kind: str, config: str, seed: Optional[int], config_hash: str,
             backbone: Optional[dict] = None, teacher: Optional[dict] = None) -> dict:
    """What makes a run distinct: its kind, config file and what it resolved to (after
    ``--cfg-options`` and the like: :func:`~sd_transfer.setting.config_hash`), seed, and the
    weights it starts from (a transfer's backbone file) or learns from (a fixed teacher file)."""
    record = dict(kind=kind, config=osp.realpath(config), config_hash=config_hash, seed=seed)
    for key, weights in (('backbone', backbone), ('teacher', teacher)):
        if weights is not None:
            record[key] = dict(path=osp.realpath(weights['path']), sha256=weights['sha256'])
    return record


def _describe(record: dict) -> str:
    text = f"{record.get('kind')} of {record.get('config')} (resolved {record.get('config_hash')})"
    for key, how in (('backbone', 'from backbone'), ('teacher', 'taught by')):
        weights = record.get(key)
        if weights:
            text += f" {how} {weights.get('path')} (sha256 {str(weights.get('sha256'))[:8]})"
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
        keys = ('kind', 'config', 'config_hash', 'seed', 'backbone', 'teacher')
        if any(_comparable(old.get(k)) != _comparable(mine.get(k)) for k in keys):
            verb = 'resume' if resume else 'reuse'
            raise UserError(f'cannot {verb} {work_dir}: it holds the {_describe(old)}; this run '
                            f'is the {_describe(mine)} (choose another --work-dir, or leave it '
                            'out for a distinct default)')
        record = mine
    os.makedirs(work_dir, exist_ok=True)
    _lock(work_dir)
    atomic_write_json(record, path)
    return record


_LOCKS = {}  # work dir -> open lock file, held until this process ends


def _lock(work_dir: str) -> None:
    """One run at a time in a work dir (a study resubmitted while its jobs still run, say).

    The first process of a run (rank 0) holds an exclusive lock on ``WORK_DIR/.lock`` for as
    long as it lives; the lock goes with the process, also when it is killed.
    """
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if rank != '0' or work_dir in _LOCKS:
        return
    handle = open(osp.join(work_dir, '.lock'), 'a+')
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or 'another process'
        handle.close()
        raise UserError(f'{work_dir} is in use by a run that is still going ({holder}); wait '
                        'for it or choose another --work-dir') from None
    handle.truncate(0)
    handle.write(f'pid {os.getpid()} on {socket.gethostname()}\n')
    handle.flush()
    _LOCKS[work_dir] = handle


def _comparable(value):
    """Backbones compare by content; the same file may be reached by another path."""
    if isinstance(value, dict) and 'sha256' in value:
        return value['sha256']
    return value


def finished_pretraining(work_dir: str) -> Optional[dict]:
    """The final backbone's meta if the pretraining run in ``work_dir`` finished, else None."""
    path = osp.join(work_dir, 'backbone.pth')
    if not osp.isfile(path):
        return None
    meta = safe_torch_load(path, map_location='meta').get('meta') or {}
    return meta if meta.get('cycle') == meta.get('num_cycles') else None
