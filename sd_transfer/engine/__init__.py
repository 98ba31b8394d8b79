"""mmengine components that every stage uses: safe checkpoints, run info, fast-path switches."""
from .amp import CPUAmpOptimWrapper, amp_settings
from .channels_last import ChannelsLastDistributedDataParallel, ChannelsLastHook
from .checkpoint import AtomicLocalBackend, PlainCheckpointHook, find_resumable_checkpoint
from .cost import CostHook
from .determinism import DeterminismHook, prepare_deterministic_env
from .finite_loss import FiniteLossHook
from .run_info import RunInfoHook, effective_batch

__all__ = ['AtomicLocalBackend', 'CPUAmpOptimWrapper', 'ChannelsLastDistributedDataParallel',
           'ChannelsLastHook', 'CostHook', 'DeterminismHook', 'FiniteLossHook', 'PlainCheckpointHook',
           'RunInfoHook', 'amp_settings', 'effective_batch', 'find_resumable_checkpoint',
           'prepare_deterministic_env']
