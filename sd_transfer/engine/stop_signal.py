"""Stop at SIGUSR1 with a checkpoint a resume continues exactly: how a run outlives a time limit.

Slurm sends the signal ahead of a job's time limit (``sbatch --signal=B:USR1@SECONDS``; the
study's job scripts forward it to the run). The run stops at the next point where mmengine's
resume continues with exactly the iterations an uninterrupted run would train: the end of the
epoch for epoch-based loops (mmengine restarts an interrupted epoch from its first batch), the end
of the iteration for iteration-based ones (mmengine skips the batches already trained). Every
rank stops at the same point: the ranks agree on it with one all-reduced flag. Rank 0 writes
``WORK_DIR/stopped.json`` (removed when the run resumes), every rank exits with
:data:`RESUMABLE`, and the job script requeues its own job when it finds that file: not by the
exit code, which srun's ``--kill-on-bad-exit`` turns into a signal's on the ranks it stops.
"""
import os
import os.path as osp
import time

import torch
from mmengine.dist import all_reduce, barrier, get_world_size, is_main_process
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from .. import stop_request
from ..io import atomic_write_json
from ..run_dir import STOPPED

RESUMABLE = 3  # exit code: stopped with a checkpoint, --resume continues


class StoppedAtSignal(Exception):
    """Raised once the checkpoint is written: the run stops here, to be resumed."""


@HOOKS.register_module()
class StopAtSignalHook(Hook):
    """On ``SIGUSR1`` (recorded by :mod:`sd_transfer.stop_request`): checkpoint at the next
    exact-resume point, stop, raise :class:`StoppedAtSignal`."""

    priority = 'LOWEST'  # after CheckpointHook: it may have saved this very step already

    def __init__(self):
        self.checkpoint = None

    def before_run(self, runner) -> None:
        self.by_epoch = isinstance(runner.train_loop, EpochBasedTrainLoop)
        self.epoch_start = None

    def before_train_epoch(self, runner) -> None:
        self.epoch_start = time.time()

    def _agreed(self) -> bool:
        if get_world_size() == 1:
            return stop_request.requested()
        flag = torch.tensor([float(stop_request.requested())])
        all_reduce(flag, op='max')
        return bool(flag.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and self._agreed() and runner.iter + 1 < runner.max_iters:
            self._stop(runner, runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and runner.epoch == 0 and 'SLURM_JOB_ID' in os.environ:
            runner.logger.info(
                f'SIGUSR1 stops at the end of an epoch: this one took '
                f'{time.time() - self.epoch_start:.0f} s; a time-limit warning must come at least '
                'that long (plus validation and a checkpoint) before the limit (the study\'s '
                'slurm.signal_seconds)')
        if self.by_epoch and self._agreed() and runner.epoch + 1 < runner.train_loop.max_epochs:
            self._stop(runner, runner.epoch + 1)  # (at the last epoch's end: just finish)

    def _stop(self, runner, step: int) -> None:
        hook = next(h for h in runner.hooks if isinstance(h, CheckpointHook))
        name = hook.filename_tmpl.format(step)
        if not str(hook.last_ckpt or '').endswith(name):  # not saved at this step yet
            hook._save_checkpoint(runner)
        self.checkpoint = hook.last_ckpt
        if is_main_process():
            atomic_write_json(dict(checkpoint=self.checkpoint, iteration=runner.iter + 1),
                              osp.join(runner.work_dir, STOPPED))
        runner.train_loop.stop_training = True
        runner.logger.info(f'SIGUSR1: saved {self.checkpoint}; stopping for a resume')

    def after_train(self, runner) -> None:
        if self.checkpoint is not None:
            barrier()  # rank 0 has written the checkpoint before any rank exits
            raise StoppedAtSignal(f'stopped at SIGUSR1 after iteration {runner.iter}, with '
                                  f'{self.checkpoint}; --resume continues from there')
