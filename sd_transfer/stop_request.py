"""SIGUSR1, recorded from the moment a tool starts: a request to stop at the next point a resume
continues exactly (see :mod:`sd_transfer.engine.stop_signal`).

Slurm sends it ahead of a job's time limit (``--signal``), possibly while the tool is still
importing torch; unhandled, it would kill the process. So this module starts listening when it
is imported, which :mod:`sd_transfer.entry`, the first module every tool imports, does before
anything heavy.
"""
import signal

_received = []


def _receive(signum, frame) -> None:
    _received.append(signum)


def requested() -> bool:
    return bool(_received)


signal.signal(signal.SIGUSR1, _receive)
