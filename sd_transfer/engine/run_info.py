"""Log the batch size the optimizer sees, the learning rate it starts from, and the precision;
publish what the run actually runs (``setting``) and where (``env``) for its outputs' meta."""
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import IterBasedTrainLoop

from ..errors import UserError
from ..setting import batch_note, config_hash, data_identity, environment
from .amp import amp_settings


def per_process_batch(runner) -> int:
    """The config's ``train_dataloader.batch_size``, which mmengine's lr scaling reads too
    (mmdet's loaders batch through a batch sampler, so the built loader has none)."""
    return runner.cfg.train_dataloader.batch_size


def effective_batch(runner) -> int:
    """Images per step over all processes, as mmengine's lr scaling counts them."""
    return runner.world_size * per_process_batch(runner)


@HOOKS.register_module()
class RunInfoHook(Hook):
    """One line before training: effective batch and lr, scaled or not (``--auto-scale-lr``).

    mmengine scales the lr linearly by effective batch / ``auto_scale_lr.base_batch_size`` only
    when ``auto_scale_lr.enable`` is set; a 16-GPU run of an 8-GPU recipe otherwise trains at the
    recipe's lr with twice its batch, and nothing in the log says so.

    The message hub's ``setting`` (resolved config hash, total batch, world size) and ``env``
    infos go into exported backbones and metrics.json: the report groups runs by them. The
    precision goes into every checkpoint, and a resume in another one is refused (a bf16 run
    resumed on a GPU without native bf16 would switch to fp16 halfway, with a loss scaler that
    has no saved state).
    """

    priority = 'VERY_LOW'

    def __init__(self, amp: bool = False):
        self.amp = amp
        self.precision, self.why = 'fp32', 'fp32 (no --amp)'
        if amp:
            settings, self.why = amp_settings()
            if settings:  # (none: fp32 where --amp has no native low precision to use)
                self.precision = settings.get('dtype', 'bfloat16')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['precision'] = self.precision

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('precision')
        if runner._resume and saved is not None and saved != self.precision:
            raise UserError(f'--resume: the checkpoint was trained in {saved}, this run would '
                            f'train in {self.precision} ({self.why}); resume on the same kind of '
                            'device and with the same --amp')

    def before_train(self, runner) -> None:
        batch = effective_batch(runner)
        scale = runner.cfg.get('auto_scale_lr') or {}
        base = scale.get('base_batch_size')
        setting = dict(config_hash=config_hash(runner.cfg), total_batch=batch,
                       world_size=runner.world_size, precision=self.precision, base_batch=base,
                       by_epoch=not isinstance(runner.train_loop, IterBasedTrainLoop))
        runner.message_hub.update_info('setting', setting)
        runner.message_hub.update_info('env', environment(runner.world_size))
        if runner.val_loop is not None:
            runner.message_hub.update_info('data', data_identity(runner.val_loop.dataloader.dataset))
        groups = runner.optim_wrapper.optimizer.param_groups
        lrs = sorted({g.get('initial_lr', g['lr']) for g in groups})
        if scale.get('enable'):
            how = f'scaled by {batch}/{base} = {batch / base:g} (--auto-scale-lr)'
        elif base and base != batch:
            how = (f'NOT scaled: the recipe assumes a batch of {base}; pass --auto-scale-lr to '
                   f'scale it by {batch / base:g}')
        else:
            how = 'as the config sets it'
        runner.logger.info(
            f'effective batch size {batch} ({runner.world_size} process(es) x '
            f'{per_process_batch(runner)}); lr {", ".join(f"{lr:g}" for lr in lrs)}, '
            f'{how}; precision: {self.why}')
        if batch_note(setting):
            runner.logger.warning(f'{batch_note(setting)} (its label in the report says so)')
