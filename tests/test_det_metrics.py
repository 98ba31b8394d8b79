"""Detection is tested as VOC transfer papers report it: AP50 (VOC07 11-point, the headline), AP
over IoU 0.50:0.95 and AP75, per class too."""
import os.path as osp

import numpy as np
from conftest import REPO
from mmengine.config import Config

DET = osp.join(REPO, 'configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py')


def test_voc_metric_reports_ap50_ap_and_ap75():
    """One image: an aeroplane found exactly, a bicycle box of IoU 0.72 (VOC's +1 pixel
    convention). The bicycle counts at IoU 0.50-0.70 (5 of the 10 thresholds), not at 0.75."""
    from mmdet.datasets import VOCDataset
    from mmdet.registry import METRICS

    from sd_transfer.transfer.run import TASKS
    assert TASKS['det'][1] == 'pascal_voc/AP50'
    metric = METRICS.build(Config.fromfile(DET).test_evaluator)  # as the test loop builds it
    classes = VOCDataset.METAINFO['classes']
    metric.dataset_meta = dict(classes=classes, dataset_type='VOC2007')
    ann = dict(labels=np.array([0, 1]), bboxes=np.array([[0, 0, 99, 99], [0, 0, 99, 99]], 'f4'),
               bboxes_ignore=np.zeros((0, 4), 'f4'), labels_ignore=np.zeros(0, int))
    dets = [np.zeros((0, 5), 'f4') for _ in classes]
    dets[0] = np.array([[0, 0, 99, 99, 0.9]], 'f4')
    dets[1] = np.array([[0, 0, 99, 71, 0.8]], 'f4')
    m = metric.compute_metrics([(ann, dets)])
    assert (m['AP50'], m['AP75'], m['AP'], m['mAP']) == (1.0, 0.5, 0.75, 0.75)
    assert {k: v for k, v in m.items() if k.startswith('AP_')} == {
        'AP_aeroplane': 1.0, 'AP_bicycle': 0.5}
    assert (m['AP75_aeroplane'], m['AP75_bicycle'], m['AP70_bicycle']) == (1.0, 0.0, 1.0)


def _detections(classes, seed=0, images=8):
    """``images`` (annotation, detections) pairs as VOCMetric.process makes them: classes 0-2
    found (moved a little) with a false box each, class 3 in the ground truth only, class 4 in
    the detections only, and an ignored (difficult) box in every other image."""
    rng = np.random.default_rng(seed)
    results = []
    for i in range(images):
        corner = rng.uniform(0, 50, (4, 2))
        boxes = np.hstack([corner, corner + rng.uniform(20, 50, (4, 2))]).astype('f4')
        labels = np.array([*rng.integers(0, 3, 3), 3])
        ignored = boxes[:1] + 5 if i % 2 else np.zeros((0, 4), 'f4')
        ann = dict(labels=labels, bboxes=boxes, bboxes_ignore=ignored.astype('f4'),
                   labels_ignore=np.zeros(len(ignored), int))
        dets = [np.zeros((0, 5), 'f4') for _ in classes]
        for label in range(3):
            moved = boxes[labels == label] + rng.uniform(-8, 8, (int((labels == label).sum()), 4))
            dets[label] = np.vstack([np.hstack([moved, rng.uniform(0.5, 1, (len(moved), 1))]),
                                     [[0, 0, 30, 30, 0.4]]]).astype('f4')
        dets[4] = np.array([[10, 10, 60, 60, 0.7]], 'f4')
        results.append((ann, dets))
    return results


def test_voc_metric_matches_mmdets_and_starts_no_process(monkeypatch):
    """Our metric returns what mmdet's VOCMetric returns, keys in its order, and forks nothing;
    mmdet's eval_map forks a pool per threshold from 2 images on (pinned here: why ours does its
    passes itself, see VOCMetricPerClass). The reference numbers come from mmdet's own code with
    its pool made of threads, so that this test forks nothing either."""
    import os
    from multiprocessing.pool import ThreadPool

    from mmdet.datasets import VOCDataset
    from mmdet.evaluation import VOCMetric
    from mmdet.evaluation.functional import mean_ap
    from mmdet.registry import METRICS

    classes = VOCDataset.METAINFO['classes']
    cfg = Config.fromfile(DET).test_evaluator
    ours = METRICS.build(cfg)
    upstream = VOCMetric(**{k: v for k, v in cfg.items() if k not in ('type', '_scope_')})
    small = VOCMetric(iou_thrs=[0.5])
    for metric in (ours, upstream, small):
        metric.dataset_meta = dict(classes=classes, dataset_type='VOC2007')
    forks = []
    os.register_at_fork(before=lambda: forks.append(1))

    small.compute_metrics(_detections(classes, images=2))
    assert len(forks) == 2  # mmdet's pool: min(nproc=4, 2 images) processes
    m = ours.compute_metrics(_detections(classes))
    assert len(forks) == 2  # none of ours

    monkeypatch.setattr(mean_ap, 'Pool', ThreadPool)
    expected = upstream.compute_metrics(_detections(classes))
    assert len(forks) == 2
    assert list(m)[:len(expected)] == list(expected)
    assert {k: m[k] for k in expected} == expected
    assert 0 < m['AP'] < m['AP50'] < 1
    assert m['AP50_boat'] == 0.0 and 'AP50_bottle' not in m  # in the gt only; detections only
    for name in classes[:4]:  # each class's mean over the thresholds
        assert m[f'AP_{name}'] == np.mean([m[f'AP{t:02d}_{name}'] for t in range(50, 100, 5)])
