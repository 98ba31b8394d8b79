"""Stop at the first NaN or inf loss, before a checkpoint can save the broken weights."""
import math

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..errors import UserError


@HOOKS.register_module()
class FiniteLossHook(Hook):
    """Raise a :class:`UserError` naming the iteration and every loss term when one is not finite.

    Runs right after the step and before ``CheckpointHook`` (lower priority), so the newest
    checkpoint on disk is still the last good one.
    """

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        terms = {k: v.item() if hasattr(v, 'item') else float(v)
                 for k, v in (outputs or {}).items() if 'loss' in k}
        if all(math.isfinite(v) for v in terms.values()):
            return
        shown = ', '.join(f'{k}={v:.4g}' for k, v in terms.items())
        raise UserError(f'non-finite loss at iteration {runner.iter + 1}: {shown}; stopped '
                        f'without saving (the newest checkpoint in {runner.work_dir} is the last '
                        'good one; lower the learning rate or check the data)')
