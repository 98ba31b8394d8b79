"""What a run cost: images seen, teacher forwards, wall-clock and device-hours.

SD is one run plus a teacher forward per step after cycle 1; K born-again generations are K
runs, each with a teacher from the second on. Comparing them needs these numbers recorded by
every arm: they go into every exported backbone's meta, every checkpoint (so a resumed run keeps
counting) and ``WORK_DIR/summary.json``.
"""
import os.path as osp
import time

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..io import atomic_write_json


def _batch_size(data_batch) -> int:
    inputs = (data_batch or {}).get('inputs')
    return len(inputs) if inputs is not None else 0


@HOOKS.register_module()
class CostHook(Hook):
    """Count the run's cost; publish it as the message hub's ``cost`` info."""

    priority = 'BELOW_NORMAL'  # before BackboneExportHook (LOW) reads it

    def __init__(self):
        self.cost = dict(images=0, teacher_images=0, seconds=0.0, device_hours=0.0, devices=1)
        self.start = None

    def before_train(self, runner) -> None:
        self.cost['devices'] = runner.world_size
        self.start = time.time()
        self._publish(runner)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        images = _batch_size(data_batch) * runner.world_size
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        self.cost['images'] += images
        if getattr(model, 'taught_last_step', False):
            self.cost['teacher_images'] += images
        self._publish(runner)

    def _publish(self, runner) -> dict:
        now = time.time()
        self.cost['seconds'] += now - self.start
        # devices x time, accumulated: a run resumed on another number of GPUs counts right
        self.cost['device_hours'] += self.cost['devices'] * (now - self.start) / 3600
        self.start = now
        runner.message_hub.update_info('cost', dict(self.cost))
        return self.cost

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['cost'] = dict(self._publish(runner))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if runner._resume and checkpoint.get('cost'):
            self.cost.update(checkpoint['cost'])

    def after_train(self, runner) -> None:
        if is_main_process():
            atomic_write_json(dict(cost=self._publish(runner), iterations=runner.iter,
                                   epochs=runner.epoch, experiment=runner.experiment_name),
                              osp.join(runner.work_dir, 'summary.json'))
