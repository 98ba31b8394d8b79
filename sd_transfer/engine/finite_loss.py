"""Stop at the first NaN or inf loss on any rank, before a checkpoint can save the broken weights."""
import math

import torch
from mmengine.dist import all_gather_object, all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..errors import CollectiveError


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise a :class:`CollectiveError` naming the iteration, the rank(s) and every loss term when
    one is not finite.

    The check is collective: one rank's fp16 overflow must stop every rank at the same step, or
    the others would wait in the next all-reduce until the NCCL watchdog gives up. Each step costs
    one all-reduced scalar; only a failure gathers the loss terms. Runs right after the step and
    before ``CheckpointHook`` (lower priority), so the newest checkpoint on disk is still the last
    good one.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        terms = {k: v.item() if hasattr(v, 'item') else float(v)
                 for k, v in (outputs or {}).items() if 'loss' in k}
        bad = not all(math.isfinite(v) for v in terms.values())
        if get_world_size() == 1:
            if bad:
                self._stop(runner, {0: terms})
            return
        flag = torch.tensor([float(bad)])
        all_reduce(flag, op='max')  # mmengine moves it to the backend's device and back
        if flag.item():
            everyone = all_gather_object((bad, terms))
            self._stop(runner, {rank: t for rank, (b, t) in enumerate(everyone) if b})

    def _stop(self, runner, bad: dict) -> None:
        ranks = '' if get_world_size() == 1 else (
            f' on rank{"s" * (len(bad) > 1)} {", ".join(map(str, bad))}')
        shown = ', '.join(f'{k}={v:.4g}' for k, v in next(iter(bad.values())).items())
        raise CollectiveError(f'non-finite loss at iteration {runner.iter + 1}{ranks}: {shown}; '
                              f'stopped without saving (the newest checkpoint in '
                              f'{runner.work_dir} is the last good one; lower the learning rate '
                              'or check the data)')
