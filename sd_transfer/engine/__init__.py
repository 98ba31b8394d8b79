"""mmengine components that every stage uses: safe checkpoints and fast-path switches."""
from .channels_last import ChannelsLastHook
from .checkpoint import AtomicLocalBackend, PlainCheckpointHook, find_resumable_checkpoint

__all__ = ['AtomicLocalBackend', 'ChannelsLastHook', 'PlainCheckpointHook',
           'find_resumable_checkpoint']
