"""Atomic file writes: a crash or pre-emption mid-write never leaves a half-written file.

Every file we produce (checkpoints, exported backbones, metrics.json, reports) is written to a
temporary file in the same folder, flushed to disk, then renamed over the target, which POSIX
makes atomic: readers see either the old file or the new one.
"""
import hashlib
import io
import json
import os
import pickle
import re
import tempfile

import torch

# mkstemp creates files with mode 0600; give ours the permissions an ordinary open() would.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(data: bytes, path: str) -> None:
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write_text(text: str, path: str) -> None:
    atomic_write_bytes(text.encode('utf-8'), path)


def atomic_write_json(obj, path: str) -> None:
    atomic_write_text(json.dumps(obj, indent=2, sort_keys=True) + '\n', path)


def atomic_torch_save(obj, path: str) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(buffer.getvalue(), path)


def safe_torch_load(path: str, map_location='cpu'):
    """``torch.load`` with ``weights_only=True``; a file holding pickled code is refused, never run."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'{path}: no such file')
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        if 'Weights only load failed' in str(e):
            found = re.search(r'(Unsupported|Trying to load unsupported)[^\n]*', str(e))
            detail = found.group(0) if found else 'unsupported content'
            raise ValueError(f'{path}: refused: not only tensors and plain data, and weights-only '
                             f'loading runs nothing else ({detail})') from e
        raise ValueError(f'{path}: not a PyTorch checkpoint ({e})') from e
    except Exception as e:  # a text file, a truncated zip, ...: torch's errors vary by cause
        raise ValueError(f'{path}: not a loadable PyTorch checkpoint (truncated or another '
                         f'format: {type(e).__name__})') from e


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()
