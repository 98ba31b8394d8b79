"""channels_last memory format as a config switch (``--channels-last``).

Two orderings matter. The weights must be initialised in the default layout: random init fills
a tensor in memory order, so a channels_last model would draw different initial values and a run
would depend on the flag. And DDP must be built on the final layout: it lays out its gradient
buckets by the parameters' strides at construction, and a model converted after wrapping copies
every gradient between layouts each step ("grad strides do not match bucket view strides").
mmengine wraps the model in ``Runner.__init__`` and initialises it later, in ``train()``; so
under DDP the wrapper converts before wrapping, the hook turns the model back before the weight
init, and (like without DDP) converts it once more before the first iteration.
"""
import torch
from mmengine.hooks import Hook
from mmengine.model import MMDistributedDataParallel, is_model_wrapper
from mmengine.registry import HOOKS, MODEL_WRAPPERS


def _unwrap(model):
    return model.module if is_model_wrapper(model) else model


@MODEL_WRAPPERS.register_module()
class ChannelsLastDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` built on the channels_last model it will train."""

    def __init__(self, module, **kwargs):
        super().__init__(module=module.to(memory_format=torch.channels_last), **kwargs)


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Train in channels_last: weights initialised (and resumed) as without it, then converted.

    Convolutions pick channels_last when their weights are channels_last, so inputs need no
    conversion; on tensor-core GPUs this avoids layout transposes around every conv. The SD
    teacher is copied from the student and inherits its memory format; a fixed teacher read
    from a file is converted with it.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        _unwrap(runner.model).to(memory_format=torch.contiguous_format)

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        model.to(memory_format=torch.channels_last)
        if getattr(model, 'teacher', None) is not None:  # a fixed teacher, set before training
            model.teacher.to(memory_format=torch.channels_last)
        runner.logger.info('channels_last: model converted after weight init, before training')
