"""Proves the installed stack works: compiled mmcv ops and the three OpenMMLab registries."""
import torch


def main():
    import mmcv
    from mmcv.ops import nms
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 10., 10.], [20., 20., 30., 30.]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2], keep

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
    print(f'stack ok: torch {torch.__version__}, mmcv {mmcv.__version__}, '
          f'mmpretrain {mmpretrain.__version__}, mmdet {mmdet.__version__}, '
          f'mmseg {mmseg.__version__}, cuda={torch.cuda.is_available()}')


if __name__ == '__main__':
    main()
