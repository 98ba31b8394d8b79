"""channels_last memory format as a config switch (``--channels-last``)."""
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class ChannelsLastHook(Hook):
    """Convert the model to channels_last before training or testing.

    Convolutions pick channels_last when their weights are channels_last, so inputs need no
    conversion; on tensor-core GPUs this avoids layout transposes around every conv. The SD teacher
    is copied from the student and inherits its memory format.
    """

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        runner.model.to(memory_format=torch.channels_last)
