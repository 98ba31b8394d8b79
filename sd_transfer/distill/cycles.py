"""Cycle boundaries of the cyclic learning rate: the one source of truth for SD's schedule."""
from typing import List

from mmengine.optim.scheduler import CosineRestartLR

from ..errors import UserError


def schedulers(runner):
    """The runner's param schedulers, as one list."""
    found = runner.param_schedulers or []
    if isinstance(found, dict):
        return [s for group in found.values() for s in group]
    return list(found)


def cycle_boundaries(runner) -> List[int]:
    """Iterations where the cycles of the runner's ``CosineRestartLR`` start, plus where the last ends.

    ``[b0, b1, ..., bK]``: cycle ``k`` (1-based) runs over iterations ``b(k-1) .. bk - 1``. An
    epoch-based scheduler is converted with the train loader's length, exactly as mmengine does
    with ``convert_to_iter_based``. Raises ``ValueError`` unless there is exactly one, and a
    :class:`UserError` when the cycles do not end where the training loop does: the last cycle
    would be cut short or be followed by epochs at the minimum lr, and its backbone would be
    exported as if it were the finished one.
    """
    restarts = [s for s in schedulers(runner) if isinstance(s, CosineRestartLR)]
    if len(restarts) != 1:
        raise ValueError('snapshot distillation needs exactly one CosineRestartLR in '
                         f'param_scheduler; found {len(restarts)}')
    sched = restarts[0]
    scale = len(runner.train_dataloader) if sched.by_epoch else 1
    ends = [int((sched.begin + c) * scale) for c in [0] + list(sched.cumulative_periods)]
    if ends[-1] != runner.max_iters:
        loop = runner.train_loop
        length = (f'{loop.max_epochs} epochs of {len(runner.train_dataloader)} iterations'
                  if hasattr(loop, 'max_epochs') else f'{loop.max_iters} iterations')
        raise UserError(f'param_scheduler: the CosineRestartLR cycles end at iteration '
                        f'{ends[-1]}, training ends at iteration {runner.max_iters} ({length}); '
                        'make its periods add up to train_cfg.max_epochs (or max_iters)')
    return ends
