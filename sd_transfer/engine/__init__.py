"""mmengine components that every stage uses: safe checkpoints and fast-path switches."""
from .channels_last import ChannelsLastHook
from .checkpoint import AtomicLocalBackend, PlainCheckpointHook, find_resumable_checkpoint
from .finite_loss import FiniteLossHook

__all__ = ['AtomicLocalBackend', 'ChannelsLastHook', 'FiniteLossHook', 'PlainCheckpointHook',
           'find_resumable_checkpoint']
