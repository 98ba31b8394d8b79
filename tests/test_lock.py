"""The work-dir lock: held by the run's own process only, named when held, and a lock file where
the filesystem has no flock. Real processes, killed with SIGKILL as the OOM killer does."""
import os
import signal
import socket
import subprocess
import sys

import pytest
from conftest import REPO

from sd_transfer import lock
from sd_transfer.errors import UserError

# A filesystem without flock (Lustre mounted without it, NFS without lockd) answers ENOLCK: the
# only stand-in this machine has is fcntl.flock itself raising it.
NO_FLOCK = ('import errno, fcntl\n'
            'def flock(*args): raise OSError(errno.ENOLCK, "No locks available")\n'
            'fcntl.flock = flock\n')


def holder(work_dir, body='', prelude=''):
    """A process that takes the lock, runs ``body``, says 'locked' and waits to be killed;
    returns it and what it printed before 'locked'."""
    script = (f'{prelude}import time\nfrom sd_transfer import lock\n'
              f'lock.lock({str(work_dir)!r})\n{body}\nprint("locked", flush=True)\n'
              'time.sleep(60)\n')
    proc = subprocess.Popen([sys.executable, '-c', script], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    said = []
    for line in proc.stdout:
        if line.strip() == 'locked':
            return proc, said
        said.append(line.strip())
    raise AssertionError(proc.stderr.read())


def kill(proc):
    proc.kill()
    proc.wait()


def take(work_dir, prelude=''):
    """Take the lock in a fresh process as a new run does; return (exit code, stderr)."""
    script = f'{prelude}from sd_transfer import lock\nlock.lock({str(work_dir)!r})\n'
    proc = subprocess.run([sys.executable, '-c', script], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    return proc.returncode, proc.stderr


def test_forked_children_do_not_keep_the_lock(tmp_path):
    """A DataLoader worker is a fork: it must not keep a killed run's work dir locked."""
    proc, said = holder(tmp_path, body='import os\nchild = os.fork()\nif child == 0:\n    '
                        'time.sleep(30)\n    os._exit(0)\nprint(child, flush=True)')
    child = int(said[0])
    try:
        kill(proc)  # the forked child lives on
        code, err = take(tmp_path)
        assert code == 0, err
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_held_lock_names_its_live_holder_and_says_the_recorder_is_dead(tmp_path):
    """A child that got the descriptor by exec (no fork handler runs) keeps the lock after its
    parent, the run that recorded itself, is killed: the refusal names both."""
    path = str(tmp_path / lock.LOCK_FILE)
    proc, said = holder(tmp_path, body=(
        'import os, subprocess\n'
        f'fd = next(int(f) for f in os.listdir("/proc/self/fd") if os.path.realpath('
        f'f"/proc/self/fd/{{f}}") == {path!r})\n'
        'child = subprocess.Popen(["sleep", "30"], pass_fds=[fd])\n'
        'print(child.pid, flush=True)'))
    child = int(said[0])
    try:
        with pytest.raises(UserError, match=f'still going \\(pid {proc.pid} on '):
            lock.lock(str(tmp_path))
        kill(proc)
        with pytest.raises(UserError) as e:
            lock.lock(str(tmp_path))
        message = str(e.value)
        assert f'locked by pid {child} on {socket.gethostname()}' in message
        assert f'the run that took the lock (pid {proc.pid} on' in message and 'is dead' in message
    finally:
        os.kill(child, signal.SIGKILL)


def test_without_flock_a_lock_file_holds_host_and_pid(tmp_path):
    first, _ = holder(tmp_path, prelude=NO_FLOCK)
    assert 'flock is not supported here' in first.stderr.readline()
    try:
        code, err = take(tmp_path, prelude=NO_FLOCK)
        assert code == 1 and f'still going (pid {first.pid} on {socket.gethostname()}' in err
    finally:
        kill(first)
    # killed: the file it left is stale on this host and taken over; a normal exit removes it
    assert (tmp_path / lock.OWNER_FILE).is_file()
    code, err = take(tmp_path, prelude=NO_FLOCK)
    assert code == 0, err
    assert not (tmp_path / lock.OWNER_FILE).exists()
