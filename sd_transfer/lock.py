"""One run at a time in a work dir: a lock held by the run's own process, gone when it is.

The first process of a run (rank 0) takes an exclusive ``flock`` on ``WORK_DIR/.lock`` and keeps
it until it exits, killed or not. Forked children (DataLoader workers) inherit the open file,
and with it the lock, until they notice their parent is gone (up to 5 s): so every fork closes
the child's copy, and a run killed with SIGKILL can be resumed the moment its main process is
gone.

Some cluster filesystems have no ``flock`` (Lustre mounted without it, NFS without lockd). There
the lock is ``WORK_DIR/.lock-owner``, created exclusively and holding host, pid and the pid's
start time; it is removed when the process exits normally, and a file left by a killed process is
recognised as stale on the host that wrote it, or by the same Slurm job once requeued (on
whatever node).

A lock recorded by an earlier start of this very Slurm job (requeued, possibly on another node,
where NFS may keep a dead node's lock for its lease) or taken for a moment by a study checking
it is waited for a while before the run gives up.
"""
import atexit
import errno
import fcntl
import os
import os.path as osp
import socket
import sys
import time
from typing import Optional

from .errors import UserError

LOCK_FILE = '.lock'
OWNER_FILE = '.lock-owner'  # where flock is not supported

_HELD = {}  # work dir -> open file holding the flock, or path of the owner file we created
_warned = []
PATIENCE = dict(moment=2.0, same_job=180.0)  # seconds a lock is waited for (see above)


def lock(work_dir: str) -> None:
    """Lock ``work_dir`` for this process (rank 0 only), or raise a :class:`UserError` naming
    the live holder."""
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if rank != '0' or work_dir in _HELD:
        return
    handle = open(osp.join(work_dir, LOCK_FILE), 'a+')
    start = time.time()
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:  # EWOULDBLOCK: another process holds it
            handle.seek(0)
            recorded = handle.read().strip()
            patience = PATIENCE['same_job' if _same_job(recorded) else 'moment']
            if time.time() - start < patience:
                time.sleep(0.5)
                continue
            handle.close()
            raise UserError(_in_use(work_dir, recorded, osp.join(work_dir, LOCK_FILE))) from None
        except OSError as e:  # ENOLCK, ENOSYS, EOPNOTSUPP, ...: this filesystem has no flock
            handle.close()
            _lock_with_owner_file(work_dir, e)
            return
    handle.truncate(0)
    handle.write(_me() + '\n')
    handle.flush()
    _HELD[work_dir] = handle


def holder(work_dir: str) -> Optional[str]:
    """Who holds ``work_dir``'s lock ('pid P on HOST'), or None when nobody does. Takes nothing."""
    path = osp.join(work_dir, LOCK_FILE)
    owner = osp.join(work_dir, OWNER_FILE)
    if osp.isfile(owner):
        recorded = _read(owner)
        return None if _dead_here(recorded) else recorded
    if not osp.isfile(path):
        return None
    with open(path, 'a+') as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            return handle.read().strip() or 'another process'
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None


def _me() -> str:
    job = os.environ.get('SLURM_JOB_ID')
    return (f'pid {os.getpid()} on {socket.gethostname()} (started {_start_time(os.getpid())})'
            + (f' in Slurm job {job}' if job else ''))


def _same_job(recorded: str) -> bool:
    """Whether ``recorded`` is an earlier start of this Slurm job (it was requeued)."""
    job = os.environ.get('SLURM_JOB_ID')
    return bool(job) and recorded.endswith(f' in Slurm job {job}') and not recorded.startswith(
        f'pid {os.getpid()} on {socket.gethostname()} ')


def _start_time(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot: a pid reused later has another."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _parse(recorded: str):
    """``(pid, host, start)`` from 'pid P on HOST (started S)'; None for anything else."""
    parts = recorded.split()
    if len(parts) < 4 or parts[0] != 'pid' or parts[2] != 'on' or not parts[1].isdigit():
        return None
    start = parts[5].rstrip(')') if len(parts) > 5 and parts[4] == '(started' else None
    return int(parts[1]), parts[3], start


def _dead_here(recorded: str) -> bool:
    """Whether the recorded holder ran on this host and is gone (or its pid was reused)."""
    parsed = _parse(recorded)
    if parsed is None or parsed[1] != socket.gethostname():
        return False
    pid, _, start = parsed
    now = _start_time(pid)
    return now is None or (start not in (None, 'None') and now != start)


def _pids_holding(path: str):
    """Live processes on this host with ``path`` open (Linux ``/proc``)."""
    try:
        target = os.stat(path)
    except OSError:
        return []
    pids = []
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            fds = os.listdir(f'/proc/{pid}/fd')
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f'/proc/{pid}/fd/{fd}')
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
                pids.append(int(pid))
                break
    return pids


def _in_use(work_dir: str, recorded: str, path: str) -> str:
    recorded = recorded or 'another process'
    if _dead_here(recorded):
        live = [pid for pid in _pids_holding(path) if pid != os.getpid()]
        alive = f'pid {", ".join(map(str, live))}' if live else 'a process not visible here'
        return (f'{work_dir} is locked by {alive} on {socket.gethostname()}; the run that took '
                f'the lock ({recorded}) is dead; wait for the holder to exit or stop it')
    return (f'{work_dir} is in use by a run that is still going ({recorded}); wait for it or '
            'choose another --work-dir')


def _lock_with_owner_file(work_dir: str, why: OSError) -> None:
    path = osp.join(work_dir, OWNER_FILE)
    if not _warned:
        _warned.append(True)
        print(f'warning: {work_dir}: flock is not supported here ({why.strerror}); locking with '
              f'{OWNER_FILE}, a file holding host and pid, instead', file=sys.stderr)
    for _ in range(2):  # a second try after removing a stale owner file
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            recorded = _read(path)
            if not (_dead_here(recorded) or _same_job(recorded)):
                raise UserError(f'{work_dir} is in use by a run that is still going ({recorded}); '
                                f'wait for it, choose another --work-dir, or, if that run is '
                                f'gone (a failed node), delete {path}') from None
            try:
                os.unlink(path)  # left by a killed process of this host, or of this job
            except FileNotFoundError:
                pass
            continue
        with os.fdopen(fd, 'w') as f:
            f.write(_me() + '\n')
        _HELD[work_dir] = path
        return
    raise UserError(f'{work_dir}: another run took {path} at the same time; try again')


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        if e.errno == errno.ENOENT:
            return ''
        raise


def _release_owner_files() -> None:
    for path in _HELD.values():
        if isinstance(path, str) and _read(path) == _me():
            os.unlink(path)


def _forget_in_child() -> None:
    """After fork: close the child's copy of each lock file, which leaves the parent's lock held
    (a flock goes only with LOCK_UN or the last descriptor), and own no owner file."""
    for held in _HELD.values():
        if not isinstance(held, str):
            held.close()
    _HELD.clear()


atexit.register(_release_owner_files)
os.register_at_fork(after_in_child=_forget_in_child)
