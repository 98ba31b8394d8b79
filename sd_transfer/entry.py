"""What every entry point (tools, benchmarks) sets up before torch and mmengine are imported.

- SIGUSR1 is recorded from here on (:mod:`sd_transfer.stop_request`): a time-limit warning may
  come while the heavy imports still run, and unhandled it would kill the process.
- SIGTERM (Slurm's scancel, pre-emption and time limit; torchrun stopping the other ranks)
  ends the process as an exception: ``finally`` blocks and exit handlers run (a lock file is
  removed, a temporary file deleted) instead of the default's abrupt end. Only in the tool's
  own process: a data loader worker keeps the default, since torch stops a worker that does not
  exit in time with SIGTERM, and one that ran exit handlers would wait for its queue's feeder
  thread, which waits for a parent that waits for it (found as a hung transfer).
- setuptools' deprecation warning about ``pkg_resources`` is silenced: mmengine imports (and
  reloads) that module, so every process printed the warning twice before anything of ours. Only
  that warning, by its message and the two places it is raised from; our own warnings and
  upstream's others still show.
"""
import multiprocessing
import os
import signal
import sys
import warnings

from . import stop_request  # noqa: F401  listens from its import on


def _terminated(signum, frame):
    sys.exit(128 + signum)


def _default():
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


if multiprocessing.parent_process() is None:  # not a spawned worker
    signal.signal(signal.SIGTERM, _terminated)
    os.register_at_fork(after_in_child=_default)  # nor a forked one

warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API',
                        category=UserWarning, module=r'(mmengine\.utils\.package_utils|importlib)$')
