"""Stop at SIGUSR1 with a checkpoint a resume continues exactly: how a run outlives a time limit.

Slurm sends the signal ahead of a job's time limit (``sbatch --signal=B:USR1@SECONDS``; the
study's job scripts forward it to the run). The run stops at the next point where mmengine's
resume continues with exactly the iterations an uninterrupted run would train: the end of the
epoch for epoch-based loops (mmengine restarts an interrupted epoch from its first batch), the end
of the iteration for iteration-based ones (mmengine skips the batches already trained). Every
rank stops at the same point: the ranks agree on it with one all-reduced flag. The tool then
exits with :data:`RESUMABLE`, and the job script requeues its own job.
"""
import torch
from mmengine.dist import all_reduce, barrier, get_world_size
from mmengine.hooks import CheckpointHook, Hook
from mmengine.registry import HOOKS
from mmengine.runner import EpochBasedTrainLoop

from .. import stop_request

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

    def _agreed(self) -> bool:
        if get_world_size() == 1:
            return stop_request.requested()
        flag = torch.tensor([float(stop_request.requested())])
        all_reduce(flag, op='max')
        return bool(flag.item())

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self.by_epoch and self._agreed():
            self._stop(runner, runner.iter + 1)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self._agreed():
            self._stop(runner, runner.epoch + 1)

    def _stop(self, runner, step: int) -> None:
        hook = next(h for h in runner.hooks if isinstance(h, CheckpointHook))
        name = hook.filename_tmpl.format(step)
        if not str(hook.last_ckpt or '').endswith(name):  # not saved at this step yet
            hook._save_checkpoint(runner)
        self.checkpoint = hook.last_ckpt
        runner.train_loop.stop_training = True
        runner.logger.info(f'SIGUSR1: saved {self.checkpoint}; stopping for a resume')

    def after_train(self, runner) -> None:
        if self.checkpoint is not None and runner.iter < runner.max_iters:
            barrier()  # rank 0 has written the checkpoint before any rank exits
            raise StoppedAtSignal(f'stopped at SIGUSR1 after iteration {runner.iter}, with '
                                  f'{self.checkpoint}; --resume continues from there')
