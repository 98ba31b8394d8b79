"""Export the pretrained backbone as a checkpoint that mmdet and mmseg configs load directly."""
import os
import os.path as osp
from typing import Dict, Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from .distill.cycles import cycle_boundaries, schedulers
from .io import atomic_torch_save
from .stem_keys import to_downstream


def backbone_state_dict(model) -> Dict:
    """The backbone's weights on CPU, keyed as mmdet's / mmseg's ``ResNet`` expect.

    mmpretrain's ResNet uses torchvision naming (``conv1.weight``, ``layer1.0.bn1.*``); the
    backbone module's own ``state_dict`` therefore has the downstream keys (no ``backbone.``
    prefix, no head, no teacher), except for deep stems (ResNetV1c/V1d), which are renamed.
    """
    return to_downstream({k: v.detach().cpu().clone()
                          for k, v in model.backbone.state_dict().items()})


def backbone_meta(model) -> Dict:
    backbone = model.backbone
    meta = dict(arch=type(backbone).__name__, depth=getattr(backbone, 'depth', None),
                keys='mmdet/mmseg')
    meta['sd'] = model.sd_settings() if hasattr(model, 'sd_settings') else None
    # label smoothing is an arm of its own, not a baseline (mmpretrain's LabelSmoothLoss)
    meta['label_smoothing'] = getattr(getattr(model.head, 'loss_module', None),
                                      'label_smooth_val', None)
    return meta


@HOOKS.register_module()
class BackboneExportHook(Hook):
    """Write ``backbone_cycle<k>.pth`` at the end of every cycle and ``backbone.pth`` (the latest).

    Cycles come from the config's ``CosineRestartLR``; with any other schedule the whole run is one
    cycle. Files hold tensors and plain types only (they load with ``weights_only=True``) and are
    written atomically. When validation runs right at the end of a cycle, the files are rewritten
    with its metrics in ``meta['val']``; ``meta['finished']`` is set once the last cycle's files
    have them (or the run has no validation). A run resumed after its last iteration but before
    its final validation ended runs that validation.
    """

    priority = 'LOW'  # after the teacher hook, so the exported cycle number is settled

    def __init__(self, out_dir: Optional[str] = None):
        self.out_dir = out_dir
        self.last = None  # (cycle, iteration) of the latest export

    def before_train(self, runner) -> None:
        self.out_dir = self.out_dir or runner.work_dir
        try:
            self.boundaries = cycle_boundaries(runner)
        except ValueError:
            self.boundaries = [0, runner.max_iters]
        # what the lr follows ('CosineRestartLR', 'CosineAnnealingLR', 'MultiStepLR', ...)
        self.lr_schedule = sorted({type(s).__name__ for s in schedulers(runner)})
        loop = runner.train_loop
        self.validates = runner.val_loop is not None and getattr(
            loop, 'val_begin', 1) <= getattr(loop, 'max_epochs', loop.max_iters)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        done = runner.iter + 1
        if done in self.boundaries[1:]:
            self._export(runner, self.boundaries.index(done), done, val=None)

    def after_val_epoch(self, runner, metrics: Optional[Dict[str, float]] = None) -> None:
        if self.last is not None and self.last[1] == runner.iter and metrics:
            self._export(runner, self.last[0], runner.iter,
                         val={k: float(v) for k, v in metrics.items()})

    def after_train(self, runner) -> None:
        """A run stopped before its end (a time-limit signal) keeps its last cycle's export; one
        resumed after its last iteration exports (and validates) now."""
        if runner.iter != runner.max_iters or (self.last and self.last[1] == runner.iter):
            return
        cycle = len(self.boundaries) - 1
        if self.validates:
            # its final validation may not have ended before it was stopped
            runner.logger.info('resumed at the end of training: running its final validation')
            self.last = (cycle, runner.iter)
            runner.val_loop.run()  # exports again, with the metrics (after_val_epoch)
        else:
            self._export(runner, cycle, runner.iter, val=None)

    def _export(self, runner, cycle: int, iteration: int, val: Optional[Dict[str, float]]):
        self.last = (cycle, iteration)
        if not is_main_process():
            return
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        meta = backbone_meta(model)
        num_cycles = len(self.boundaries) - 1
        meta.update(cycle=cycle, num_cycles=num_cycles, iter=iteration,
                    epoch=round(iteration / len(runner.train_dataloader), 3), val=val,
                    finished=(cycle == num_cycles and iteration == runner.max_iters
                              and (val is not None or not self.validates)),
                    config=osp.basename(runner.cfg.filename or ''),
                    seed=runner.seed, experiment=runner.experiment_name,
                    teacher=runner.message_hub.get_info('file_teacher'),
                    generation=runner.cfg.get('generation'),
                    schedule=dict(boundaries=self.boundaries, max_iters=runner.max_iters),
                    lr_schedule=self.lr_schedule,
                    setting=runner.message_hub.get_info('setting'),
                    env=runner.message_hub.get_info('env'),
                    data=runner.message_hub.get_info('data'),
                    cost=runner.message_hub.get_info('cost'))
        checkpoint = dict(state_dict=backbone_state_dict(model), meta=meta)
        os.makedirs(self.out_dir, exist_ok=True)
        for name in (f'backbone_cycle{cycle}.pth', 'backbone.pth'):
            atomic_torch_save(checkpoint, osp.join(self.out_dir, name))
        runner.logger.info(
            f'exported backbone of cycle {cycle} (iteration {iteration}'
            f'{", with its val metrics" if val else ""}) to {osp.join(self.out_dir, "backbone.pth")}')
