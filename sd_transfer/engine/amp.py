"""``--amp``: which autocast dtype, chosen by what the device computes natively, and why.

bf16 needs no loss scaling (it has fp32's exponent range) but only GPUs of compute capability 8.0
and later (A100, H100, RTX 30xx on) compute it natively; ``torch.cuda.is_bf16_supported()`` also
answers yes where bf16 is emulated (T4, V100), which is slower than fp16. So: bf16 from 8.0 on,
fp16 with dynamic loss scaling below. On CPU, mmengine's ``autocast`` supports bf16 but its
``AmpOptimWrapper`` refuses to be built without an accelerator; :class:`CPUAmpOptimWrapper` is
the same autocast on CPU (no loss scaler, bf16 needs none). The same rule holds there: only
CPUs with AVX512_BF16 or AMX compute bf16 natively; elsewhere (AVX2) torch emulates it, and a
ResNet-50 step under bf16 autocast took 17x as long as in fp32 (10.1 s vs 0.6 s, 32 px, a 2-core
AVX2 CPU), so ``--amp`` there trains in fp32 and says why.
"""
from contextlib import contextmanager
from typing import Tuple

import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import OPTIM_WRAPPERS
from mmengine.runner.amp import autocast


@OPTIM_WRAPPERS.register_module()
class CPUAmpOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward runs under CPU bf16 autocast."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), autocast(device_type='cpu', dtype=torch.bfloat16):
            yield


def amp_settings() -> Tuple[dict, str]:
    """The ``optim_wrapper`` keys that turn on mixed precision here, and why that dtype."""
    if not torch.cuda.is_available():
        caps = torch.cpu.get_capabilities()
        if caps.get('avx512_bf16') or caps.get('amx_bf16'):
            return dict(type='CPUAmpOptimWrapper'), 'bf16 autocast on CPU (no GPU visible)'
        return {}, ('fp32: --amp has no effect on this CPU (no GPU visible; no native bf16: '
                    'neither AVX512_BF16 nor AMX, so bf16 autocast would be emulated, far slower)')
    major, minor = torch.cuda.get_device_capability()
    gpu = f'{torch.cuda.get_device_name()}, compute capability {major}.{minor}'
    if (major, minor) >= (8, 0):
        return (dict(type='AmpOptimWrapper', dtype='bfloat16', loss_scale=dict(enabled=False)),
                f'bf16 autocast without loss scaling ({gpu}: native bf16)')
    return (dict(type='AmpOptimWrapper', dtype='float16', loss_scale='dynamic'),
            f'fp16 autocast with dynamic loss scaling ({gpu}: no native bf16, below 8.0)')
