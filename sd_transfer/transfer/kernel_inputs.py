"""Detector parts that hand mmcv's RoIAlign and NMS only what their kernels read correctly.

mmcv 2.1.0's ``roi_align`` (CPU and CUDA) indexes its input as a contiguous NCHW tensor: given a
channels_last feature map it silently reads the wrong values (the detector then trains on
garbage RoI features, ending near 0 mAP). Neither ``roi_align`` nor ``nms`` has a bf16 kernel,
and mmdet casts the RoIs to the features' dtype, which in bf16 would also round box coordinates
to 8 bits of mantissa (several pixels at VOC sizes). The transfer tool swaps these subclasses in
for mmdet's ``SingleRoIExtractor`` and ``RPNHead`` (same arguments, same weights).
"""
from typing import List, Optional, Tuple

import torch
from mmdet.models.dense_heads import RPNHead
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
from mmdet.registry import MODELS

SWAPS = dict(SingleRoIExtractor='ContiguousRoIExtractor', RPNHead='FloatProposalRPNHead')


@MODELS.register_module()
class ContiguousRoIExtractor(SingleRoIExtractor):
    """``SingleRoIExtractor`` on contiguous NCHW features; bf16 features are pooled in fp32."""

    def forward(self, feats: Tuple[torch.Tensor], rois: torch.Tensor,
                roi_scale_factor: Optional[float] = None) -> torch.Tensor:
        dtype = feats[0].dtype
        pooled = torch.float32 if dtype == torch.bfloat16 else dtype
        feats = tuple(f.to(pooled, memory_format=torch.contiguous_format) for f in feats)
        return super().forward(feats, rois.float(), roi_scale_factor).to(dtype)


@MODELS.register_module()
class FloatProposalRPNHead(RPNHead):
    """``RPNHead`` that decodes and NMS-es bf16 predictions in fp32 (outside autocast)."""

    def predict_by_feat(self, cls_scores: List[torch.Tensor], bbox_preds: List[torch.Tensor],
                        *args, **kwargs):
        if cls_scores[0].dtype != torch.bfloat16:
            return super().predict_by_feat(cls_scores, bbox_preds, *args, **kwargs)
        with torch.autocast(cls_scores[0].device.type, enabled=False):
            return super().predict_by_feat([s.float() for s in cls_scores],
                                           [b.float() for b in bbox_preds], *args, **kwargs)
