"""``--deterministic`` on CUDA: everything deterministic that can be, the rest named in the log.

mmengine's ``randomness.deterministic`` calls ``torch.use_deterministic_algorithms(True)``, under
which the first CUDA op without a deterministic kernel raises. Our models use several: the
backward of adaptive average pooling (every ResNet classifier's global pool, PSPNet's pyramid)
and of bilinear upsampling (every segmentation head). On CUDA we keep the deterministic choice
wherever one exists and let those ops warn instead of stopping the run; cuBLAS needs
``CUBLAS_WORKSPACE_CONFIG``, which the CLI sets before any CUDA work. mmcv's RoIAlign backward
accumulates with atomics on CUDA and is not covered by torch's checks at all. On CPU every op we
use is deterministic, so the strict setting stays.
"""
import os

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

CUBLAS_WORKSPACE = ':4096:8'
NONDETERMINISTIC_CUDA_OPS = ('adaptive_avg_pool2d backward', 'upsample_bilinear2d backward',
                             'mmcv roi_align backward')


def prepare_deterministic_env() -> None:
    """Set what cuBLAS reads when its handle is created (before any CUDA work)."""
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', CUBLAS_WORKSPACE)


@HOOKS.register_module()
class DeterminismHook(Hook):
    """Warn-only on CUDA, and say so: after mmengine's strict setting, which ``Runner.__init__``
    makes and a resume makes again (``set_randomness`` with the checkpoint's seed), so as
    training starts."""

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        if not torch.cuda.is_available():
            runner.logger.info('--deterministic: every op deterministic (CPU)')
            return
        torch.use_deterministic_algorithms(True, warn_only=True)
        runner.logger.info(
            '--deterministic on CUDA: deterministic kernels wherever they exist, cuBLAS with '
            f'CUBLAS_WORKSPACE_CONFIG={os.environ.get("CUBLAS_WORKSPACE_CONFIG")}; not '
            f'deterministic: {", ".join(NONDETERMINISTIC_CUDA_OPS)} (torch warns when they run)')
