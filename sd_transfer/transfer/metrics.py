"""VOC metrics that also return per-class numbers, which mmdet and mmseg only print in a table.

They return exactly what the upstream metric returns plus one entry per class, so the headline
numbers (and their log lines) are unchanged and ``metrics.json`` gets the per-class results
without parsing logs.
"""
import numpy as np
from mmdet.evaluation import VOCMetric, eval_map
from mmdet.registry import METRICS as DET_METRICS
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS as SEG_METRICS


@DET_METRICS.register_module()
class VOCMetricPerClass(VOCMetric):
    """mmdet's ``VOCMetric`` plus ``AP50_<class>`` (for each IoU threshold) of every class.

    Classes absent from the test set get no entry: ``eval_map`` leaves them out of the mean too,
    so with one IoU threshold the per-class values average exactly to ``mAP``.
    """

    def compute_metrics(self, results: list) -> dict:
        metrics = super().compute_metrics(results)
        if self.metric != 'mAP':
            return metrics
        gts, preds = zip(*results)
        for iou_thr in self.iou_thrs:
            _, per_class = eval_map(preds, gts, iou_thr=iou_thr, logger='silent',
                                    eval_mode=self.eval_mode, use_legacy_coordinate=True)
            for name, result in zip(self.dataset_meta['classes'], per_class):
                if result['num_gts'] > 0:
                    metrics[f'AP{int(iou_thr * 100):02d}_{name}'] = float(result['ap'])
        return metrics


@SEG_METRICS.register_module()
class IoUMetricPerClass(IoUMetric):
    """mmseg's ``IoUMetric`` plus ``IoU_<class>`` (percent, as ``mIoU``) of every class.

    Classes neither in the ground truth nor predicted have no IoU (0/0); like ``mIoU``'s
    nan-mean, they are left out.
    """

    def compute_metrics(self, results: list) -> dict:
        metrics = super().compute_metrics(results)
        if self.format_only:
            return metrics
        totals = [sum(area) for area in zip(*results)]
        ious = self.total_area_to_metrics(*totals, ['mIoU'], self.nan_to_num, self.beta)['IoU']
        for name, iou in zip(self.dataset_meta['classes'], ious):
            if not np.isnan(iou):
                metrics[f'IoU_{name}'] = round(float(iou) * 100, 2)
        return metrics
