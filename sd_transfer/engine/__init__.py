"""mmengine components that every stage uses: safe checkpoints and fast-path switches."""
from .channels_last import ChannelsLastHook
from .checkpoint import AtomicLocalBackend, PlainCheckpointHook

__all__ = ['AtomicLocalBackend', 'ChannelsLastHook', 'PlainCheckpointHook']
