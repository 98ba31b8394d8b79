"""tools/report.py on run folders written here in the formats the tools write (no training)."""
import csv
import json
import os
import statistics

import pytest
import torch

from conftest import run_tool
from sd_transfer.errors import UserError
from sd_transfer.report import write_report
from sd_transfer.report.runs import BackboneId, read_scalars
from sd_transfer.report.tables import backbone_labels

SD = dict(temperature=3.0, ce_weight=4 / 3, kd_weight=1.0, kd_scale_t2=False)
DET = '/repo/configs/transfer/tiny/faster-rcnn_r18_fpn_voc0712_tiny.py'
SEG = '/repo/configs/transfer/deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd.py'
# seed -> top-1 at the end of cycles 1 and 2; mAP (mmdet: a fraction) and mIoU of cycle 2
RESULTS = {
    'sd': {1: dict(top1=[50.0, 61.5], map=0.412, aero=0.5, miou=40.25),
           2: dict(top1=[48.0, 63.0], map=0.437, aero=0.55, miou=42.5)},
    'base': {1: dict(top1=[49.0, 58.0], map=0.391, aero=0.45, miou=38.0),
             2: dict(top1=[51.5, 59.5], map=0.402, aero=0.4, miou=39.75)},
}


def pretrain_meta(kind, cycle, top1, seed=None):
    """Backbone meta as BackboneExportHook writes it; older files lack the seed."""
    meta = dict(arch='ResNet', depth=18, sd=SD if kind == 'sd' else None, cycle=cycle,
                num_cycles=2, iter=10 * cycle, epoch=cycle,
                val=None if top1 is None else {'accuracy/top1': top1, 'accuracy/top5': 90.0},
                config=f'r18_{kind}.py', experiment=f'r18_{kind}_20260101_000000')
    return meta if seed is None else dict(meta, seed=seed)


def write_backbone(path, meta):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.save({'state_dict': {'conv1.weight': torch.zeros(2, 3, 1, 1)}, 'meta': meta}, path)


def write_log(run_dir, stamp, scope, seed=None, scalars=()):
    folder = os.path.join(run_dir, stamp)
    os.makedirs(os.path.join(folder, 'vis_data'), exist_ok=True)
    with open(os.path.join(folder, stamp + '.log'), 'w') as f:
        f.write(f'Runtime environment:\n    seed: {seed}\n\nConfig:\ndefault_scope = {scope!r}\n')
    with open(os.path.join(folder, 'vis_data', 'scalars.json'), 'w') as f:
        f.writelines(json.dumps(line) + '\n' for line in scalars)


def scalars(kind, top1):
    """Two cycles of 10 iterations and one epoch each; SD logs KD loss and the teacher swap."""
    lines = []
    for cycle in (1, 2):
        for it in (5, 10):
            step = 10 * (cycle - 1) + it
            line = dict(lr=0.1 / it, loss=2.0 / step, loss_ce=1.5 / step, epoch=cycle,
                        iter=step, step=step)
            if kind == 'sd' and cycle == 2:
                line['loss_kd'] = 0.5 / step
            lines.append(line)
        lines.append({'accuracy/top1': top1[cycle - 1], 'accuracy/top5': 90.0, 'step': cycle})
        if kind == 'sd' and cycle == 1:
            lines.append({'sd/teacher_cycle': 2, 'step': 10})
    return lines


def write_metrics(run_dir, task, backbone_meta, seed, values, checkpoint):
    config = DET if task == 'det' else SEG
    headline = 'pascal_voc/mAP' if task == 'det' else 'mIoU'
    record = dict(task=task, headline=dict(name=headline, value=values[headline]),
                  metrics=values, config=config,
                  backbone=dict(path='/x/backbone.pth', sha256='ab' * 32, tensors=1,
                                meta=backbone_meta),
                  checkpoint=dict(path='/x/iter_300.pth', sha256=checkpoint + '0' * 20),
                  iterations=300, seed=seed, world_size=1,
                  test_data=dict(data_root='data', ann_file='test.txt', images=20),
                  timestamp='2026-01-01T00:00:00+00:00')
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, 'metrics.json'), 'w') as f:
        json.dump(record, f)


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    """Two seeds of an SD and of a baseline pretraining setting, their det and seg transfers,
    a torchvision-weights transfer, a re-test by evaluate.py and three unfinished runs."""
    root = tmp_path_factory.mktemp('runs')
    for kind, seeds in RESULTS.items():
        for seed, r in seeds.items():
            run = root / 'pretrain' / f'{kind}_s{seed}'
            for cycle in (1, 2):
                meta = pretrain_meta(kind, cycle, r['top1'][cycle - 1],
                                     seed if kind == 'sd' else None)
                write_backbone(str(run / f'backbone_cycle{cycle}.pth'), meta)
            write_backbone(str(run / 'backbone.pth'), meta)
            log_seed = 100 + seed if kind == 'sd' else seed  # only the baseline's is read
            write_log(str(run), '20260101_000000', 'mmpretrain', log_seed,
                      scalars(kind, r['top1']))
            det = root / 'voc' / f'det_{kind}_s{seed}'
            meta = dict(meta, seed=seed)  # as metrics.json records the backbone's meta
            write_metrics(str(det), 'det', meta, seed + 10, {
                'pascal_voc/mAP': r['map'], 'pascal_voc/AP50': round(r['map'], 3),
                'pascal_voc/AP50_aeroplane': r['aero'],
                'pascal_voc/AP50_bicycle': 2 * r['map'] - r['aero']}, checkpoint=f'{kind}{seed}')
            write_metrics(str(root / 'voc' / f'seg_{kind}_s{seed}'), 'seg', meta, seed + 10, {
                'aAcc': 90.0, 'mIoU': r['miou'], 'mAcc': r['miou'] + 10,
                'IoU_background': 85.0, 'IoU_aeroplane': 2 * r['miou'] - 20.0},
                checkpoint=f'seg{kind}{seed}')
    # tools/evaluate.py re-testing the same checkpoint: must not count as a third seed
    write_metrics(str(root / 'voc' / 'det_sd_s1' / 'eval_iter_300'), 'det',
                  pretrain_meta('sd', 2, 61.5), 11, {'pascal_voc/mAP': 0.412}, checkpoint='sd1')
    write_metrics(str(root / 'voc' / 'det_torchvision'), 'det', None, 0,
                  {'pascal_voc/mAP': 0.3}, checkpoint='tv')
    # unfinished: a pretraining run in cycle 2 of 2, one before its first cycle ended,
    # and a fine-tuning run without metrics.json
    half = root / 'pretrain' / 'sd_s3'
    write_backbone(str(half / 'backbone_cycle1.pth'), pretrain_meta('sd', 1, 47.0))
    write_backbone(str(half / 'backbone.pth'), pretrain_meta('sd', 1, 47.0))
    write_log(str(half), '20260101_000000', 'mmpretrain', 3)
    write_log(str(root / 'pretrain' / 'sd_s4'), '20260101_000000', 'mmpretrain', 4)
    write_log(str(root / 'voc' / 'det_sd_s3'), '20260101_000000', 'mmdet', 5)
    (root / 'voc' / 'det_sd_s3' / 'backbone_init.pth').write_bytes(b'')
    return root


@pytest.fixture(scope='module')
def report(runs):
    out = runs / 'report'
    proc = run_tool('tools/report.py', str(runs / 'pretrain'), str(runs / 'voc'),
                    '--out', str(out), timeout=300)
    with open(out / 'results.json') as f:
        results = json.load(f)
    return dict(out=out, stdout=proc.stdout, md=(out / 'report.md').read_text(),
                rows=results['rows'], incomplete=results['incomplete'])


def find(rows, table, backbone, metric):
    matches = [r for r in rows if (r['table'], r['backbone'], r['metric']) == (
        table, backbone, metric)]
    assert len(matches) == 1, (table, backbone, metric, matches)
    return matches[0]


def expected(kind, get):
    values = [get(r) for r in RESULTS[kind].values()]
    return statistics.mean(values), statistics.stdev(values)


def paired_cell(get):
    """The Δ cell SD vs baseline: mean of the per-seed differences and its 95% t-interval."""
    from scipy import stats
    diffs = [get(RESULTS['sd'][s]) - get(RESULTS['base'][s]) for s in (1, 2)]
    mean, half = statistics.mean(diffs), stats.t.ppf(0.975, 1) * statistics.stdev(diffs) / 2 ** 0.5
    return f'{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] paired n=2'


SD_LABEL, BASE_LABEL = 'r18_sd (SD T=3)', 'r18_base (baseline)'


@pytest.mark.parametrize('cycle', [1, 2])
def test_classification(report, cycle):
    mean, std = expected('sd', lambda r: r['top1'][cycle - 1])
    base, _ = expected('base', lambda r: r['top1'][cycle - 1])
    row = find(report['rows'], 'classification', f'{SD_LABEL} cycle {cycle}', 'accuracy/top1')
    assert (row['n'], row['mean'], row['std']) == (2, pytest.approx(mean), pytest.approx(std))
    assert row['delta'] == pytest.approx(mean - base)
    assert row['baseline'] == f'{BASE_LABEL} cycle {cycle}'
    assert row['seeds'] == '1 2'  # from the backbone meta (SD), from the log (baseline)
    assert find(report['rows'], 'classification', f'{BASE_LABEL} cycle {cycle}',
                'accuracy/top1')['seeds'] == '1 2'
    assert (f'| {SD_LABEL} cycle {cycle} | 2 | {mean:.2f} ± {std:.2f} | 90.00 ± 0.00 | '
            f"{paired_cell(lambda r: r['top1'][cycle - 1])} |") in report['md']
    assert row['delta_kind'] == 'paired' and row['delta_n'] == '2'


def test_detection(report):
    mean, std = expected('sd', lambda r: 100 * r['map'])
    base, base_std = expected('base', lambda r: 100 * r['map'])
    row = find(report['rows'], 'detection', f'{SD_LABEL} cycle 2', 'pascal_voc/mAP')
    assert (row['n'], row['mean'], row['std']) == (2, pytest.approx(mean), pytest.approx(std))
    assert row['delta'] == pytest.approx(mean - base)
    config = 'faster-rcnn_r18_fpn_voc0712_tiny'
    assert (f'| {SD_LABEL} cycle 2 | {config} | 2 | {mean:.2f} ± {std:.2f} | '
            f"{paired_cell(lambda r: 100 * r['map'])} |") in report['md']
    assert f'| {BASE_LABEL} cycle 2 | {config} | 2 | {base:.2f} ± {base_std:.2f} | ref |' \
        in report['md']
    aero, _ = expected('sd', lambda r: 100 * r['aero'])
    assert '| Backbone | Config | aeroplane | bicycle |' in report['md']
    assert f'| {SD_LABEL} cycle 2 | {config} | {aero:.1f} |' in report['md']
    # a backbone without our meta: named by file and hash, one run, no baseline to compare with
    assert f'| backbone.pth (abababab) | {config} | 1 | 30.00 ± – | – |' in report['md']


def test_segmentation(report):
    mean, std = expected('sd', lambda r: r['miou'])
    base, _ = expected('base', lambda r: r['miou'])
    row = find(report['rows'], 'segmentation', f'{SD_LABEL} cycle 2', 'mIoU')
    assert (row['n'], row['std'], row['decoder']) == (2, pytest.approx(std), 'deeplabv3')
    assert row['delta'] == pytest.approx(mean - base)
    macc, macc_std = expected('sd', lambda r: r['miou'] + 10)
    assert (f'| {SD_LABEL} cycle 2 | deeplabv3 | deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd | '
            f'2 | {mean:.2f} ± {std:.2f} | {macc:.2f} ± {macc_std:.2f} | 90.00 ± 0.00 | '
            f"{paired_cell(lambda r: r['miou'])} |") in report['md']
    iou = find(report['rows'], 'segmentation', f'{SD_LABEL} cycle 2', 'IoU_aeroplane')
    assert iou['mean'] == pytest.approx(statistics.mean(
        2 * r['miou'] - 20.0 for r in RESULTS['sd'].values()))


def test_files_and_incomplete(report):
    out = report['out']
    with open(out / 'results.csv') as f:
        assert len(list(csv.DictReader(f))) == len(report['rows'])
    assert f'wrote {out / "report.md"}' in report['stdout']
    assert '## Detection' in report['stdout']
    reasons = {os.path.basename(i['path']): i['reason'] for i in report['incomplete']}
    assert reasons['sd_s3'] == 'stopped after cycle 1 of 2 (backbone.pth)'
    assert reasons['sd_s4'].startswith('no backbone.pth')
    assert reasons['det_sd_s3'].startswith('no metrics.json')
    assert reasons['eval_iter_300'].startswith('not counted: same checkpoint')
    assert '## Incomplete runs' in report['md'] and 'stopped after cycle 1 of 2' in report['md']


def test_plots(report):
    plots = sorted(p.name for p in (report['out'] / 'plots').iterdir())
    assert plots == ['base_s1.png', 'base_s2.png', 'sd_s1.png', 'sd_s2.png', 'val_top1.png']
    for name in plots:
        data = (report['out'] / 'plots' / name).read_bytes()
        assert data.startswith(b'\x89PNG\r\n\x1a\n') and len(data) > 1024
        assert f'](plots/{name})' in report['md']


def test_named_baseline(runs, tmp_path):
    """A label with its cycle pins one backbone: every cycle is compared with it."""
    write_report([str(runs / 'pretrain')], str(tmp_path), f'{BASE_LABEL} cycle 2')
    rows = json.loads((tmp_path / 'results.json').read_text())['rows']
    row = find(rows, 'classification', f'{SD_LABEL} cycle 1', 'accuracy/top1')
    mean, _ = expected('sd', lambda r: r['top1'][0])
    base, _ = expected('base', lambda r: r['top1'][1])
    assert row['delta'] == pytest.approx(mean - base)
    with pytest.raises(UserError, match="--baseline 'r18_nope': no such backbone"):
        write_report([str(runs / 'pretrain')], str(tmp_path), 'r18_nope')


def test_resumed_scalars_merge_by_step(tmp_path):
    write_log(str(tmp_path), '20260101_000000', 'mmpretrain', 1,
              [dict(lr=0.1, loss=3.0, step=5), dict(lr=0.1, loss=2.5, step=10)])
    write_log(str(tmp_path), '20260102_000000', 'mmpretrain', 1,
              [dict(lr=0.1, loss=2.4, step=10), dict(lr=0.1, loss=2.0, step=15)])
    merged = read_scalars([str(tmp_path / '20260101_000000'), str(tmp_path / '20260102_000000')])
    assert [(r['step'], r['loss']) for r in merged.train] == [(5, 3.0), (10, 2.4), (15, 2.0)]


def test_labels_tell_sd_settings_apart():
    ids = [BackboneId('r18_sd', json.dumps(dict(SD, kd_weight=w), sort_keys=True), 4)
           for w in (0.5, 1.0)]
    assert sorted(backbone_labels(ids).values()) == [
        'r18_sd (SD T=3 kd_weight=0.5) cycle 4', 'r18_sd (SD T=3 kd_weight=1) cycle 4']


def _study_meta(config, depth, seed, top1, config_hash='aaa', sd=True, world=1):
    return dict(arch='ResNet', depth=depth, sd=SD if sd else None, cycle=1, num_cycles=1, iter=10,
                epoch=1, val={'accuracy/top1': top1}, config=f'{config}.py', seed=seed,
                schedule=dict(boundaries=[0, 10], max_iters=10),
                setting=dict(config_hash=config_hash, total_batch=32 * world, world_size=world),
                env=dict(torch='2.14.1', mmcv='2.1.0', device='GPU X', world_size=world))


@pytest.fixture(scope='module')
def study_report(tmp_path_factory):
    """ResNet-18 and ResNet-50 arms; one SD config also run with other options; a duplicate."""
    root = tmp_path_factory.mktemp('study')
    top1 = {('r18_sd', 0): 60.0, ('r18_sd', 1): 62.0, ('r18_base', 0): 58.0, ('r18_base', 1): 59.0,
            ('r50_sd', 0): 70.0, ('r50_sd', 1): 71.0, ('r50_base', 0): 66.0, ('r50_base', 1): 68.0}
    for (config, seed), value in top1.items():
        meta = _study_meta(config, 50 if 'r50' in config else 18, seed, value,
                           sd=config.endswith('_sd'))
        write_backbone(str(root / f'{config}_s{seed}' / 'backbone.pth'), meta)
    # the same config with other --cfg-options (another resolved config), seed 5, on 8 processes
    write_backbone(str(root / 'r18_sd_other_s5' / 'backbone.pth'),
                   _study_meta('r18_sd', 18, 5, 65.0, config_hash='bbb', world=8))
    # a copy of r18_sd seed 0 in another folder: the same sample, not a third seed
    write_backbone(str(root / 'copy' / 'r18_sd_s0' / 'backbone.pth'),
                   _study_meta('r18_sd', 18, 0, 60.0))
    planned = [str(root / name) for name in ('r18_sd_s0', 'r18_sd_s1', 'r18_sd_s2')]
    write_report([str(root)], str(root / 'report'), planned=planned)
    results = json.loads((root / 'report' / 'results.json').read_text())
    return dict(rows=results['rows'], incomplete=results['incomplete'],
                md=(root / 'report' / 'report.md').read_text(), root=root)


def test_matched_baselines_and_paired_intervals(study_report):
    from scipy import stats
    rows = study_report['rows']
    r18 = find(rows, 'classification', 'r18_sd (SD T=3) [aaa, batch 32 on 1] cycle 1',
               'accuracy/top1')
    r50 = find(rows, 'classification', 'r50_sd (SD T=3) cycle 1', 'accuracy/top1')
    assert r18['baseline'] == 'r18_base (baseline) cycle 1'
    assert r50['baseline'] == 'r50_base (baseline) cycle 1'  # not the ResNet-18 one
    diffs = [70.0 - 66.0, 71.0 - 68.0]
    half = stats.t.ppf(0.975, 1) * statistics.stdev(diffs) / 2 ** 0.5
    assert (r50['delta'], r50['delta_kind'], r50['delta_n']) == (pytest.approx(3.5), 'paired', '2')
    assert (r50['delta_low'], r50['delta_high']) == (pytest.approx(3.5 - half),
                                                     pytest.approx(3.5 + half))
    assert r18['n'] == 2  # the copy of seed 0 is not a third sample
    # the other resolved config is its own row, compared unpaired (seed 5 vs seeds 0, 1)
    other = find(rows, 'classification', 'r18_sd (SD T=3) [bbb, batch 256 on 8] cycle 1',
                 'accuracy/top1')
    assert (other['n'], other['delta_kind'], other['delta_n']) == (1, 'unpaired', '1/2')
    assert other['delta'] == pytest.approx(65.0 - 58.5) and other['delta_low'] is None


def test_duplicates_missing_runs_and_environment(study_report):
    reasons = {os.path.relpath(i['path'], study_report['root']): i['reason']
               for i in study_report['incomplete']}
    copies = (os.path.join('copy', 'r18_sd_s0'), 'r18_sd_s0')  # whichever was found second
    assert [reasons[p].startswith('not counted: duplicate of') for p in copies if p in reasons] \
        == [True]
    md = study_report['md']
    assert '## Study: 2 of 3 planned runs finished' in md
    assert f"- `{study_report['root'] / 'r18_sd_s2'}`" in md
    assert '- GPU X, 1 process(es); torch 2.14.1, mmcv 2.1.0 (9 runs)' in md
    assert '- GPU X, 8 process(es); torch 2.14.1, mmcv 2.1.0 (1 run)' in md


def test_teacher_accuracy_joins_the_students_epoch(tmp_path):
    """The teacher's metrics, logged at the snapshot's epoch, sit beside the student's (the
    val_top1 plot draws them dashed)."""
    write_log(str(tmp_path), '20260101_000000', 'mmpretrain', 1, [
        {'accuracy/top1': 50.0, 'step': 2}, {'teacher/accuracy/top1': 50.0, 'step': 2.0},
        {'accuracy/top1': 60.0, 'step': 4}])
    val = read_scalars([str(tmp_path / '20260101_000000')]).val
    assert val == [{'accuracy/top1': 50.0, 'teacher/accuracy/top1': 50.0, 'step': 2.0},
                   {'accuracy/top1': 60.0, 'step': 4}]
