"""The scaled-down `make demo` path: the demo study (cyclic, CE-weight control, SD) with shorter
schedules, through tools/study.py's runner."""
import json

import pytest
from conftest import run_tool

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

ARMS = {'resnet18_cyclic_tiny': 'resnet18_cyclic_tiny (baseline) cycle 2',
        'resnet18_ceweight_tiny': 'resnet18_ceweight_tiny (control: CE weight 1.33, no KD) cycle 2',
        'resnet18_sd_tiny': 'resnet18_sd_tiny (SD T=3) cycle 2'}


def test_quick_demo_runs_the_whole_pipeline(tmp_path):
    out, data = tmp_path / 'demo', tmp_path / 'data'
    proc = run_tool('tools/demo.py', '--quick', '--out', str(out), '--data', str(data),
                    timeout=1500)
    report = out / 'report' / 'report.md'
    assert f'report: {report}' in proc.stdout
    assert '[9/9] seg' in proc.stdout and 'done in' in proc.stdout
    md = report.read_text()
    assert '## Detection' in md and '## Study: 9 of 9 planned runs finished' in md
    with open(out / 'report' / 'results.json') as f:
        results = json.load(f)
    assert results['incomplete'] == []
    tables = {(row['table'], row['backbone']): row for row in results['rows']
              if row['metric'] in ('accuracy/top1', 'pascal_voc/AP50', 'mIoU')}
    for table in ('classification', 'detection', 'segmentation'):
        for label in ARMS.values():
            assert (table, label) in tables
        # the control arm and SD are compared with the cyclic baseline of the same schedule
        assert tables[(table, ARMS['resnet18_sd_tiny'])]['baseline'] == ARMS[
            'resnet18_cyclic_tiny']
    for arm in ARMS:
        assert (out / 'pretrain' / f'{arm}_seed0' / 'backbone.pth').is_file()
        assert (out / 'det' / 'faster-rcnn_r18_fpn_voc0712_tiny' / f'{arm}_seed0_seed0' /
                'metrics.json').is_file()
    assert any((out / 'report' / 'plots').glob('*.png'))
