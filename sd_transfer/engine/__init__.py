"""mmengine components that every stage uses: safe checkpoints, run info, fast-path switches."""
from .amp import CPUAmpOptimWrapper, amp_settings
from .channels_last import ChannelsLastDistributedDataParallel, ChannelsLastHook
from .checkpoint import AtomicLocalBackend, PlainCheckpointHook, find_resumable_checkpoint
from .cost import CostHook
from .determinism import DeterminismHook, prepare_deterministic_env
from .finite_loss import FiniteLossHook
from .generator_states import GeneratorStatesHook
from .resume import ResumeHook
from .run_info import RunInfoHook, effective_batch
from .stop_signal import RESUMABLE, StopAtSignalHook, StoppedAtSignal

__all__ = ['AtomicLocalBackend', 'CPUAmpOptimWrapper', 'ChannelsLastDistributedDataParallel',
           'ChannelsLastHook', 'CostHook', 'DeterminismHook', 'FiniteLossHook',
           'GeneratorStatesHook', 'PlainCheckpointHook', 'RESUMABLE', 'ResumeHook', 'RunInfoHook',
           'StopAtSignalHook', 'StoppedAtSignal',
           'amp_settings', 'effective_batch', 'find_resumable_checkpoint',
           'prepare_deterministic_env']
