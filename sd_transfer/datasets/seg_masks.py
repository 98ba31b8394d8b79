"""Segmentation masks that name the file when a pixel holds no valid class.

mmseg trains happily on a mask with, say, value 40 in a 21-class problem until the loss indexes
out of range deep inside a worker (or, on GPU, a device-side assert). The transfer tool swaps
mmseg's ``LoadAnnotations`` for this subclass in segmentation configs.
"""
import numpy as np
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import TRANSFORMS

from ..errors import UserError


@TRANSFORMS.register_module()
class CheckedLoadAnnotations(LoadAnnotations):
    """mmseg's ``LoadAnnotations`` plus a range check: values must be < num_classes or ignore_index."""

    def __init__(self, *args, num_classes: int, ignore_index: int = 255, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_classes = num_classes
        self.ignore_index = ignore_index

    def _load_seg_map(self, results: dict) -> None:
        super()._load_seg_map(results)
        mask = results['gt_seg_map']
        bad = (mask >= self.num_classes) & (mask != self.ignore_index)
        if bad.any():
            values = sorted(int(v) for v in np.unique(mask[bad]))[:5]
            raise UserError(f"{results['seg_map_path']}: mask values {values} are outside the "
                            f'{self.num_classes} classes (0..{self.num_classes - 1}) and not '
                            f'the ignore index {self.ignore_index}')
