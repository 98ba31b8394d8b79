"""VOC metrics that also return per-class numbers, which mmdet and mmseg only print in a table.

They return exactly what the upstream metric returns plus one entry per class (and, for
detection at IoU 0.50:0.95, that range's AP under its own name), so the headline numbers (and
their log lines) are unchanged and ``metrics.json`` gets the per-class results without parsing
logs.
"""
from collections import OrderedDict

import numpy as np
from mmdet.evaluation import VOCMetric
from mmdet.evaluation.functional.mean_ap import (average_precision, get_cls_results,
                                                 print_map_summary, tpfp_default)
from mmdet.registry import METRICS as DET_METRICS
from mmengine.logging import MMLogger
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS as SEG_METRICS


# The thresholds of COCO-style AP, which VOC transfer papers report beside AP50 and AP75
COCO_IOU_THRS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]


def eval_map_in_process(preds, gts, iou_thr: float, eval_mode: str):
    """mmdet's ``eval_map`` as ``VOCMetric`` calls it (VOC's +1 pixel boxes, no scale ranges,
    the ``tpfp_default`` it picks for VOC), step for step, in this process: ``(mean_ap,
    per-class results)``."""
    results = []
    for i in range(len(preds[0])):
        dets, boxes, ignored = get_cls_results(preds, gts, i)
        tp, fp = zip(*[tpfp_default(d, b, g, iou_thr, None, True)
                       for d, b, g in zip(dets, boxes, ignored)])
        num_gts = np.array([sum(b.shape[0] for b in boxes)])  # (1, ) as upstream's: float64 recall
        dets = np.vstack(dets)
        order = np.argsort(-dets[:, -1])
        tp = np.cumsum(np.hstack(tp)[:, order], axis=1)
        fp = np.cumsum(np.hstack(fp)[:, order], axis=1)
        eps = np.finfo(np.float32).eps
        recalls = (tp / np.maximum(num_gts[:, np.newaxis], eps))[0]
        precisions = (tp / np.maximum(tp + fp, eps))[0]
        results.append(dict(num_gts=num_gts.item(), num_dets=dets.shape[0], recall=recalls,
                            precision=precisions,
                            ap=average_precision(recalls, precisions, eval_mode)))
    aps = [r['ap'] for r in results if r['num_gts'] > 0]
    return (np.array(aps).mean().item() if aps else 0.0), results


@DET_METRICS.register_module()
class VOCMetricPerClass(VOCMetric):
    """mmdet's ``VOCMetric`` plus ``AP50_<class>`` (for each IoU threshold) of every class.

    Given ``iou_thrs=COCO_IOU_THRS``, mmdet's ``mAP`` is the mean over IoU 0.50:0.95; it is
    returned again as ``AP``, with ``AP_<class>`` (each class's mean over those thresholds), so
    that no reader has to know which thresholds made ``mAP``. Classes absent from the test set
    get no entry: ``eval_map`` leaves them out of the mean too, so the per-class values average
    to the overall ones (to the 3 decimals mmdet rounds ``AP50`` etc. to).

    The pass over each threshold is mmdet's ``eval_map`` (same numbers, same log table; see
    :func:`eval_map_in_process`) without its process pool: ``eval_map`` forks a pool per
    threshold and only closes it, and a fine-tune of ``make test`` hung at its final test where
    that pool is collected (its log ends between one threshold's table and the next one's
    header). On VOC07 test's 4952 images a pass without the pool takes about as long
    (8-10 s per threshold on 2 cores).
    """

    def compute_metrics(self, results: list) -> dict:
        if self.metric != 'mAP' or self.scale_ranges is not None:  # upstream's, with its pool
            return super().compute_metrics(results)
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        classes = self.dataset_meta['classes']
        voc = self.dataset_meta.get('dataset_type') in ('VOC2007', 'VOC2012')
        metrics, class_aps, per_class, mean_aps = OrderedDict(), {}, {}, []
        for iou_thr in self.iou_thrs:
            logger.info(f'\n{"-" * 15}iou_thr: {iou_thr}{"-" * 15}')
            mean_ap, by_class = eval_map_in_process(preds, gts, iou_thr, self.eval_mode)
            print_map_summary(mean_ap, by_class, 'voc' if voc else classes, logger=logger)
            mean_aps.append(mean_ap)
            metrics[f'AP{int(iou_thr * 100):02d}'] = round(mean_ap, 3)
            for name, result in zip(classes, by_class):
                if result['num_gts'] > 0:
                    class_aps[f'AP{int(iou_thr * 100):02d}_{name}'] = float(result['ap'])
                    per_class.setdefault(name, []).append(float(result['ap']))
        metrics['mAP'] = sum(mean_aps) / len(mean_aps)
        metrics.move_to_end('mAP', last=False)
        metrics.update(class_aps)
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
