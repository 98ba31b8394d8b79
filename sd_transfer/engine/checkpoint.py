"""Checkpoints that are written atomically and load with ``torch.load(weights_only=True)``.

A stock mmengine 0.10.7 checkpoint pickles the message hub's ``HistoryBuffer`` objects and numpy
values; loading them under ``weights_only=True`` (torch >= 2.6's default) would need
``builtins.getattr`` allow-listed, which defeats safe loading. Instead we save plain data and
rebuild those objects after loading, through the hook points mmengine gives.
"""
import glob
import os.path as osp

import numpy as np
from mmengine.fileio import LocalBackend, register_backend
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.registry import HOOKS

from ..io import atomic_write_bytes, safe_torch_load

_BUFFER_TAG = '__history_buffer__'


def to_plain(obj):
    """Replace HistoryBuffers and numpy values by plain Python data, recursively."""
    if isinstance(obj, HistoryBuffer):
        logs, counts = obj.data
        return {_BUFFER_TAG: True, 'log_history': logs.tolist(),
                'count_history': counts.tolist(), 'max_length': obj.max_length}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, to_plain(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_plain(v) for v in obj)
    return obj


def from_plain(obj):
    """Inverse of :func:`to_plain` for the HistoryBuffers (numpy values stay plain)."""
    if isinstance(obj, dict):
        if obj.get(_BUFFER_TAG):
            return HistoryBuffer(obj['log_history'], obj['count_history'], obj['max_length'])
        return type(obj)((k, from_plain(v)) for k, v in obj.items())
    return obj


@HOOKS.register_module()
class PlainCheckpointHook(Hook):
    """Keep checkpoints plain so ``--resume`` works with ``weights_only=True`` left on."""

    priority = 'VERY_LOW'  # last before saving: see what every other hook added

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key in list(checkpoint):
            if key != 'state_dict':
                checkpoint[key] = to_plain(checkpoint[key])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            checkpoint['message_hub'] = from_plain(checkpoint['message_hub'])


@register_backend('atomic_local')
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend, but a crash mid-write leaves the previous file intact."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), str(filepath))


def find_resumable_checkpoint(work_dir: str, log=print):
    """The newest checkpoint in ``work_dir`` that loads, or ``None``.

    mmengine resumes from the file named in ``last_checkpoint``. If that file is unreadable
    (truncated by a full disk, say), say so, name it, and fall back to the next newest.
    """
    candidates = sorted(
        (p for p in glob.glob(osp.join(work_dir, '*.pth'))
         if not osp.basename(p).startswith('backbone')),
        key=osp.getmtime, reverse=True)
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named in candidates:
            candidates.remove(named)
            candidates.insert(0, named)
    for path in candidates:
        try:
            checkpoint = safe_torch_load(path)
            if 'meta' not in checkpoint or 'state_dict' not in checkpoint:
                raise ValueError(f'{path}: not a training checkpoint (no meta/state_dict)')
            return path
        except ValueError as e:
            log(f'warning: cannot resume from {path}: {e}; trying the previous checkpoint')
    return None
