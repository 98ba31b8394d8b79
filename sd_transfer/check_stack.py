"""Proves the installed stack works: every package pyproject.toml asks for in a version it allows
(one line for each that is missing or too old or new), compiled mmcv ops (on CUDA too when a GPU
is visible) and the three OpenMMLab registries.

The versions come first, before anything imports mmcv: in an existing OpenMMLab environment
(``pip install -e .``, docs/get_started.md) an old mmdet or a missing mmcv should be named, not fail
somewhere inside an import.

mmcv builds its CUDA ops only when asked or when the build machine sees a GPU; a CPU-only build
imports fine and fails at the first detection step on a GPU. So wherever a GPU is visible, nms
and roi_align run on it here, and setup fails if they cannot (``SD_EXPECT_MMCV_OPS=cpu``, set by
setup for ``SD_MMCV_CUDA=0``, is the one exception).
"""
import importlib.metadata
import os
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                         'pyproject.toml')


def requirements() -> list:
    """pyproject.toml's dependencies, plus mmcv, which each environment builds itself."""
    with open(PYPROJECT, 'rb') as f:
        project = tomllib.load(f)
    return project['project']['dependencies'] + project['tool']['sd_transfer']['user-built']


def version_problems(required) -> list:
    """One line for each requirement that is not installed, or installed in a version it excludes
    (as the package's metadata says, which is what pip goes by)."""
    problems = []
    for requirement in map(Requirement, required):
        try:
            installed = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(f'missing: {requirement.name} (needs {requirement})')
            continue
        failed = [s for s in requirement.specifier if not s.contains(installed, prereleases=True)]
        if failed:
            newer = all(Version(installed) >= Version(s.version) for s in failed)
            problems.append(f"too {'new' if newer else 'old'}: {requirement.name} {installed} "
                            f'(needs {requirement})')
    return problems


def check_versions() -> None:
    required = requirements()
    problems = version_problems(required)
    if problems:
        print('\n'.join(problems), file=sys.stderr)
        raise SystemExit('install them with `pip install -e .` (mmcv: docs/get_started.md or '
                         'tools/setup_env.sh)')
    print(f'versions ok: {len(required)} packages as pyproject.toml asks')


def check_ops(device: str) -> None:
    import torch
    from mmcv.ops import nms, roi_align
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]],
                         device=device)
    scores = torch.tensor([0.9, 0.8, 0.7], device=device)
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2], keep
    feats = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32, device=device).view(2, 3, 8, 8)
    rois = torch.tensor([[1, 0., 0., 4., 4.]], device=device)
    pooled = roi_align(feats, rois, (2, 2), 1.0, 0, 'avg', True)
    # RoI (0,0)-(4,4) of image 1, 2x2 bins of 2x2 pixels: the mean of each bin
    expected = feats[1, :, :4, :4].reshape(3, 2, 2, 2, 2).mean((2, 4))
    torch.testing.assert_close(pooled[0], expected)


def main():
    check_versions()
    import mmcv
    import torch
    check_ops('cpu')
    expect = os.environ.get('SD_EXPECT_MMCV_OPS', 'auto')
    if torch.cuda.is_available() and expect != 'cpu':
        try:
            check_ops('cuda')
        except RuntimeError as e:
            raise SystemExit(f"mmcv's ops do not run on the GPU ({e}); rebuild mmcv with CUDA "
                             'ops: SD_MMCV_CUDA=1 make setup (see docs/get_started.md)') from None
    cuda_ops = 'tested on ' + torch.cuda.get_device_name() if torch.cuda.is_available() and (
        expect != 'cpu') else ('built, no GPU here to test them' if expect == 'cuda' else 'no')

    # mmengine resolves 'mmpretrain::' config bases through pkg_resources (setuptools < 82)
    from mmengine.utils import is_installed
    assert is_installed('mmpretrain') and is_installed('mmdet') and is_installed('mmseg')

    import mmdet
    import mmpretrain
    import mmseg
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as CLS_MODELS
    from mmseg.registry import MODELS as SEG_MODELS
    from mmdet.utils import register_all_modules as reg_det
    from mmpretrain.utils import register_all_modules as reg_cls
    from mmseg.utils import register_all_modules as reg_seg
    reg_cls(init_default_scope=False)
    reg_det(init_default_scope=False)
    reg_seg(init_default_scope=False)
    for registry in (CLS_MODELS, DET_MODELS, SEG_MODELS):
        net = registry.build(dict(type='ResNet', depth=50))
        assert sum(p.numel() for p in net.parameters()) > 20e6
    print(f'stack ok: torch {torch.__version__}, mmcv {mmcv.__version__} (CUDA ops: {cuda_ops}), '
          f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__}, '
          f'mmseg {mmseg.__version__}, cuda={torch.cuda.is_available()}')


if __name__ == '__main__':
    main()
