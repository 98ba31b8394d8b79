"""VOC metrics that also return per-class numbers, which mmdet and mmseg only print in a table.

They return exactly what the upstream metric returns plus one entry per class (and, for
detection at IoU 0.50:0.95, that range's AP under its own name), so the headline numbers (and
their log lines) are unchanged and ``metrics.json`` gets the per-class results without parsing
logs.
"""
import numpy as np
from mmdet.evaluation import VOCMetric, eval_map
from mmdet.registry import METRICS as DET_METRICS
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS as SEG_METRICS


# The thresholds of COCO-style AP, which VOC transfer papers report beside AP50 and AP75
COCO_IOU_THRS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


@DET_METRICS.register_module()
class VOCMetricPerClass(VOCMetric):
    """mmdet's ``VOCMetric`` plus ``AP50_<class>`` (for each IoU threshold) of every class.

    Given ``iou_thrs=COCO_IOU_THRS``, mmdet's ``mAP`` is the mean over IoU 0.50:0.95; it is
    returned again as ``AP``, with ``AP_<class>`` (each class's mean over those thresholds), so
    that no reader has to know which thresholds made ``mAP``. Classes absent from the test set
    get no entry: ``eval_map`` leaves them out of the mean too, so the per-class values average
    to the overall ones (to the 3 decimals mmdet rounds ``AP50`` etc. to).

    The per-class pass runs in this process (``nproc=1``): ``eval_map`` starts a process pool
    per call, which costs more than it saves on the tiny test sets, and on VOC07 test's 4952
    images a pass takes about as long as with the pool (8-10 s per threshold on 2 cores).
    """

    def compute_metrics(self, results: list) -> dict:
        metrics = super().compute_metrics(results)
        if self.metric != 'mAP':
            return metrics
        gts, preds = zip(*results)
        per_class = {}
        for iou_thr in self.iou_thrs:
            _, classes = eval_map(preds, gts, iou_thr=iou_thr, logger='silent', nproc=1,
                                  eval_mode=self.eval_mode, use_legacy_coordinate=True)
            for name, result in zip(self.dataset_meta['classes'], classes):
                if result['num_gts'] > 0:
                    metrics[f'AP{int(iou_thr * 100):02d}_{name}'] = float(result['ap'])
                    per_class.setdefault(name, []).append(float(result['ap']))
        if len(self.iou_thrs) == len(COCO_IOU_THRS) and np.allclose(self.iou_thrs, COCO_IOU_THRS):
            metrics['AP'] = metrics['mAP']
            metrics.update({f'AP_{name}': float(np.mean(aps)) for name, aps in per_class.items()})
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
