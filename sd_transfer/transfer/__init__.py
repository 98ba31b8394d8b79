"""Transfer of a pretrained backbone to PascalVOC detection (mmdet) and segmentation (mmseg)."""
from .backbone import build_backbone, check_state_dict, read_backbone, verify_backbone
from .metrics import IoUMetricPerClass, VOCMetricPerClass
from .run import evaluate, finetune

__all__ = ['IoUMetricPerClass', 'VOCMetricPerClass', 'build_backbone', 'check_state_dict',
           'evaluate', 'finetune', 'read_backbone', 'verify_backbone']
