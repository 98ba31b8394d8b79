"""Result tables: one row per setting, its seeds aggregated as mean ± std, Δ to a baseline.

A row is a backbone (pretraining setting + cycle, or a file) and, for transfer results, the
transfer config. Every value is in percent: top-1/top-5 and mIoU/mAcc/aAcc as the evaluators give
them, VOC AP (which mmdet gives as a fraction) times 100.
"""
import json
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ..errors import UserError
from .runs import BackboneId


@dataclass
class Table:
    name: str
    title: str
    columns: Dict[str, str]  # metric key -> column title of the headline table
    delta: str  # the metric that gets a Δ column
    per_class: str = ''  # regex with groups (what, class) for per-class keys
    scale: float = 1.0  # metrics.json value -> percent


TABLES = dict(
    cls=Table('classification', 'Classification (validation set of the pretraining run)',
              {'accuracy/top1': 'top-1', 'accuracy/top5': 'top-5'}, 'accuracy/top1'),
    det=Table('detection', 'Detection (PascalVOC mAP at IoU 0.5)',
              {'pascal_voc/mAP': 'mAP'}, 'pascal_voc/mAP', r'^pascal_voc/(AP\d+)_(.+)$', 100.0),
    seg=Table('segmentation', 'Segmentation (PascalVOC)',
              {'mIoU': 'mIoU', 'mAcc': 'mAcc', 'aAcc': 'aAcc'}, 'mIoU', r'^(IoU)_(.+)$'),
)


@dataclass
class Row:
    backbone: BackboneId
    config: str  # transfer config name; '' for classification
    runs: List[str] = field(default_factory=list)
    seeds: List[Optional[int]] = field(default_factory=list)
    values: Dict[str, List[float]] = field(default_factory=lambda: defaultdict(list))

    def add(self, path: str, seed, metrics: Dict[str, float], scale: float) -> None:
        self.runs.append(path)
        self.seeds.append(seed)
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                self.values[key].append(value * scale)

    def mean(self, key: str) -> Optional[float]:
        values = self.values.get(key)
        return statistics.mean(values) if values else None

    def std(self, key: str) -> Optional[float]:
        """Sample standard deviation over seeds; None for fewer than two."""
        values = self.values.get(key) or []
        return statistics.stdev(values) if len(values) > 1 else None


def decoder(config: str) -> str:
    """The head family a transfer config is named after: 'deeplabv3', 'pspnet', 'fcn', ..."""
    return config.split('_')[0]


def build_rows(pretrain_runs, transfer_runs) -> Dict[str, List[Row]]:
    """Group runs of the same setting (their seeds) into rows, per table."""
    rows = {name: {} for name in TABLES}

    def row(table: str, backbone: BackboneId, config: str) -> Row:
        return rows[table].setdefault((backbone, config), Row(backbone, config))

    for run in pretrain_runs:
        for cycle, meta in sorted(run.backbones.items()):
            row('cls', run.backbone_id(cycle), '').add(run.path, run.seed, meta.get('val') or {},
                                                       TABLES['cls'].scale)
    for run in transfer_runs:
        table = 'det' if run.task == 'det' else 'seg'
        row(table, run.backbone, run.config).add(run.path, run.seed, run.metrics,
                                                 TABLES[table].scale)
    return {name: list(table_rows.values()) for name, table_rows in rows.items()}


def backbone_labels(ids) -> Dict[BackboneId, str]:
    """Readable, distinct labels: 'resnet18_sd_tiny (SD T=3) cycle 4', 'r50.pth (1a2b3c4d)'.

    SD settings are named by their temperature; where two settings of one config share it, by
    the other settings that differ too.
    """
    settings = {i.setting: i for i in ids}
    sd_of = {s: json.loads(i.sd) for s, i in settings.items() if i.config and i.sd is not None}
    names = {}
    for setting, ident in settings.items():
        if not ident.config:
            names[setting] = f'{ident.file} ({ident.sha})'
        elif ident.sd is None:
            names[setting] = f'{ident.config} (baseline)'
        else:
            sd = sd_of[setting]
            rivals = [v for s, v in sd_of.items() if s[0] == ident.config
                      and v.get('temperature') == sd.get('temperature')]
            parts = [f"T={sd['temperature']:g}"] if 'temperature' in sd else []
            parts += [f'{k}={sd[k]:g}' if isinstance(sd[k], float) else f'{k}={sd[k]}'
                      for k in sorted(sd) if k != 'temperature'
                      and any(r.get(k) != sd[k] for r in rivals)]
            names[setting] = f"{ident.config} ({' '.join(['SD'] + parts)})"
    return {i: names[i.setting] + ('' if i.cycle is None else f' cycle {i.cycle}') for i in ids}


def setting_label(label: str, ident: BackboneId) -> str:
    return label if ident.cycle is None else label.rsplit(' cycle ', 1)[0]


@dataclass
class Baseline:
    """What Δ is measured against; ``note`` says it in words (or why there is no Δ)."""
    setting: Optional[tuple] = None  # compare with this setting at the row's own cycle ...
    backbone: Optional[BackboneId] = None  # ... or with this one backbone
    note: str = ''

    @property
    def active(self) -> bool:
        return self.setting is not None or self.backbone is not None

    def reference(self, row: Row, rows: List[Row]) -> Optional[Row]:
        for other in rows:
            if other.config != row.config:
                continue
            if self.backbone is not None and other.backbone == self.backbone:
                return other
            if self.setting is not None and other.backbone.setting == self.setting and (
                    other.backbone.cycle == row.backbone.cycle):
                return other
        return None


def choose_baseline(labels: Dict[BackboneId, str], name: Optional[str]) -> Baseline:
    """``--baseline`` NAME (a backbone label, with or without ' cycle k', or a pretraining
    config name), else the one pretraining setting without SD."""
    settings = {}
    for ident, label in labels.items():
        settings.setdefault(ident.setting, (setting_label(label, ident), ident))
    if name is None:
        plain = [(label, i) for label, i in settings.values() if i.config and i.sd is None]
        if len(plain) != 1:
            why = ('no backbone without SD was found' if not plain else 'several backbones '
                   f"without SD: {', '.join(sorted(label for label, _ in plain))}")
            return Baseline(note=f'No Δ column: {why}; name the baseline with --baseline.')
        label, ident = plain[0]
        return Baseline(setting=ident.setting, note=_note(label, ident.cycle is not None))
    for ident, label in labels.items():
        if label == name:
            return Baseline(backbone=ident, note=_note(label, False))
    matches = [(label, i) for label, i in settings.values() if name in (label, i.config)]
    if len(matches) == 1:
        label, ident = matches[0]
        return Baseline(setting=ident.setting, note=_note(label, ident.cycle is not None))
    known = '; '.join(sorted(label for label, _ in settings.values())) or 'none'
    raise UserError(f"--baseline '{name}': {'ambiguous' if matches else 'no such backbone'} "
                    f'(backbones found: {known}; add " cycle K" for one cycle)')


def _note(label: str, same_cycle: bool) -> str:
    where = ' at the same cycle' if same_cycle else ''
    return f'Δ: difference of means to the baseline `{label}`{where}, same transfer config.'


def flat_rows(rows: Dict[str, List[Row]], labels, baseline: Baseline) -> List[dict]:
    """Every (row, metric) as one flat record, for results.csv and results.json."""
    records = []
    for name, table in TABLES.items():
        for row in sort_rows(rows[name], labels, baseline):
            ref = baseline.reference(row, rows[name])
            for key in sorted(row.values):
                records.append(dict(
                    table=table.name, backbone=labels[row.backbone],
                    setting=setting_label(labels[row.backbone], row.backbone),
                    cycle=row.backbone.cycle, sd=row.backbone.sd, config=row.config,
                    decoder=decoder(row.config) if row.config else '', metric=key,
                    mean=row.mean(key), std=row.std(key), n=len(row.values[key]),
                    delta=_delta(row, ref, key),
                    baseline=None if ref is None else labels[ref.backbone],
                    seeds=' '.join(str(s) for s in row.seeds), runs=' '.join(row.runs)))
    return records


def _delta(row: Row, ref: Optional[Row], key: str) -> Optional[float]:
    if ref is None or row.mean(key) is None or ref.mean(key) is None:
        return None
    return row.mean(key) - ref.mean(key)


def sort_rows(rows: List[Row], labels, baseline: Baseline) -> List[Row]:
    """Grouped by backbone, the baseline's first; cycles in order; then transfer config."""
    def key(row):
        ident = row.backbone
        is_baseline = ident == baseline.backbone or ident.setting == baseline.setting
        return (not is_baseline, setting_label(labels[ident], ident), ident.cycle or 0, row.config)
    return sorted(rows, key=key)


def _fmt(value: Optional[float], digits: int = 2, sign: bool = False) -> str:
    if value is None:
        return '–'
    return f'{value:+.{digits}f}' if sign else f'{value:.{digits}f}'


def _cell(text) -> str:
    return str(text).replace('|', '\\|')


def _markdown_table(header: List[str], body: List[List]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_cell(c) for c in cells) + ' |' for cells in body]
    return lines


def _lead(name: str, row: Row, labels) -> List[str]:
    """The cells that say what a row is: backbone, and decoder and config for transfers."""
    if name == 'cls':
        return [labels[row.backbone]]
    return [labels[row.backbone]] + ([decoder(row.config)] if name == 'seg' else []) + [row.config]


def markdown_tables(rows: Dict[str, List[Row]], labels, baseline: Baseline) -> List[str]:
    """The headline table of each task with results, and its per-class tables below it."""
    lines = []
    for name, table in TABLES.items():
        if not rows[name]:
            continue
        ordered = sort_rows(rows[name], labels, baseline)
        lead = ['Backbone'] + {'cls': [], 'det': ['Config'], 'seg': ['Decoder', 'Config']}[name]
        header = lead + ['n'] + list(table.columns.values())
        if baseline.active:
            header.append(f'Δ {table.columns[table.delta]}')
        body = []
        for row in ordered:
            cells = _lead(name, row, labels) + [len(row.values.get(table.delta, []))]
            cells += [f'{_fmt(row.mean(k))} ± {_fmt(row.std(k))}' if row.mean(k) is not None
                      else '–' for k in table.columns]
            if baseline.active:
                ref = baseline.reference(row, rows[name])
                cells.append('ref' if ref is row else
                             _fmt(_delta(row, ref, table.delta), sign=True))
            body.append(cells)
        lines += [f'## {table.title}', '', *_markdown_table(header, body), '']
        lines += _per_class_tables(name, ordered, lead, labels)
    return lines


def _per_class_tables(name: str, rows: List[Row], lead: List[str], labels) -> List[str]:
    """Per-class means (std and n are in results.csv), one table per kind (AP50, IoU)."""
    pattern = TABLES[name].per_class
    columns = defaultdict(dict)  # kind -> {class: metric key}, classes in order of appearance
    for row in rows:
        for key in row.values:
            match = re.match(pattern, key) if pattern else None
            if match:
                columns[match.group(1)].setdefault(match.group(2), key)
    lines = []
    for kind, classes in columns.items():
        body = [_lead(name, row, labels) + [_fmt(row.mean(key), 1) for key in classes.values()]
                for row in rows]
        lines += [f'### {kind} per class (mean over seeds)', '',
                  *_markdown_table(lead + list(classes), body), '']
    return lines
