"""The scaled-down `make demo` path: the same commands as the demo, with shorter schedules."""
import json

from conftest import run_tool


def test_quick_demo_runs_the_whole_pipeline(tmp_path):
    out, data = tmp_path / 'demo', tmp_path / 'data'
    proc = run_tool('tools/demo.py', '--quick', '--out', str(out), '--data', str(data),
                    timeout=1200)
    report = out / 'report' / 'report.md'
    assert f'report: {report}' in proc.stdout
    assert '## Detection' in report.read_text()
    with open(out / 'report' / 'results.json') as f:
        results = json.load(f)
    assert results['incomplete'] == []
    tables = {(row['table'], row['backbone']) for row in results['rows']}
    for table in ('classification', 'detection', 'segmentation'):
        for label in ('resnet18_sd_tiny (SD T=3) cycle 2',
                      'resnet18_cyclic_tiny (baseline) cycle 2'):
            assert (table, label) in tables
    for task in ('det', 'seg'):
        for name in ('cyclic', 'sd'):
            assert (out / f'{task}_{name}' / 'metrics.json').is_file()
    assert any((out / 'report' / 'plots').glob('*.png'))
