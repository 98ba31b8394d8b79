"""What every entry point (tools, benchmarks) sets up before torch and mmengine are imported.

- SIGUSR1 is recorded from here on (:mod:`sd_transfer.stop_request`): a time-limit warning may
  come while the heavy imports still run, and unhandled it would kill the process.
- SIGTERM (Slurm's scancel, pre-emption and time limit; torchrun stopping the other ranks)
  ends the process as an exception: ``finally`` blocks and exit handlers run (a lock file is
  removed, a temporary file deleted) instead of the default's abrupt end.
- setuptools' deprecation warning about ``pkg_resources`` is silenced: mmengine imports (and
  reloads) that module, so every process printed the warning twice before anything of ours. Only
  that warning, by its message and the two places it is raised from; our own warnings and
  upstream's others still show.
"""
import signal
import sys
import warnings

from . import stop_request  # noqa: F401  listens from its import on


def _terminated(signum, frame):
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, _terminated)

warnings.filterwarnings('ignore', message='pkg_resources is deprecated as an API',
                        category=UserWarning, module=r'(mmengine\.utils\.package_utils|importlib)$')
