"""A study on this machine: one run after another, or side by side on disjoint GPUs.

``launcher='none'``: each run is one process, one at a time, its output on the terminal.
``launcher='pytorch'``: each run is started by torchrun with the study's process count for its
kind (capped at ``gpus``); runs that fit run at the same time on disjoint GPUs
(``CUDA_VISIBLE_DEVICES``), a transfer once its backbone is finished; their output goes to
``WORK_DIR/logs/``. Without GPUs the same code runs gloo processes (how the tests run it).
Finished runs are skipped and interrupted ones resumed, so the same command continues a study.
"""
import os
import os.path as osp
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from typing import Dict, List

from ..errors import UserError
from . import Run, Study, report, save_plan


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'


class _Progress:
    """Which run of how many, how long each took, and an ETA from the runs finished so far."""

    def __init__(self, study: Study, slots: int):
        self.study, self.slots = study, slots
        self.done: Dict[str, List[float]] = defaultdict(list)  # kind -> device-seconds per run

    def tag(self, run: Run) -> str:
        return f'[{run.index}/{len(self.study.runs)}] {run.kind} {run.name}'

    def finished(self, run: Run, seconds: float, devices: int, left: List[Run]) -> str:
        self.done[run.kind].append(seconds * devices)
        measured = [s for kind in self.done for s in self.done[kind]]
        work = sum(statistics.mean(self.done.get(r.kind) or measured) for r in left)
        eta = '' if not left else f'; ETA {_duration(work / self.slots)} for {len(left)} left'
        return f'{self.tag(run)}: done in {seconds:.0f} s{eta}'


def run_here(study: Study, launcher: str = 'none', gpus: int = 1,
             keep_going: bool = False) -> str:
    """Run the study's unfinished runs here, write the report; return its path.

    A failed run stops the study once the runs going have ended (with ``keep_going``: the others
    go on; the runs that need its backbone are skipped); the report lists what is missing, and a
    :class:`UserError` names what failed.
    """
    save_plan(study)
    slots = 1 if launcher == 'none' else gpus
    if launcher != 'none' and gpus > len(_visible()):
        raise UserError(f'--gpus {gpus}: only {len(_visible())} GPU(s) are visible here '
                        f"(CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']})")
    progress = _Progress(study, slots)
    pending = []
    for run in study.runs:
        if run.finished():
            print(f'{progress.tag(run)}: finished before, skipped', flush=True)
        else:
            pending.append(run)
    free = list(range(slots))
    going = {}  # Popen -> (run, slots, start)
    failed, skipped = [], []
    by_name = {run.name: run for run in study.runs}
    while pending or going:
        for run in list(pending):
            after = by_name.get(run.after)
            if after is not None and (after in failed or after in skipped):
                pending.remove(run)
                skipped.append(run)
                print(f'{progress.tag(run)}: skipped, its backbone failed', flush=True)
                continue
            if (failed and not keep_going) or (after is not None and not after.finished()):
                continue
            need = 1 if launcher == 'none' else min(max(study.processes(run.kind), 1), gpus)
            if need > len(free):
                continue
            devices, free = free[:need], free[need:]
            pending.remove(run)
            going[_start(study, run, launcher, devices, progress)] = (run, devices, time.time())
        if failed and not keep_going:
            pending.clear()
        if not going:
            break
        time.sleep(0.5)
        for proc, (run, devices, start) in list(going.items()):
            if proc.poll() is None:
                continue
            del going[proc]
            free = sorted(free + devices)
            if proc.returncode == 0:
                print(progress.finished(run, time.time() - start, len(devices), pending),
                      flush=True)
            else:
                failed.append(run)
                print(f'{progress.tag(run)}: failed (exit {proc.returncode}); its log: '
                      f'{_log(study, run) if launcher != "none" else run.work_dir}', flush=True)
    path = report(study)
    if failed:
        missing = sum(not r.finished() for r in study.runs)
        raise UserError(f"{len(failed)} run(s) failed ({', '.join(r.name for r in failed)}); "
                        f'{missing} of {len(study.runs)} runs not finished; report of the '
                        f'others: {path}; run the study again to resume')
    print(f'study finished: {len(study.runs)} runs; report: {path}')
    return path


def _log(study: Study, run: Run) -> str:
    return osp.join(study.work_dir, 'logs', f'{run.index:03d}_{run.name.replace("/", "__")}.log')


def _start(study: Study, run: Run, launcher: str, devices: List[int], progress) -> subprocess.Popen:
    state = 'resuming' if osp.isdir(run.work_dir) else 'starting'
    if launcher == 'none':
        command = [sys.executable, *run.command()]
        print(f'{progress.tag(run)}: {state}\n$ ' + ' '.join(shlex.quote(c) for c in command[1:]),
              flush=True)
        return subprocess.Popen(command)
    command = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={len(devices)}',
               f'--master_port={_free_port()}', *run.command('pytorch')]
    log = _log(study, run)
    os.makedirs(osp.dirname(log), exist_ok=True)
    gpus = ','.join(_visible()[d] for d in devices)
    print(f'{progress.tag(run)}: {state} on GPU(s) {gpus}; log {log}', flush=True)
    with open(log, 'a') as out:
        out.write('$ ' + ' '.join(shlex.quote(c) for c in command) + '\n')
        out.flush()
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ, CUDA_VISIBLE_DEVICES=gpus))


def _visible() -> List[str]:
    """The GPUs this study may use: those it was given (an allocation's CUDA_VISIBLE_DEVICES),
    else all, by index."""
    given = os.environ.get('CUDA_VISIBLE_DEVICES')
    return given.split(',') if given else [str(i) for i in range(1024)]
