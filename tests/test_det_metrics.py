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
