"""The full-scale path: the docs' command lines, as printed, and every shipped config, on CPU.

The docs are README.md and the pages it maps (``DOCS``, in the order their commands run; the
tests named ``test_readme_*`` check what those commands wrote). The commands run in a workspace
laid out as the docs assume (``configs/``, ``tools/``,
``data/imagenet``, ``data/cifar100``, ``data/VOCdevkit``, ``work_dirs/``) with ``python``,
``torchrun`` and a one-machine ``srun`` (tests/bin) on PATH. The data are generated in the real
layouts. To stay fast on 2 CPU cores every command gets extra ``--cfg-options`` that shrink the
inputs (image sizes, epochs, loader workers), never the architecture: ResNet-50/101 with
1000-class heads, Faster R-CNN R-50/101-FPN, DeepLabV3 / PSPNet / FCN R-50/101-D8. A
pretraining runs 2 one-epoch cycles, the docs' one-process SD run 4 (see ``cycles``).
"""
import glob
import json
import os
import os.path as osp
import re
import shlex
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from conftest import REPO, run_bounded, tool_env
from mmengine.config import Config

from sd_transfer.datasets import make_tiny_cifar100, make_tiny_imagenet, make_tiny_voc
from sd_transfer.engine import amp_settings
from sd_transfer.transfer import read_backbone, verify_backbone

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

IMAGENET_SHRINK = [
    'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
    'val_dataloader.batch_size=4', 'val_dataloader.num_workers=0',
    # 32 px: ResNet's last stage has one position, so BN needs batches of 2 or more: 20 images
    # in batches of 4 give every rank of 8 one batch of 3
    'train_dataloader.dataset.pipeline.1.scale=32', 'val_dataloader.dataset.pipeline.1.scale=36',
    'val_dataloader.dataset.pipeline.2.crop_size=32']
CIFAR_SHRINK = [
    'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
    'val_dataloader.batch_size=2', 'val_dataloader.num_workers=0']


def _loaders(names, *keys):
    return [f'{loader}.{key}' for loader in names for key in keys]


_TEST_LOADERS = ('val_dataloader', 'test_dataloader')
_NO_WORKERS = ('num_workers=0', 'persistent_workers=False')
DET_SHRINK = [
    'train_dataloader.dataset.times=1', 'train_cfg.max_epochs=1',
    *_loaders(['train_dataloader', *_TEST_LOADERS], *_NO_WORKERS),
    *_loaders(_TEST_LOADERS, 'dataset.pipeline.1.scale=(128,96)'),
    *[f'train_dataloader.dataset.dataset.datasets.{i}.pipeline.2.scale=(128,96)' for i in (0, 1)]]
SEG_SHRINK = [
    'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
    'train_dataloader.batch_size=2', 'model.data_preprocessor.size=(64,64)',
    *_loaders(['train_dataloader', *_TEST_LOADERS], *_NO_WORKERS),
    *_loaders(_TEST_LOADERS, 'dataset.pipeline.1.scale=(128,64)'),
    *[f'train_dataloader.dataset.datasets.{i}.pipeline.{k}' for i in (0, 1)
      for k in ('2.scale=(128,64)', '3.crop_size=(64,64)', '6.size=(64,64)')]]
# Peak use of the workspace, measured: the docs' runs keep their checkpoints until the last
# (about 6 GB); later runs drop theirs as they end (see prune)
NEEDS_DISK = 7e9
EVAL_SHRINK = [*_loaders(_TEST_LOADERS, *_NO_WORKERS),
               *_loaders(_TEST_LOADERS, 'dataset.pipeline.1.scale=(128,96)')]


ONE_CYCLE = ('_ban_', '_lbs_', '_coslr_')  # upstream schedules: 1 epoch here


def cycles(command):
    """The one-epoch cycles a pretraining runs here: the docs' one-process SD run (and its
    resume) the configs' 4, as the docs' disk figure counts its files; every other run 2 (a
    teacher from cycle 2 on), with one checkpoint at the end: 0.7 GB written at ResNet-50
    instead of 2.0 (0.3 GB a checkpoint, 0.1 GB an export, two exports a cycle)."""
    if any(k in command for k in ONE_CYCLE):
        return 1
    return 4 if 'resnet50_sd_8xb32_in1k.py' in command and '--work-dir' not in command else 2


def shrink(command: str):
    """The --cfg-options that make ``command`` small, by the kind of config it runs."""
    config = re.search(r'configs/\S+\.py', command)
    if 'tools/make_tiny_data.py' in command or 'tools/study.py' in command or config is None:
        return []  # no training here (a study's --dry-run or --launcher slurm)
    name = config.group(0)
    if 'tools/evaluate.py' in command:
        options = EVAL_SHRINK
    elif name.startswith('configs/pretrain/'):
        n = cycles(command)
        options = [f'train_cfg.max_epochs={n}',
                   *(CIFAR_SHRINK if 'cifar' in name else IMAGENET_SHRINK)]
        if n > 1:
            options += [f'param_scheduler.periods={[1] * n}',
                        f'param_scheduler.restart_weights={[1] * n}']
        if n == 2:
            options.append('default_hooks.checkpoint.interval=2')
    else:
        options = DET_SHRINK if 'faster-rcnn' in name else SEG_SHRINK
    return ['--cfg-options', *options]


# Every page of the docs, in the order their ```sh blocks run: setup's tiny data, pretraining
# before the transfers of its backbone (and the exports of its checkpoints), the report after
# both, the resume of a finished pretraining last. A new page goes here, where its commands
# belong (test_docs_lists_every_page_with_commands fails until it does).
DOCS = [
    'README.md',
    'docs/index.md',
    'docs/get_started.md',
    'docs/user_guides/pretraining.md',
    'docs/user_guides/transfer.md',
    'docs/user_guides/report.md',
    'docs/user_guides/study.md',
    'docs/user_guides/troubleshooting.md',
    'docs/advanced_guides/sd_and_arms.md',
    'docs/advanced_guides/reliability.md',
    'docs/advanced_guides/performance.md',
    'configs/pretrain/README.md',
    'configs/transfer/README.md',
]
# Where no page of the docs is: the environment, outputs and data
NOT_DOCS = ('.venv', '.git', 'work_dirs', 'data')


def sh_blocks(page):
    """The ```sh blocks of one markdown file (relative to the repo), in order."""
    with open(osp.join(REPO, page)) as f:
        return re.findall(r'^```sh\n(.*?)^```', f.read(), re.S | re.M)


def command_lines(text):
    """The command lines of a code block: continuation lines joined, comments left out."""
    commands = []
    for line in text.replace('\\\n', ' ').splitlines():
        line = ' '.join(line.split())
        if line and not line.startswith('#'):
            commands.append(line)
    return commands


def docs_commands():
    """Every command line of the docs' ```sh blocks, page by page in ``DOCS`` order."""
    return [line for page in DOCS for block in sh_blocks(page) for line in command_lines(block)]


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """A folder laid out as the docs assume; the data small, in the real layouts."""
    ws = tmp_path_factory.mktemp('workspace')
    free = shutil.disk_usage(ws).free
    if free < NEEDS_DISK:  # say so now, not as 40 confusing failures when the disk fills up
        pytest.fail(f'the full-scale tests need {NEEDS_DISK / 1e9:.0f} GB free under {ws}, '
                    f'{free / 1e9:.1f} GB are')
    for name in ('configs', 'tools'):
        os.symlink(osp.join(REPO, name), ws / name)
    make_tiny_imagenet(str(ws / 'data/imagenet'), classes=10, size=40, train_per_class=2,
                       val_per_class=1)
    make_tiny_cifar100(str(ws / 'data/cifar100'), classes=10, train_per_class=2,
                       test_per_class=1)
    make_tiny_voc(str(ws / 'data/VOCdevkit'), size=160, train_images=2, test_images=2,
                  aug_images=2)
    return ws


def run(workspace, command: str, timeout=900):
    """Run one command line through bash in the workspace, plus its shrinking options."""
    env = tool_env(dict(OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
                        PATH=os.pathsep.join([osp.join(REPO, 'tests', 'bin'),
                                              osp.dirname(sys.executable), os.environ['PATH']])))
    line = ' '.join([command, *map(shlex.quote, shrink(command))])
    start = time.time()
    proc = run_bounded(['bash', '-c', line], timeout, cwd=workspace, env=env)
    print(f'{time.time() - start:5.1f} s  {command}')
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f'{line}\nexited {proc.returncode}\n{log[-4000:]}'
    return log


def prune(work_dir, keep=()):
    """Delete the checkpoints a finished run no longer needs here (all but its exported
    backbones): a full-scale checkpoint is 0.3-0.5 GB, and 40 runs of them would fill a CI disk."""
    for path in work_dir.rglob('*.pth'):
        if path.name != 'backbone.pth' and not any(k in path.parents for k in keep):
            path.unlink()


def backbone_meta(path):
    return torch.load(path, weights_only=True, map_location='cpu')['meta']


@pytest.fixture(scope='module')
def docs_runs(workspace):
    """The docs' command lines, each run once, in ``DOCS`` order; their logs by command."""
    logs = {command: run(workspace, command) for command in docs_commands()}
    # the SD run's checkpoints stay: the test of the docs' disk figure counts them
    prune(workspace / 'work_dirs', keep=[workspace / 'work_dirs/resnet50_sd_8xb32_in1k'])
    return logs


def test_docs_lists_every_page_with_commands():
    """Every markdown file with a ```sh block is in ``DOCS``: a new page cannot escape the tests
    of the docs' commands. And every page ``DOCS`` names exists."""
    pages = set()
    for root, dirs, files in os.walk(REPO):
        rel = osp.relpath(root, REPO)
        dirs[:] = [d for d in dirs if rel != '.' or d not in NOT_DOCS]
        pages.update(osp.normpath(osp.join(rel, f)) for f in files if f.endswith('.md'))
    with_commands = {page for page in pages if sh_blocks(page)}
    assert with_commands, 'no page with a ```sh block found'
    assert sorted(with_commands - set(DOCS)) == [], 'add these pages to DOCS, where they belong'
    assert sorted(set(DOCS) - pages) == [], 'DOCS names pages that do not exist'
    assert len(set(DOCS)) == len(DOCS)


QUICK_START_SETUP = ('make setup', 'source .venv/bin/activate')


def test_docs_run_the_readme_quick_start():
    """README's quick start (a ```text block: its setup cannot run in the tests' workspace) says
    what the guides' ```sh blocks say, so its commands run as printed there."""
    with open(osp.join(REPO, 'README.md')) as f:
        quick = re.search(r'^## Quick start.*?^```text\n(.*?)^```', f.read(), re.S | re.M)
    assert quick, "README has no quick start"
    lines = command_lines(quick.group(1))
    commands = [re.sub(r'\s+#.*', '', line) for line in lines]
    assert commands[0] in QUICK_START_SETUP
    run = [c for c in commands if c not in QUICK_START_SETUP]
    assert [c.split()[1] for c in run] == ['tools/pretrain.py', 'tools/transfer.py',
                                           'tools/report.py']
    documented = set(docs_commands())
    missing = [c for c in run if c not in documented]
    assert missing == [], 'README quick start differs from the guides'


def test_docs_shows_the_full_scale_commands():
    """The commands below are the ones users copy; losing one from the docs loses its test."""
    commands = docs_commands()
    assert any(c.startswith('python tools/pretrain.py configs/pretrain/resnet50_sd_8xb32_in1k.py')
               for c in commands)
    assert any(c.startswith('torchrun --nproc_per_node=8 tools/pretrain.py') for c in commands)
    assert any(c.startswith('srun') and 'tools/pretrain.py' in c and '-N 2' in c
               for c in commands)
    for tool in ('transfer.py det', 'transfer.py seg', 'evaluate.py det'):
        assert any(f'tools/{tool} configs/transfer/' in c for c in commands), tool


def test_readme_pretraining_commands(workspace, docs_runs):
    logs = {c: log for c, log in docs_runs.items() if 'tools/pretrain.py' in c}
    assert logs
    for command, log in logs.items():
        world = 1
        if command.startswith('torchrun'):
            world = int(re.search(r'--nproc_per_node=(\d+)', command).group(1))
        elif command.startswith('srun'):
            nodes = re.search(r'-N (\d+)', command)
            tasks = re.search(r'--ntasks-per-node=(\d+)', command)
            world = int(nodes.group(1) if nodes else 1) * int(tasks.group(1) if tasks else 1)
        if '--resume' in command:  # requeued after the run above finished: nothing left to do
            assert 'finished before (cycle 4 of 4' in log and 'nothing to do' in log, command
            continue
        assert f'effective batch size {4 * world} ({world} process(es) x 4)' in log, command
        if '--auto-scale-lr' in command:
            assert f'scaled by {4 * world}/256' in log, command
        if '--amp' in command:
            # bf16 autocast on a CPU with native bf16, fp32 on this one if it has none
            assert f'precision: {amp_settings()[1]}' in log, command
        if '_sd_' in command:
            assert f'SD: cycle {cycles(command)} starts' in log, command
        if '--teacher' in command:
            assert 'teacher from ' in log and 'SD: teacher (from file, evaluated)' in log
    work_dir = workspace / 'work_dirs/resnet50_sd_8xb32_in1k'
    meta = backbone_meta(work_dir / 'backbone.pth')
    assert (meta['arch'], meta['depth'], meta['cycle'], meta['num_cycles']) == (
        'ResNet', 50, 4, 4)
    # the docs' disk figure: 3 full checkpoints (the last kept) and 5 backbone files, ~1.4 GB
    files = sorted(p.name for p in work_dir.glob('*.pth'))
    assert files == ['backbone.pth', *[f'backbone_cycle{k}.pth' for k in range(1, 5)],
                     'epoch_2.pth', 'epoch_3.pth', 'epoch_4.pth']
    assert 1.3e9 < sum(p.stat().st_size for p in work_dir.glob('*.pth')) < 1.5e9


def test_readme_born_again_command(workspace, docs_runs):
    root = workspace / 'work_dirs/resnet50_ban_8xb32_in1k'
    with open(root / 'summary.json') as f:
        summary = json.load(f)
    assert [g['generation'] for g in summary['generations']] == [1, 2, 3]
    assert summary['generations'][0]['cost']['teacher_images'] == 0
    assert all(g['cost']['teacher_images'] == g['cost']['images'] > 0
               for g in summary['generations'][1:])
    meta = backbone_meta(root / 'gen3/backbone.pth')
    assert meta['generation'] == 3 and meta['teacher']['path'].startswith(str(root / 'gen2'))
    # the R-101 -> R-50 run of the pretraining guide's teacher example
    meta = backbone_meta(workspace / 'work_dirs/resnet50_from_resnet101/backbone.pth')
    assert meta['teacher']['config'].endswith('resnet101_cyclic_8xb32_in1k.py')


def test_readme_transfer_commands(workspace, docs_runs):
    sha = glob.glob(str(workspace / 'work_dirs/faster-rcnn_r50_fpn_1x_voc0712_sd/'
                        'resnet50_sd_8xb32_in1k_cycle4-*'))
    assert len(sha) == 1, sha  # every det command of the docs trained into the same distinct dir
    for command, log in docs_runs.items():
        if 'tools/transfer.py' in command:
            assert 'backbone OK' in log, command
            assert 'mAP' in log or 'mIoU' in log, command
    with open(osp.join(sha[0], 'metrics.json')) as f:
        metrics = json.load(f)
    assert metrics['backbone']['meta']['config'] == 'resnet50_sd_8xb32_in1k.py'
    with open(osp.join(sha[0], 'eval_epoch_1', 'metrics.json')) as f:  # the shrunk schedule's
        evaluated = json.load(f)
    assert evaluated['metrics'] == pytest.approx(metrics['metrics'])


# Every shipped full-scale config, through the docs' one-GPU command with its path substituted.
PRETRAIN = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs/pretrain/*.py')))
TRANSFER = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs/transfer/*.py')))


def test_every_shipped_config_is_covered():
    assert len(PRETRAIN) == 29 and len(TRANSFER) == 15


def _arch(config):
    """'', 'v1c' or 'v1d': the backbone family a pretraining or transfer config is for."""
    name = osp.basename(config)
    return 'v1c' if 'v1c' in name else 'v1d' if 'v1d' in name else ''


def _depth(config):
    return '101' if re.search(r'(resnet|resnetv1[cd]|_r)101', osp.basename(config)) else '50'


def _sd_backbone(transfer):
    """The SD pretraining whose backbone a transfer config fine-tunes in these tests."""
    return f'resnet{_arch(transfer)}{_depth(transfer)}_sd_8xb32_in1k'


def run_pairs(workspace, commands):
    """Run independent commands two at a time (one thread each): a process each core. Each
    run's checkpoints go when it ends; what the tests read (backbones, metrics) stays."""
    def run_and_prune(command):
        log = run(workspace, command)
        config = re.search(r'configs/\S+\.py', command).group(0)
        prune(workspace / 'work_dirs' / osp.splitext(osp.basename(config))[0])
        return log

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(commands, pool.map(run_and_prune, commands)))


def _backbone(config):
    return f'work_dirs/{osp.splitext(osp.basename(config))[0]}/backbone.pth'


def _exported(workspace, config):
    """The backbone a run of ``config`` exported (the docs' born-again command: generation 1)."""
    path = workspace / _backbone(config)
    generation = path.parent / 'gen1' / 'backbone.pth'
    return generation if generation.is_file() else path


def pretrain_command(config):
    """The docs' one-GPU pretraining command, for ``config``."""
    data = 'data/cifar100' if 'cifar' in config else 'data/imagenet'
    return f'python tools/pretrain.py {config} --data-root {data} --amp --auto-scale-lr'


@pytest.fixture(scope='module')
def pretrained(workspace):
    """Every pretraining config through the one-GPU command, where the docs' commands did not
    already run it."""
    run_pairs(workspace, [pretrain_command(config) for config in PRETRAIN
                          if not _exported(workspace, config).is_file()])
    return {config: str(_exported(workspace, config)) for config in PRETRAIN}


@pytest.mark.parametrize('config', PRETRAIN)
def test_every_pretraining_config_exports_a_transferable_backbone(pretrained, config):
    path = pretrained[config]
    meta = backbone_meta(path)
    # as many cycles as its run had, here or in the docs' commands
    assert meta['cycle'] == meta['num_cycles'] == cycles(pretrain_command(config))
    assert meta['finished']
    without_teacher = ('cyclic_', '_lbs_', '_coslr_')  # lbs-cyclic too
    assert (meta['sd'] is None) == any(k in config for k in without_teacher)
    assert meta['cost']['images'] > 0
    state, meta = read_backbone(path)
    if 'cifar' in config:
        assert meta['arch'] == 'ResNet_CIFAR'  # 3x3 stem, no max-pool: not a detection backbone
        return
    matching = [t for t in TRANSFER if (_arch(t), _depth(t)) == (_arch(config), _depth(config))]
    assert matching
    for transfer in matching:
        cfg = Config.fromfile(osp.join(REPO, transfer))
        task = 'det' if 'faster-rcnn' in transfer else 'seg'
        assert verify_backbone(state, meta, cfg.model.backbone, task, path) > 0


def _transfer_metrics(workspace, config):
    name = osp.splitext(osp.basename(config))[0]
    return glob.glob(str(workspace / 'work_dirs' / name / f'{_sd_backbone(config)}_cycle[0-9]-*'
                         / 'metrics.json'))


@pytest.fixture(scope='module')
def transferred(workspace, pretrained):
    """Every transfer config through the one-GPU command, from the SD backbone of its depth."""
    commands = {}
    for config in TRANSFER:
        if _transfer_metrics(workspace, config):
            continue  # the docs' commands fine-tuned it already
        backbone = _backbone(_sd_backbone(config))
        task, root = ('det', 'data/VOCdevkit') if 'faster-rcnn' in config else (
            'seg', 'data/VOCdevkit/VOC2012')
        commands[config] = (f'python tools/transfer.py {task} {config} --backbone {backbone} '
                            f'--data-root {root} --amp --auto-scale-lr')
    logs = run_pairs(workspace, list(commands.values()))
    return {config: logs[command] for config, command in commands.items()}


@pytest.mark.parametrize('config', TRANSFER)
def test_every_transfer_config_fine_tunes(workspace, transferred, config):
    found = _transfer_metrics(workspace, config)
    assert len(found) == 1, found
    with open(found[0]) as f:
        metrics = json.load(f)
    assert metrics['headline']['value'] is not None
    assert metrics['config'].endswith(config)
    assert metrics['backbone']['meta']['config'] == f'{_sd_backbone(config)}.py'
    assert metrics['backbone']['meta']['depth'] == int(_depth(config))
    assert metrics['backbone']['meta']['arch'] == {'': 'ResNet', 'v1c': 'ResNetV1c',
                                                   'v1d': 'ResNetV1d'}[_arch(config)]
