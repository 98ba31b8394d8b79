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
from .io import atomic_write_json, safe_torch_load
from .lock import lock

RECORD = 'run.json'
STOPPED = 'stopped.json'  # a run stopped at SIGUSR1, to be resumed (engine/stop_signal.py)


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
             backbone: Optional[dict] = None, teacher: Optional[dict] = None,
             batch: Optional[dict] = None) -> dict:
    """What makes a run distinct: its kind, config file and what it resolved to (after
    ``--cfg-options`` and the like: :func:`~sd_transfer.setting.config_hash`), seed, the
    weights it starts from (a transfer's backbone file) or learns from (a fixed teacher file),
    and its batch (``world_size``, ``batch_per_process``, ``total_batch``)."""
    record = dict(kind=kind, config=osp.realpath(config), config_hash=config_hash, seed=seed)
    for key, weights in (('backbone', backbone), ('teacher', teacher)):
        if weights is not None:
            record[key] = dict(path=osp.realpath(weights['path']), sha256=weights['sha256'])
    record.update(batch or {})
    return record


def _describe(record: dict) -> str:
    text = f"{record.get('kind')} of {record.get('config')} (resolved {record.get('config_hash')})"
    for key, how in (('backbone', 'from backbone'), ('teacher', 'taught by')):
        weights = record.get(key)
        if weights:
            text += f" {how} {weights.get('path')} (sha256 {str(weights.get('sha256'))[:8]})"
    return text + f", seed {record.get('seed')}"


def _batch(record: dict) -> str:
    return (f"a total batch of {record['total_batch']} ({record.get('world_size')} process(es) "
            f"x {record.get('batch_per_process')})")


def check(work_dir: str, record: dict, resume: bool) -> dict:
    """Refuse ``work_dir`` if another run recorded itself there; return this run's record.

    Resuming without ``--seed`` continues with the recorded seed (mmengine restores it from the
    checkpoint), so a missing seed then matches. Writes nothing.
    """
    path = osp.join(work_dir, RECORD)
    if not osp.isfile(path):
        return record
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f'{path}: unreadable run record ({e}); remove it or choose another '
                        '--work-dir') from e
    mine = dict(record)
    if resume and mine.get('seed') is None:
        mine['seed'] = old.get('seed')
    verb = 'resume' if resume else 'reuse'
    keys = ('kind', 'config', 'config_hash', 'seed', 'backbone', 'teacher')
    if any(_comparable(old.get(k)) != _comparable(mine.get(k)) for k in keys):
        raise UserError(f'cannot {verb} {work_dir}: it holds the {_describe(old)}; this run '
                        f'is the {_describe(mine)} (choose another --work-dir, or leave it '
                        'out for a distinct default)')
    batch = ('total_batch', 'world_size')
    if old.get('total_batch') and [old.get(k) for k in batch] != [mine.get(k) for k in batch]:
        # with another total batch the lr, the schedule in iterations and the epochs differ;
        # with another world size the batch each BN layer normalises over
        raise UserError(f'cannot {verb} {work_dir}: its run trains with {_batch(old)}, this one '
                        f"with {_batch(mine)}; run it with {old.get('world_size')} process(es) "
                        'to continue it, or choose another --work-dir')
    return mine


def claim(work_dir: str, record: dict, resume: bool) -> dict:
    """:func:`check`, then lock ``work_dir`` for this process and record this run there."""
    record = check(work_dir, record, resume)
    os.makedirs(work_dir, exist_ok=True)
    lock(work_dir)
    atomic_write_json(record, osp.join(work_dir, RECORD))
    clear_stopped(work_dir)  # this is the resume it was stopped for
    return record


def clear_stopped(work_dir: str) -> None:
    """Remove the mark of a stop at SIGUSR1: the run is resumed (or done)."""
    if osp.exists(osp.join(work_dir, STOPPED)):
        os.unlink(osp.join(work_dir, STOPPED))


def _comparable(value):
    """Backbones compare by content; the same file may be reached by another path."""
    if isinstance(value, dict) and 'sha256' in value:
        return value['sha256']
    return value


def finished(meta: dict) -> bool:
    """Whether a backbone's meta says its run finished: the last cycle completed, at the
    loop's last iteration, and its final validation recorded (or the run had none)."""
    if 'finished' in meta:
        return bool(meta['finished'])
    return meta.get('cycle') == meta.get('num_cycles')  # written before runs recorded it


def finished_pretraining(work_dir: str) -> Optional[dict]:
    """The final backbone's meta if the pretraining run in ``work_dir`` finished, else None."""
    path = osp.join(work_dir, 'backbone.pth')
    if not osp.isfile(path):
        return None
    meta = safe_torch_load(path, map_location='meta').get('meta') or {}
    return meta if finished(meta) else None


def finished_run(kind: str, work_dir: str) -> Optional[str]:
    """How a finished run in ``work_dir`` ended, in words, or None if it did not finish."""
    if kind == 'pretrain':
        meta = finished_pretraining(work_dir)
        if meta is None:
            return None
        top1 = (meta.get('val') or {}).get('accuracy/top1')
        return (f"cycle {meta['cycle']} of {meta['num_cycles']}, iteration {meta['iter']}"
                + ('' if top1 is None else f', val top-1 {top1:.2f}'))
    path = osp.join(work_dir, 'metrics.json')
    if not osp.isfile(path):
        return None
    with open(path) as f:
        headline = json.load(f).get('headline') or {}
    return f"{headline.get('name')} = {headline.get('value')}"
