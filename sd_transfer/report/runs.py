"""Find pretraining and transfer runs under some folders and read what they wrote.

A run is recognised by its outputs, never by its folder's name: ``backbone.pth`` /
``backbone_cycle<k>.pth`` (tools/pretrain.py), ``metrics.json`` (tools/transfer.py and
tools/evaluate.py), or only an mmengine log folder ``<timestamp>/<timestamp>.log`` when it has not
finished. Whatever cannot be used is returned as an :class:`Incomplete` with the reason, so the
report can list it instead of silently dropping it.
"""
import glob
import json
import os
import os.path as osp
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import UserError
from ..io import safe_torch_load
from ..run_dir import finished
from ..setting import batch_note

_CYCLE_FILE = re.compile(r'^backbone_cycle(\d+)\.pth$')
_SCOPE = re.compile(r"^default_scope = '(\w+)'", re.M)
# mmengine's "Runtime environment" block in the log: the seed actually used (also when drawn).
_SEED = re.compile(r'^\s+seed: (-?\d+)\s*$', re.M)


def run_setting(record: Optional[dict]) -> Optional[str]:
    """What a run actually ran (meta/metrics ``setting``): config hash, batch, world size."""
    if not record or not record.get('config_hash'):
        return None
    return (f"{record['config_hash']}, batch {record.get('total_batch')} on "
            f"{record.get('world_size')}")


def run_shape(record: Optional[dict]) -> Optional[str]:
    """How a run was trained, whatever its config: what a matched baseline must share."""
    if not record:
        return None
    return (f"batch {record.get('total_batch')} on {record.get('world_size')}, "
            f"{record.get('precision') or 'precision not recorded'}")


def data_key(record: Optional[dict]) -> Optional[str]:
    """The data a run was evaluated on (meta ``data``, metrics.json ``test_data``): its image
    count and annotation files' sha256 (older records: their path)."""
    if not record:
        return None
    ann = (record.get('ann_sha256') or '')[:8] or record.get('ann_file')
    return f"{record.get('images')} images, ann {ann}"


def teacher_kind(meta: dict) -> str:
    """``previous generation`` (born-again), ``file <sha256>`` (a fixed teacher, --teacher),
    ``snapshots`` (SD's own, from cycle 2 on), ``epoch snapshots`` (PS-KD), ``EMA`` (an average
    of the student) or ``none``: a run that never had a teacher is a baseline. Born-again
    generation k of every seed learns from its own generation k-1: one setting."""
    if (meta.get('generation') or 0) > 1:
        return 'previous generation'
    if meta.get('teacher'):
        return f"file {meta['teacher'].get('sha256')}"
    sd = meta.get('sd')
    if sd is None:
        return 'none'
    refresh = sd.get('refresh', 'cycle')
    if refresh == 'epoch':
        return 'epoch snapshots'
    if refresh == 'ema':
        return 'EMA'
    return 'snapshots' if (meta.get('num_cycles') or 1) > 1 else 'none'


def schedule_kind(meta: dict) -> str:
    """'cosine' for one cosine without restarts, else '' (cyclic, step, ...: the config says)."""
    return 'cosine' if meta.get('lr_schedule') == ['CosineAnnealingLR'] else ''


@dataclass(frozen=True)
class BackboneId:
    """Which backbone a result belongs to: a pretraining setting and cycle, or else a file.

    Runs of the same setting (pretraining config, SD settings, teacher, born-again generation,
    resolved config hash with batch and world size, validation data, cycle) with other seeds
    share an id, so their results are aggregated. ``family`` (architecture, depth, schedule)
    finds the matched baseline, which must also share ``run_shape`` and ``data``. A backbone
    without our meta (torchvision weights, a classifier checkpoint) is known by its file name and
    hash only.
    """
    config: Optional[str] = None  # pretraining config name, without '.py'
    sd: Optional[str] = None  # meta['sd'] as sorted JSON; None: trained without SD
    cycle: Optional[int] = None
    file: Optional[str] = None
    sha: Optional[str] = None
    generation: Optional[int] = None  # born-again generation
    run_setting: Optional[str] = None
    family: Optional[str] = None
    teacher: Optional[str] = None  # teacher_kind()
    teacher_name: str = field(default='', compare=False)  # a fixed teacher's model config
    data: Optional[str] = None  # data_key() of the validation set
    run_shape: Optional[str] = None
    batch: str = ''  # batch_note(): how the batch differs from the recipe's
    label_smoothing: Optional[float] = None  # an arm of its own: not a baseline
    schedule: str = field(default='', compare=False)  # schedule_kind()

    @property
    def setting(self) -> tuple:
        """The id without its cycle: what ``--baseline`` usually names."""
        if not self.config:
            return (self.file, self.sha)
        return (self.config, self.sd, self.teacher, self.generation, self.run_setting, self.data)

    @property
    def plain(self) -> bool:
        """A backbone trained without a teacher (nor label smoothing): a baseline."""
        return bool(self.config) and self.teacher == 'none' and not self.label_smoothing

    @classmethod
    def from_meta(cls, meta: dict, cycle: int) -> 'BackboneId':
        sd = meta.get('sd')
        schedule = meta.get('schedule') or dict(num_cycles=meta.get('num_cycles'))
        return cls(config=osp.splitext(meta['config'])[0],
                   sd=None if sd is None else json.dumps(sd, sort_keys=True), cycle=cycle,
                   generation=meta.get('generation'), run_setting=run_setting(meta.get('setting')),
                   family=json.dumps([meta.get('arch'), meta.get('depth'), schedule],
                                     sort_keys=True),
                   teacher=teacher_kind(meta), data=data_key(meta.get('data')),
                   teacher_name=osp.splitext(osp.basename(
                       (meta.get('teacher') or {}).get('config') or ''))[0],
                   run_shape=run_shape(meta.get('setting')),
                   batch=batch_note(meta.get('setting') or {}),
                   label_smoothing=meta.get('label_smoothing'), schedule=schedule_kind(meta))


@dataclass
class Scalars:
    """mmengine ``vis_data/scalars.json`` lines by kind, each sorted by step."""
    train: List[dict] = field(default_factory=list)  # step = iteration
    val: List[dict] = field(default_factory=list)  # step = epoch
    teacher: List[dict] = field(default_factory=list)  # 'sd/teacher_cycle'; step = iteration


@dataclass
class PretrainRun:
    path: str
    backbones: Dict[int, dict]  # cycle -> meta of backbone_cycle<k>.pth
    seed: Optional[int]
    scalars: Scalars

    @property
    def meta(self) -> dict:
        return self.backbones[max(self.backbones)]

    def backbone_id(self, cycle: int) -> BackboneId:
        return BackboneId.from_meta(self.meta, cycle)


@dataclass
class TransferRun:
    path: str
    task: str  # 'det' or 'seg'
    config: str  # transfer config name, without '.py'
    metrics: Dict[str, float]
    seed: tuple  # (pretraining seed, transfer seed), either None where unknown
    backbone: BackboneId
    tested: Optional[tuple]  # (checkpoint, test data, test config): what evaluate.py repeats
    run_setting: Optional[str] = None
    env: Optional[dict] = None
    data: Optional[str] = None  # data_key() of the test set
    test: Optional[str] = None  # hash of the test config (loader, evaluator, test_cfg)
    batch: str = ''  # batch_note() of the fine-tuning


@dataclass
class Incomplete:
    path: str
    kind: str  # 'pretrain', 'transfer' or 'unknown'
    reason: str


def find_runs(dirs: List[str]):
    """Return ``(pretrain_runs, transfer_runs, incomplete)`` found in or under ``dirs``."""
    pretrain, transfer, incomplete = [], [], []
    seen = set()
    for folder in dirs:
        if not osp.isdir(folder):
            raise UserError(f'{folder}: no such folder')
        for path, logs in _run_folders(folder):
            real = osp.realpath(path)
            if real in seen:
                continue
            seen.add(real)
            for result in _read_folder(path, logs):
                if isinstance(result, PretrainRun):
                    pretrain.append(result)
                elif isinstance(result, TransferRun):
                    transfer.append(result)
                else:
                    incomplete.append(result)
    return pretrain, _drop_repeated_tests(transfer, incomplete), incomplete


def _run_folders(root: str):
    """``(folder, its log folders)`` for each folder at or under ``root`` with run outputs.

    Log folders are mmengine's per-launch ``<timestamp>/`` holding ``<timestamp>.log``; they
    belong to the folder above them and are not searched themselves.
    """
    for path, subdirs, files in os.walk(root):
        logs = sorted(d for d in subdirs if osp.isfile(osp.join(path, d, d + '.log')))
        subdirs[:] = sorted(d for d in subdirs if d not in logs and not d.startswith('.'))
        if logs or 'metrics.json' in files or 'backbone_init.pth' in files or any(
                f == 'backbone.pth' or _CYCLE_FILE.match(f) for f in files):
            yield path, logs


def _read_folder(path: str, logs: List[str]):
    """The run(s) in one folder: a folder may hold a pretraining run and a metrics.json both."""
    scopes = {_scope(osp.join(path, d)) for d in logs}
    has_backbones = osp.isfile(osp.join(path, 'backbone.pth')) or bool(_cycle_files(path))
    results = []
    if has_backbones or 'mmpretrain' in scopes:
        results.append(_read_pretrain(path, logs))
    if osp.isfile(osp.join(path, 'metrics.json')):
        results.append(_read_transfer(path))
    elif scopes & {'mmdet', 'mmseg'} or osp.isfile(osp.join(path, 'backbone_init.pth')):
        results.append(Incomplete(path, 'transfer', 'no metrics.json: fine-tuning or its test '
                                  'did not finish'))
    if not results:
        results.append(Incomplete(path, 'unknown', 'log folder only (scope '
                                  f'{", ".join(sorted(s or "?" for s in scopes))}): '
                                  'no backbone.pth or metrics.json'))
    return results


def _scope(log_folder: str) -> Optional[str]:
    """The run's ``default_scope`` (mmpretrain / mmdet / mmseg) from its dumped config."""
    log = osp.join(log_folder, osp.basename(log_folder) + '.log')
    for file in (osp.join(log_folder, 'vis_data', 'config.py'), log):
        if osp.isfile(file):
            with open(file, errors='replace') as f:
                match = _SCOPE.search(f.read(1 << 20))  # the config is dumped near the top
            if match:
                return match.group(1)
    return None


def _cycle_files(path: str) -> Dict[int, str]:
    files = {}
    for file in glob.glob(osp.join(path, 'backbone_cycle*.pth')):
        match = _CYCLE_FILE.match(osp.basename(file))
        if match:
            files[int(match.group(1))] = file
    return files


def _read_meta(file: str) -> dict:
    """A backbone file's meta; ``map_location='meta'`` skips reading the weights themselves."""
    obj = safe_torch_load(file, map_location='meta')
    meta = obj.get('meta') if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or not meta.get('config') or 'cycle' not in meta:
        raise ValueError(f'{file}: no backbone meta (config, cycle)')
    return meta


def _read_pretrain(path: str, logs: List[str]):
    latest = osp.join(path, 'backbone.pth')
    if not osp.isfile(latest):
        return Incomplete(path, 'pretrain', 'no backbone.pth' + (
            ': stopped before its first cycle ended' if logs else ''))
    try:
        meta = _read_meta(latest)
        backbones = {cycle: _read_meta(file) for cycle, file in _cycle_files(path).items()}
    except (FileNotFoundError, ValueError) as e:
        return Incomplete(path, 'pretrain', str(e))
    if not finished(meta):
        return Incomplete(path, 'pretrain', f"stopped after cycle {meta['cycle']} of "
                          f"{meta['num_cycles']} (backbone.pth)" if meta['cycle'] < meta.get(
                              'num_cycles', meta['cycle']) else 'its final validation is not '
                          'recorded (resume it: --resume runs it)')
    backbones.setdefault(meta['cycle'], meta)
    folders = [osp.join(path, d) for d in logs]
    seed = meta['seed'] if meta.get('seed') is not None else _read_seed(folders)
    return PretrainRun(path, backbones, seed, read_scalars(folders))


def _read_seed(log_folders: List[str]) -> Optional[int]:
    """For backbone files without meta['seed']: the seed the first launch logged (a resumed
    run goes on with it; mmengine restores the checkpoint's seed after logging a fresh one)."""
    for folder in log_folders:
        with open(osp.join(folder, osp.basename(folder) + '.log'), errors='replace') as f:
            match = _SEED.search(f.read(1 << 20))
        if match:
            return int(match.group(1))
    return None


def read_scalars(log_folders: List[str]) -> Scalars:
    """Merge the scalars of every launch of a run by step; a later launch (a resume) wins."""
    by_kind = dict(train={}, val={}, teacher={})
    for folder in log_folders:
        file = osp.join(folder, 'vis_data', 'scalars.json')
        if not osp.isfile(file):
            continue
        with open(file) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # the last line of a run still writing
                    continue
                if not isinstance(record, dict) or 'step' not in record:
                    continue
                if 'sd/teacher_cycle' in record:
                    by_kind['teacher'][record['step']] = record
                if 'accuracy/top1' in record or 'teacher/accuracy/top1' in record:
                    # the student's and the teacher's metrics of one epoch are separate lines
                    by_kind['val'].setdefault(record['step'], {}).update(record)
                if 'lr' in record or 'loss' in record:
                    by_kind['train'][record['step']] = record
    return Scalars(**{kind: [records[s] for s in sorted(records)]
                      for kind, records in by_kind.items()})


def _read_transfer(path: str):
    file = osp.join(path, 'metrics.json')
    try:
        with open(file) as f:
            record = json.load(f)
        task, metrics = record['task'], record['metrics']
        headline = record['headline']['name']
        config = osp.splitext(osp.basename(record['config']))[0]
        backbone = record.get('backbone') or {}
    except (OSError, ValueError, KeyError, TypeError) as e:
        return Incomplete(path, 'transfer', f'metrics.json unreadable ({type(e).__name__}: {e})')
    if metrics.get(headline) is None:
        return Incomplete(path, 'transfer', f'metrics.json has no {headline}')
    meta = backbone.get('meta')
    if isinstance(meta, dict) and meta.get('config') and 'cycle' in meta:
        backbone_id = BackboneId.from_meta(meta, meta['cycle'])
    else:
        backbone_id = BackboneId(file=osp.basename(backbone.get('path') or '?'),
                                 sha=(backbone.get('sha256') or '?')[:8])
    checkpoint = (record.get('checkpoint') or {}).get('sha256')
    data, test = data_key(record.get('test_data')), record.get('test_setting')
    # the pretraining seed is the unit of replication (report/stats.py), the transfer seed one
    # sample of it
    seed = (meta.get('seed') if isinstance(meta, dict) else None, record.get('seed'))
    setting = record.get('setting')
    return TransferRun(path, task, config, metrics, seed, backbone_id,
                       (checkpoint, data, test) if checkpoint else None, run_setting(setting),
                       record.get('env'), data, test, batch_note(setting or {}))


def _drop_repeated_tests(runs: List[TransferRun], incomplete: List[Incomplete]):
    """Keep the first of several metrics.json of the same checkpoint, test data and test config.

    tools/evaluate.py re-tests a fine-tuned checkpoint into a folder of its own (below the
    fine-tuning run's, so found after it); counting both would count one run twice. A re-test
    with another evaluator or pipeline is another result: its own row.
    """
    kept, first = [], {}
    for run in runs:
        if run.tested in first:
            incomplete.append(Incomplete(run.path, 'transfer', 'not counted: same checkpoint, '
                                         f'test data and test config as {first[run.tested]}'))
            continue
        if run.tested:
            first[run.tested] = run.path
        kept.append(run)
    return kept
