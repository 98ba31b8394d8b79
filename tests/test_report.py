"""tools/report.py on run folders written here in the formats the tools write (no training):
backbone meta as BackboneExportHook writes it, metrics.json as transfer.run.write_metrics does."""
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
ENV = dict(torch='2.14.1', mmengine='0.10.7', mmcv='2.1.0', mmpretrain='1.2.0', mmdet='3.3.0',
           mmseg='1.2.2', device='CPU (x86_64)', world_size=1, cuda=None, cudnn=None, driver=None,
           git_commit='0123456789abcdef0123456789abcdef01234567', git_dirty=False,
           command='tools/transfer.py det configs/x.py --backbone b.pth')
TEST_DATA = dict(images=20, ann_sha256='d0' * 32, data_root='data', ann_file='data/test.txt')
TRANSFER_SETTING = dict(config_hash='c0ffee', total_batch=2, world_size=1, precision='fp32',
                        base_batch=2, by_epoch=False)
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


def write_metrics(run_dir, task, backbone_meta, seed, values, checkpoint, **fields):
    """metrics.json as tools/transfer.py writes it; ``fields`` replace its entries."""
    config = DET if task == 'det' else SEG
    headline = 'pascal_voc/AP50' if task == 'det' else 'mIoU'
    record = dict(task=task, headline=dict(name=headline, value=values[headline]),
                  metrics=values, config=config,
                  backbone=dict(path='/x/backbone.pth', sha256='ab' * 32, tensors=1,
                                meta=backbone_meta),
                  checkpoint=dict(path='/x/iter_300.pth', sha256=checkpoint + '0' * 20),
                  iterations=300, seed=seed, world_size=1, setting=TRANSFER_SETTING, env=ENV,
                  cost=dict(images=600, teacher_images=0, seconds=60.0, device_hours=1 / 60,
                            devices=1),
                  test_data=TEST_DATA, test_setting='7e57c0ffee00',
                  timestamp='2026-01-01T00:00:00+00:00')
    record.update(fields)
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, 'metrics.json'), 'w') as f:
        json.dump(record, f)


def det_values(ap50, aero):
    """Detection metrics as VOCMetricPerClass returns them at IoU 0.50:0.95 (fractions)."""
    ap = 0.6 * ap50
    return {'pascal_voc/AP50': ap50, 'pascal_voc/AP75': 0.7 * ap50, 'pascal_voc/AP': ap,
            'pascal_voc/mAP': ap, 'pascal_voc/AP50_aeroplane': aero,
            'pascal_voc/AP50_bicycle': 2 * ap50 - aero, 'pascal_voc/AP_aeroplane': 0.6 * aero,
            'pascal_voc/AP_bicycle': 0.6 * (2 * ap50 - aero)}


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
            write_metrics(str(det), 'det', meta, seed + 10, det_values(r['map'], r['aero']),
                          checkpoint=f'{kind}{seed}')
            write_metrics(str(root / 'voc' / f'seg_{kind}_s{seed}'), 'seg', meta, seed + 10, {
                'aAcc': 90.0, 'mIoU': r['miou'], 'mAcc': r['miou'] + 10,
                'IoU_background': 85.0, 'IoU_aeroplane': 2 * r['miou'] - 20.0},
                checkpoint=f'seg{kind}{seed}')
    # tools/evaluate.py re-testing the same checkpoint: must not count as a third seed
    write_metrics(str(root / 'voc' / 'det_sd_s1' / 'eval_iter_300'), 'det',
                  pretrain_meta('sd', 2, 61.5), 11, {'pascal_voc/AP50': 0.412}, checkpoint='sd1')
    write_metrics(str(root / 'voc' / 'det_torchvision'), 'det', None, 0,
                  {'pascal_voc/AP50': 0.3}, checkpoint='tv')
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


def paired_cell(get, n='2 backbones'):
    """The Δ cell SD vs baseline: mean of the per-seed differences and its 95% t-interval."""
    from scipy import stats
    diffs = [get(RESULTS['sd'][s]) - get(RESULTS['base'][s]) for s in (1, 2)]
    mean, half = statistics.mean(diffs), stats.t.ppf(0.975, 1) * statistics.stdev(diffs) / 2 ** 0.5
    if half == 0:  # top-1 of cycle 2: SD is 3.5 points ahead at both seeds
        return f'{mean:+.2f} exact paired n={n}'
    return f'{mean:+.2f} [{mean - half:+.2f}, {mean + half:+.2f}] paired n={n}'


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
    assert (f'| {SD_LABEL} cycle {cycle} | 2 backbones | {mean:.2f} ± {std:.2f} | 90.00 ± 0.00 | '
            f"– | – | {paired_cell(lambda r: r['top1'][cycle - 1])} |") in report['md']
    assert row['delta_kind'] == 'paired' and row['delta_n'] == '2'


def test_detection(report):
    """AP50 (the headline, with Δ), AP at IoU 0.50:0.95 and AP75, as VOC transfer papers print
    them, and per class."""
    mean, std = expected('sd', lambda r: 100 * r['map'])
    base, base_std = expected('base', lambda r: 100 * r['map'])
    row = find(report['rows'], 'detection', f'{SD_LABEL} cycle 2', 'pascal_voc/AP50')
    assert (row['n'], row['mean'], row['std']) == (2, pytest.approx(mean), pytest.approx(std))
    assert row['delta'] == pytest.approx(mean - base)
    config = 'faster-rcnn_r18_fpn_voc0712_tiny'
    assert '| Backbone | Config | n | AP50 | AP | AP75 | Δ AP50 [95% CI] |' in report['md']
    ap, ap_std = expected('sd', lambda r: 0.6 * r['map'] * 100)  # as det_values, then in %
    ap75, ap75_std = expected('sd', lambda r: 0.7 * r['map'] * 100)
    assert (f'| {SD_LABEL} cycle 2 | {config} | 2 backbones × 1 | {mean:.2f} ± {std:.2f} | '
            f'{ap:.2f} ± {ap_std:.2f} | {ap75:.2f} ± {ap75_std:.2f} | '
            f"{paired_cell(lambda r: 100 * r['map'], '2 backbones × 1')} |") in report['md']
    assert (f'| {BASE_LABEL} cycle 2 | {config} | 2 backbones × 1 | {base:.2f} ± {base_std:.2f} '
            '|') in report['md']
    for kind, get in (('AP50', lambda r: r['aero'] * 100),
                      ('AP', lambda r: 0.6 * r['aero'] * 100)):
        table = report['md'].split(f'### {kind} per class')[1]
        assert '| Backbone | Config | aeroplane | bicycle |' in table
        assert f"| {SD_LABEL} cycle 2 | {config} | {expected('sd', get)[0]:.1f} |" in table
    # a backbone without our meta: named by file and hash, one run, no baseline to compare with
    assert f'| backbone.pth (abababab) | {config} | 1 run | 30.00 ± – | – | – | – |' \
        in report['md']


def test_segmentation(report):
    mean, std = expected('sd', lambda r: r['miou'])
    base, _ = expected('base', lambda r: r['miou'])
    row = find(report['rows'], 'segmentation', f'{SD_LABEL} cycle 2', 'mIoU')
    assert (row['n'], row['std'], row['decoder']) == (2, pytest.approx(std), 'deeplabv3')
    assert row['delta'] == pytest.approx(mean - base)
    macc, macc_std = expected('sd', lambda r: r['miou'] + 10)
    assert (f'| {SD_LABEL} cycle 2 | deeplabv3 | deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd | '
            f'2 backbones × 1 | {mean:.2f} ± {std:.2f} | {macc:.2f} ± {macc_std:.2f} | '
            f"90.00 ± 0.00 | {paired_cell(lambda r: r['miou'], '2 backbones × 1')} |") \
        in report['md']
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
    assert reasons['eval_iter_300'].startswith('not counted: same checkpoint, test data and '
                                               'test config')
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


def _study_meta(config, depth, seed, top1, config_hash='aaa', sd=True, world=1, **fields):
    """The final backbone of a 2-cycle run (SD's teacher: the snapshot of cycle 1)."""
    meta = dict(arch='ResNet', depth=depth, sd=SD if sd else None, cycle=2, num_cycles=2, iter=10,
                epoch=2, val={'accuracy/top1': top1}, config=f'{config}.py', seed=seed,
                schedule=dict(boundaries=[0, 5, 10], max_iters=10),
                setting=dict(config_hash=config_hash, total_batch=32 * world, world_size=world),
                env=dict(torch='2.14.1', mmcv='2.1.0', device='GPU X', world_size=world))
    return dict(meta, **fields)


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
    r18 = find(rows, 'classification', 'r18_sd (SD T=3) [aaa, batch 32 on 1] cycle 2',
               'accuracy/top1')
    r50 = find(rows, 'classification', 'r50_sd (SD T=3) cycle 2', 'accuracy/top1')
    assert r18['baseline'] == 'r18_base (baseline) cycle 2'
    assert r50['baseline'] == 'r50_base (baseline) cycle 2'  # not the ResNet-18 one
    diffs = [70.0 - 66.0, 71.0 - 68.0]
    half = stats.t.ppf(0.975, 1) * statistics.stdev(diffs) / 2 ** 0.5
    assert (r50['delta'], r50['delta_kind'], r50['delta_n']) == (pytest.approx(3.5), 'paired', '2')
    assert (r50['delta_low'], r50['delta_high']) == (pytest.approx(3.5 - half),
                                                     pytest.approx(3.5 + half))
    assert r18['n'] == 2  # the copy of seed 0 is not a third sample
    # the other resolved config is its own row; pretrained with 8 x 32 images it has no
    # baseline pretrained the same way, and the note says why
    other = find(rows, 'classification', 'r18_sd (SD T=3) [bbb, batch 256 on 8] cycle 2',
                 'accuracy/top1')
    assert (other['n'], other['delta'], other['baseline']) == (1, None, None)
    assert other['baseline_note'] == (
        'no baseline: r18_base (baseline) cycle 2 was pretrained with batch 32 on 1, precision '
        'not recorded on unrecorded data; this backbone with batch 256 on 8, precision not '
        'recorded on unrecorded data')
    assert other['baseline_note'] in study_report['md']


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


def _ban_meta(seed, top1, **fields):
    """A born-again-style (``_ban_``) backbone: SD's loss, one step-schedule cycle."""
    return dict(arch='ResNet', depth=50, sd=SD, cycle=1, num_cycles=1, iter=10, epoch=1,
                val={'accuracy/top1': top1}, config='r50_ban.py', seed=seed,
                schedule=dict(boundaries=[0, 10], max_iters=10), **fields)


R101 = dict(path='/t/r101.pth', sha256='1a2b3c4d' + '0' * 56,
            config='/repo/configs/pretrain/resnet101_cyclic_8xb32_in1k.py')


def test_teacher_is_part_of_the_row(tmp_path):
    """The pretraining guide's ResNet-101 -> ResNet-50 run and the teacher-less run of the same ``_ban_``
    config are two rows, and the teacher-less one is the baseline. Born-again's generation 1
    (never taught either) is a second candidate: the note says which one was chosen and why."""
    for seed, top1 in ((0, 70.0), (1, 71.0)):
        write_backbone(str(tmp_path / f'plain_s{seed}' / 'backbone.pth'), _ban_meta(seed, top1))
        write_backbone(str(tmp_path / f'r101_s{seed}' / 'backbone.pth'),
                       _ban_meta(seed, top1 + 2 + seed, teacher=R101))
    write_backbone(str(tmp_path / 'ban' / 'gen1' / 'backbone.pth'),
                   _ban_meta(0, 69.0, generation=1))
    write_report([str(tmp_path)], str(tmp_path / 'report'))
    results = json.loads((tmp_path / 'report' / 'results.json').read_text())
    taught = find(results['rows'], 'classification',
                  'r50_ban (KD from resnet101_cyclic_8xb32_in1k 1a2b3c4d, T=3) cycle 1',
                  'accuracy/top1')
    assert (taught['n'], taught['teacher']) == (2, 'file ' + R101['sha256'])
    assert (taught['baseline'], taught['delta'], taught['delta_kind']) == (
        'r50_ban (baseline) cycle 1', pytest.approx(2.5), 'paired')
    assert taught['baseline_note'] == ('baseline r50_ban (baseline) cycle 1, not r50_ban '
                                       '(baseline) gen 1 cycle 1: shares 2 of its seeds (the '
                                       'next best 1)')
    plain = find(results['rows'], 'classification', 'r50_ban (baseline) cycle 1', 'accuracy/top1')
    assert (plain['n'], plain['mean'], plain['teacher']) == (2, 70.5, 'none')
    assert results['incomplete'] == []  # nothing taken for a duplicate


def test_data_is_part_of_the_row(tmp_path):
    """A smoke test on the tiny data and the real run are two rows, in pretraining (validation
    data) and in transfer (test data); each is compared on its own data only."""
    real, tiny = dict(images=50000, ann_sha256='aa' * 32), dict(images=200, ann_sha256='bb' * 32)
    for config, top1 in (('r18_sd', 62.0), ('r18_base', 60.0)):
        for seed in (0, 1):
            write_backbone(str(tmp_path / 'pre' / f'{config}_s{seed}' / 'backbone.pth'),
                           _study_meta(config, 18, seed, top1 + seed, sd=config == 'r18_sd',
                                       data=real))
    smoke = _study_meta('r18_sd', 18, 0, 30.0, data=tiny)
    write_backbone(str(tmp_path / 'pre' / 'smoke' / 'backbone.pth'), smoke)
    backbone = _study_meta('r18_sd', 18, 0, 62.0, data=real)
    for name, images, sha in (('tiny', 40, 'cc'), ('real', 4952, 'dd')):
        write_metrics(str(tmp_path / 'det' / name), 'det', backbone, 0,
                      det_values(0.3 if name == 'tiny' else 0.7, 0.5), checkpoint=name,
                      test_data=dict(TEST_DATA, images=images, ann_sha256=sha * 32))
    write_report([str(tmp_path)], str(tmp_path / 'report'))
    results = json.loads((tmp_path / 'report' / 'results.json').read_text())
    assert results['incomplete'] == []
    label = 'r18_sd (SD T=3) [data: {}] cycle 2'
    real_row = find(results['rows'], 'classification', label.format('50000 images, ann aaaaaaaa'),
                    'accuracy/top1')
    smoke_row = find(results['rows'], 'classification', label.format('200 images, ann bbbbbbbb'),
                     'accuracy/top1')
    assert (real_row['n'], real_row['mean'], real_row['delta']) == (2, 62.5, 2.0)
    assert (smoke_row['n'], smoke_row['mean'], smoke_row['baseline']) == (1, 30.0, None)
    assert smoke_row['baseline_note'].endswith('this backbone with batch 32 on 1, precision not '
                                               'recorded on 200 images, ann bbbbbbbb')
    det = {r['test_data']: r['mean'] for r in results['rows'] if r['metric'] == 'pascal_voc/AP50'}
    assert det == {'40 images, ann cccccccc': 30.0, '4952 images, ann dddddddd': 70.0}
    md = (tmp_path / 'report' / 'report.md').read_text()
    assert 'faster-rcnn_r18_fpn_voc0712_tiny [data: 4952 images, ann dddddddd] |' in md


def test_matched_baseline_is_pretrained_the_same_way(tmp_path):
    """Of two baselines of one config, one fp32 and one bf16 (--amp), each SD run is compared
    with the one of its own precision; without such a one, with none."""
    def meta(config, seed, top1, precision, world=1):
        return _study_meta(config, 18, seed, top1, sd=config == 'r18_sd', world=world,
                           config_hash=f'{config}-{precision}',
                           setting=dict(config_hash=f'{config}-{precision}',
                                        total_batch=32 * world, world_size=world,
                                        precision=precision))
    for precision, offset in (('fp32', 0.0), ('bfloat16', 10.0)):
        for seed in (0, 1):
            write_backbone(str(tmp_path / f'base_{precision}_s{seed}' / 'backbone.pth'),
                           meta('r18_base', seed, 60.0 + offset + seed, precision))
            write_backbone(str(tmp_path / f'sd_{precision}_s{seed}' / 'backbone.pth'),
                           meta('r18_sd', seed, 61.0 + offset + 2 * seed, precision))
    write_backbone(str(tmp_path / 'sd_8_s0' / 'backbone.pth'),
                   meta('r18_sd', 0, 61.0, 'fp32', world=8))
    write_report([str(tmp_path)], str(tmp_path / 'report'))
    rows = [r for r in json.loads((tmp_path / 'report' / 'results.json').read_text())['rows']
            if r['metric'] == 'accuracy/top1' and r['backbone'].startswith('r18_sd')]
    found = {r['backbone'].split('[')[1].split(']')[0]: (r['baseline'], r['delta']) for r in rows}
    assert found == {
        'r18_sd-fp32, batch 32 on 1': ('r18_base (baseline) [r18_base-fp32, batch 32 on 1] '
                                       'cycle 2', pytest.approx(1.5)),
        'r18_sd-bfloat16, batch 32 on 1': ('r18_base (baseline) [r18_base-bfloat16, batch 32 on '
                                           '1] cycle 2', pytest.approx(1.5)),
        'r18_sd-fp32, batch 256 on 8': (None, None)}


def test_retest_with_another_evaluator_is_its_own_row(tmp_path):
    """tools/evaluate.py with the fine-tuning's test config is the same result again (not
    counted); with another evaluator (VOC area AP, say) it is another row of the table."""
    meta = _study_meta('r18_sd', 18, 0, 62.0)
    run = tmp_path / 'det'
    write_metrics(str(run), 'det', meta, 0, det_values(0.5, 0.5), checkpoint='ft')
    write_metrics(str(run / 'eval_iter_300'), 'det', meta, 0, det_values(0.5, 0.5),
                  checkpoint='ft')
    write_metrics(str(run / 'eval_area'), 'det', meta, 0, det_values(0.52, 0.5),
                  checkpoint='ft', test_setting='a7ea0000beef')
    write_report([str(tmp_path)], str(tmp_path / 'report'))
    results = json.loads((tmp_path / 'report' / 'results.json').read_text())
    assert [os.path.basename(i['path']) for i in results['incomplete']] == ['eval_iter_300']
    det = {r['test_setting']: (r['mean'], r['runs']) for r in results['rows']
           if r['metric'] == 'pascal_voc/AP50'}
    assert det == {'7e57c0ffee00': (50.0, str(run)),
                   'a7ea0000beef': (52.0, str(run / 'eval_area'))}
    md = (tmp_path / 'report' / 'report.md').read_text()
    assert 'faster-rcnn_r18_fpn_voc0712_tiny [test a7ea0000beef] |' in md


def _cost(device_hours, teacher_images, images=4e6):
    return dict(images=images, teacher_images=teacher_images, seconds=device_hours * 3600,
                device_hours=device_hours, devices=1)


def test_cost_columns_and_born_again_at_recorded_cost(tmp_path):
    """The classification table has device-hours and teacher forwards (means over seeds); SD and
    born-again generations of the same architecture are compared at what each recorded, a
    generation at the cost of every generation up to it."""
    sd = dict(arch='ResNet', depth=50, sd=SD, cycle=4, num_cycles=4, iter=40, epoch=4,
              config='r50_sd.py', schedule=dict(boundaries=[0, 10, 20, 30, 40], max_iters=40))
    for seed, (hours, top1) in enumerate(((2.0, 70.0), (2.2, 72.0))):
        write_backbone(str(tmp_path / f'sd_s{seed}' / 'backbone.pth'),
                       dict(sd, seed=seed, val={'accuracy/top1': top1},
                            cost=_cost(hours, 3e6)))
        for k in (1, 2, 3):
            gen = tmp_path / f'ba_s{seed}' / f'gen{k}'
            previous = tmp_path / f'ba_s{seed}' / f'gen{k - 1}' / 'epoch_10.pth'
            teacher = dict(R101, path=str(previous), sha256=f'{seed}{k}' * 32) if k > 1 else None
            write_backbone(str(gen / 'backbone.pth'), _ban_meta(
                seed, 68.0 + k + seed, generation=k, teacher=teacher,
                cost=_cost(1.0 + seed, 4e6 if k > 1 else 0)))
    write_report([str(tmp_path)], str(tmp_path / 'report'))
    md = (tmp_path / 'report' / 'report.md').read_text()
    assert '| Backbone | n | top-1 | top-5 | device-h | teacher fwd | Δ top-1 [95% CI] |' in md
    assert '| r50_sd (SD T=3) cycle 4 | 2 backbones | 71.00 ± 1.41 | – | 2.1 | 3M | – |' in md
    table = md.split('## SD vs born-again at recorded cost')[1]
    assert '| Method | Backbone | n | top-1 | device-h | teacher fwd | images |' in table
    assert '| SD | r50_sd (SD T=3) | 2 backbones | 71.00 ± 1.41 | 2.1 | 3M | 4M |' in table
    assert ('| born-again | r50_ban (baseline) gen 1 | 2 backbones | 69.50 ± 0.71 | 1.5 | 0 | '
            '4M |') in table
    # generation k learns from generation k-1 of its own seed: one setting over both seeds, at
    # the cost of generations 1..k (1 device-hour each for seed 0, 2 for seed 1)
    assert '| born-again | r50_ban (born-again T=3) gen 3 | 2 backbones | 71.50 ± 0.71 | 4.5 | ' \
        '8M | 12M |' in table


def test_latex_format_and_provenance(report):
    """report.tex (booktabs) beside report.md; results.json has its format version and, per run,
    the code version, command line and CUDA stack the run recorded."""
    tex = (report['out'] / 'report.tex').read_text()
    assert tex.count(r'\begin{tabular}') == 3 and tex.count(r'\toprule') == 3
    mean, std = expected('sd', lambda r: 100 * r['map'])
    assert (r'r18\_sd (SD T=3) cycle 2 & faster-rcnn\_r18\_fpn\_voc0712\_tiny & 2 backbones '
            rf'$\times$ 1 & {mean:.2f} $\pm$ {std:.2f} & ') in tex
    assert r'$\Delta$ AP50 [95\% CI] \\' in tex
    sd_cycle1 = paired_cell(lambda r: r['top1'][0])  # negative: printed with minus signs
    assert sd_cycle1.startswith('-') and sd_cycle1.replace('-', '$-$').replace(
        '×', r'$\times$') in tex
    results = json.loads((report['out'] / 'results.json').read_text())
    assert results['format'] == 2
    det = [r for r in results['runs'] if r['kind'] == 'det' and r['path'].endswith('det_sd_s1')]
    assert len(det) == 1 and det[0]['seed'] == [1, 11]
    assert {k: det[0][k] for k in ('git_commit', 'git_dirty', 'command', 'cuda', 'cudnn',
                                   'driver')} == {k: ENV[k] for k in (
        'git_commit', 'git_dirty', 'command', 'cuda', 'cudnn', 'driver')}
    assert 'Code: commit 0123456789ab (9 runs)' in report['md']


def test_batch_other_than_the_recipes_is_marked(tmp_path):
    """A one-GPU mmseg run (batch 4 of the recipe's 16, same 20k iterations) sees a quarter of
    the recipe's images; an epoch-based pretraining at 32 of 256 runs 8x the iterations."""
    meta = _study_meta('r18_sd', 18, 0, 62.0, setting=dict(
        config_hash='aaa', total_batch=32, world_size=1, precision='fp32', base_batch=256,
        by_epoch=True))
    write_backbone(str(tmp_path / 'pre' / 'backbone.pth'), meta)
    write_metrics(str(tmp_path / 'seg'), 'seg', meta, 0, {'mIoU': 40.0}, checkpoint='seg',
                  setting=dict(TRANSFER_SETTING, total_batch=4, base_batch=16))
    write_report([str(tmp_path)], str(tmp_path / 'report'))
    md = (tmp_path / 'report' / 'report.md').read_text()
    label = "r18_sd (SD T=3) [batch 32 vs the recipe's 256: the same epochs in 8× more iterations]"
    assert f'| {label} cycle 2 | 1 backbone |' in md
    assert (f"| {label} cycle 2 | deeplabv3 | deeplabv3_r50-d8_4xb4-20k_voc12aug-512x512_sd "
            "[batch 4 vs the recipe's 16: sees 4× fewer images than the recipe] |") in md


def test_comparison_arms_are_labelled_by_their_method():
    """Label smoothing, PS-KD, an EMA teacher and a single cosine, as the export writes them;
    label smoothing is an arm, not a baseline (no teacher, but not the plain recipe)."""
    cyclic = dict(pretrain_meta('base', 2, 60.0), lr_schedule=['CosineRestartLR'])
    arms = {
        'baseline': cyclic,
        'cosine': dict(cyclic, config='r18_coslr.py', lr_schedule=['CosineAnnealingLR'],
                       num_cycles=1, cycle=1),
        'lbs': dict(cyclic, config='r18_lbs-cyclic.py', label_smoothing=0.1),
        'pskd': dict(cyclic, config='r18_pskd.py', sd=dict(
            SD, kd_form='pskd', alpha=0.8, temperature=1.0, ce_weight=None, kd_weight=None,
            refresh='epoch')),
        'ema': dict(cyclic, config='r18_ema-teacher.py', sd=dict(
            SD, kd_form='sd', refresh='ema', momentum=0.999)),
    }
    ids = {name: BackboneId.from_meta(meta, meta['cycle']) for name, meta in arms.items()}
    labels = backbone_labels(ids.values())
    assert {name: labels[ident] for name, ident in ids.items()} == {
        'baseline': 'r18_base (baseline) cycle 2', 'cosine': 'r18_coslr (cosine) cycle 1',
        'lbs': 'r18_lbs-cyclic (label smoothing ε=0.1) cycle 2',
        'pskd': 'r18_pskd (PS-KD α=0.8) cycle 2',
        'ema': 'r18_ema-teacher (EMA teacher m=0.999 T=3) cycle 2'}
    assert {name for name, ident in ids.items() if ident.plain} == {'baseline', 'cosine'}
    assert (ids['pskd'].teacher, ids['ema'].teacher) == ('epoch snapshots', 'EMA')
