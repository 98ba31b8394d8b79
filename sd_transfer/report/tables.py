"""Result tables: one row per setting, its seeds aggregated as mean ± std, Δ to a baseline.

A row is a backbone (pretraining setting + cycle, or a file) and, for transfer results, the
transfer config and what the transfer actually ran (resolved config hash, batch, world size).
Every value is in percent: top-1/top-5 and mIoU/mAcc/aAcc as the evaluators give them, VOC AP
(which mmdet gives as a fraction) times 100. Δ comes with a 95% interval: over the per-seed
differences where the two rows have the same seeds (paired), Welch's otherwise (unpaired).
"""
import json
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from scipy import stats

from ..errors import UserError
from .runs import BackboneId, Incomplete


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
    run_setting: Optional[str] = None  # the transfer's resolved config, batch, world size
    runs: List[str] = field(default_factory=list)
    seeds: List[Optional[int]] = field(default_factory=list)
    values: Dict[str, List[float]] = field(default_factory=lambda: defaultdict(list))
    by_seed: Dict[str, Dict[int, float]] = field(default_factory=lambda: defaultdict(dict))

    def add(self, path: str, seed, metrics: Dict[str, float], scale: float) -> None:
        self.runs.append(path)
        self.seeds.append(seed)
        for key, value in metrics.items():
            if isinstance(value, (int, float)):
                self.values[key].append(value * scale)
                if seed is not None:
                    self.by_seed[key][seed] = value * scale

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


def build_rows(pretrain_runs, transfer_runs, incomplete: List[Incomplete]) -> Dict[str, List[Row]]:
    """Group runs of the same setting (their seeds) into rows, per table.

    A second run of one setting with a seed already counted is the same sample again: it is
    listed in ``incomplete`` as a duplicate, not averaged in.
    """
    rows = {name: {} for name in TABLES}

    def add(table, backbone, config, setting, path, kind, seed, metrics):
        row = rows[table].setdefault((backbone, config, setting), Row(backbone, config, setting))
        if seed is not None and seed in row.seeds:
            first = row.runs[row.seeds.index(seed)]
            if table == 'cls' and path == first:
                return  # another cycle of a run already counted: its own row
            incomplete.append(Incomplete(path, kind, f'not counted: duplicate of {first} '
                                         f'(same setting, seed {seed})'))
            return
        row.add(path, seed, metrics, TABLES[table].scale)

    for run in pretrain_runs:
        for cycle, meta in sorted(run.backbones.items()):
            add('cls', run.backbone_id(cycle), '', None, run.path, 'pretrain', run.seed,
                meta.get('val') or {})
    for run in transfer_runs:
        table = 'det' if run.task == 'det' else 'seg'
        add(table, run.backbone, run.config, run.run_setting, run.path, 'transfer', run.seed,
            run.metrics)
    return {name: list(table_rows.values()) for name, table_rows in rows.items()}


def backbone_labels(ids) -> Dict[BackboneId, str]:
    """Readable, distinct labels: 'resnet18_sd_tiny (SD T=3) cycle 4', 'r50.pth (1a2b3c4d)'.

    SD settings are named by their temperature; where two settings of one config share it, by
    the other settings that differ too; runs of one config that differ in what they actually ran
    get that (config hash, batch, world size) in brackets.
    """
    settings = {i.setting: i for i in ids}
    sd_of = {s: json.loads(i.sd) for s, i in settings.items() if i.config and i.sd is not None}
    names = {}
    for setting, ident in settings.items():
        if not ident.config:
            names[setting] = f'{ident.file} ({ident.sha})'
        elif ident.sd is None:
            names[setting] = f'{ident.config} (baseline)'
        elif sd_of[setting].get('kd_weight') == 0:
            names[setting] = (f"{ident.config} (control: CE weight "
                              f"{sd_of[setting]['ce_weight']:.3g}, no KD)")
        else:
            sd = sd_of[setting]
            rivals = [v for s, v in sd_of.items() if s[0] == ident.config
                      and v.get('temperature') == sd.get('temperature')]
            parts = [f"T={sd['temperature']:g}"] if 'temperature' in sd else []
            parts += [f'{k}={sd[k]:g}' if isinstance(sd[k], float) else f'{k}={sd[k]}'
                      for k in sorted(sd) if k != 'temperature'
                      and any(r.get(k) != sd[k] for r in rivals)]
            names[setting] = f"{ident.config} ({' '.join(['SD'] + parts)})"
        if ident.generation is not None:
            names[setting] += f' gen {ident.generation}'
    # one config run two ways (other --cfg-options, batch or GPUs): say which is which
    shared = [setting for setting, ident in settings.items()
              if ident.config and list(names.values()).count(names[setting]) > 1]
    for setting in shared:
        names[setting] += f' [{settings[setting].run_setting}]'
    return {i: names[i.setting] + ('' if i.cycle is None else f' cycle {i.cycle}') for i in ids}


def setting_label(label: str, ident: BackboneId) -> str:
    return label if ident.cycle is None else label.rsplit(' cycle ', 1)[0]


@dataclass
class Baseline:
    """What Δ is measured against; ``note`` says it in words.

    By default every row is compared with its *matched* baseline: the backbone trained without
    a teacher (no SD, or born-again generation 1) of the same architecture, depth, pretraining
    schedule and cycle, transferred with the same transfer run. ``--baseline`` names one setting
    (compared at each row's cycle) or one backbone instead.
    """
    setting: Optional[tuple] = None  # compare with this setting at the row's own cycle ...
    backbone: Optional[BackboneId] = None  # ... or with this one backbone
    note: str = ''

    @property
    def matched(self) -> bool:
        return self.setting is None and self.backbone is None

    def is_reference(self, ident: BackboneId) -> bool:
        if self.matched:
            return ident.plain
        return ident == self.backbone or ident.setting == self.setting

    def reference(self, row: Row, rows: List[Row]) -> Optional[Row]:
        same = [o for o in rows if (o.config, o.run_setting) == (row.config, row.run_setting)]
        if self.backbone is not None:
            found = [o for o in same if o.backbone == self.backbone]
        elif self.setting is not None:
            found = [o for o in same if o.backbone.setting == self.setting
                     and o.backbone.cycle == row.backbone.cycle]
        elif row.backbone.plain:
            return row
        else:
            found = [o for o in same if o.backbone.plain and row.backbone.family is not None
                     and o.backbone.family == row.backbone.family
                     and o.backbone.cycle == row.backbone.cycle]
        return found[0] if len(found) == 1 else None


MATCHED_NOTE = ('Δ: difference to the matched baseline — the backbone without a teacher (no SD, '
                'or born-again generation 1) of the same architecture, depth, pretraining schedule '
                'and cycle, with the same transfer run — and its 95% interval: over the per-seed '
                'differences where both rows have the same seeds (paired), Welch\'s t otherwise '
                '(unpaired).')


def choose_baseline(labels: Dict[BackboneId, str], name: Optional[str]) -> Baseline:
    """``--baseline`` NAME (a backbone label, with or without ' cycle k', or a pretraining
    config name), else each row's matched baseline."""
    if name is None:
        return Baseline(note=MATCHED_NOTE)
    settings = {}
    for ident, label in labels.items():
        settings.setdefault(ident.setting, (setting_label(label, ident), ident))
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
    return (f'Δ: difference to the baseline `{label}`{where}, same transfer run, with its 95% '
            'interval (paired by seed where both rows have the same seeds, Welch\'s otherwise).')


def delta(row: Row, ref: Optional[Row], key: str) -> Optional[dict]:
    """Δ of ``key``'s mean against ``ref``: mean, 95% interval (``low``/``high``, None for too
    few runs), ``kind`` (paired/unpaired) and ``n`` (pairs, or runs of each row)."""
    if ref is None or ref is row or not row.values.get(key) or not ref.values.get(key):
        return None
    a, b = row.values[key], ref.values[key]
    seeds_a, seeds_b = row.by_seed.get(key, {}), ref.by_seed.get(key, {})
    half = None
    if seeds_a and set(seeds_a) == set(seeds_b) and len(seeds_a) == len(a) == len(b):
        diffs = [seeds_a[s] - seeds_b[s] for s in sorted(seeds_a)]
        mean, kind, n = statistics.mean(diffs), 'paired', str(len(diffs))
        if len(diffs) > 1:
            half = stats.t.ppf(0.975, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(
                len(diffs))
    else:
        mean, kind, n = statistics.mean(a) - statistics.mean(b), 'unpaired', f'{len(a)}/{len(b)}'
        if len(a) > 1 and len(b) > 1:
            va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
            half = 0.0
            if va + vb > 0:  # Welch-Satterthwaite degrees of freedom
                df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
                half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    return dict(mean=mean, low=None if half is None else mean - half,
                high=None if half is None else mean + half, kind=kind, n=n)


def flat_rows(rows: Dict[str, List[Row]], labels, baseline: Baseline) -> List[dict]:
    """Every (row, metric) as one flat record, for results.csv and results.json."""
    records = []
    for name, table in TABLES.items():
        for row in sort_rows(rows[name], labels, baseline):
            ref = baseline.reference(row, rows[name])
            for key in sorted(row.values):
                d = delta(row, ref, key) or {}
                records.append(dict(
                    table=table.name, backbone=labels[row.backbone],
                    setting=setting_label(labels[row.backbone], row.backbone),
                    cycle=row.backbone.cycle, sd=row.backbone.sd, config=row.config,
                    run_setting=row.run_setting,
                    decoder=decoder(row.config) if row.config else '', metric=key,
                    mean=row.mean(key), std=row.std(key), n=len(row.values[key]),
                    delta=d.get('mean'), delta_low=d.get('low'), delta_high=d.get('high'),
                    delta_kind=d.get('kind'), delta_n=d.get('n'),
                    baseline=None if ref is None else labels[ref.backbone],
                    seeds=' '.join(str(s) for s in row.seeds), runs=' '.join(row.runs)))
    return records


def sort_rows(rows: List[Row], labels, baseline: Baseline) -> List[Row]:
    """Grouped by backbone, the baselines' first; cycles in order; then transfer config."""
    def key(row):
        ident = row.backbone
        return (not baseline.is_reference(ident), setting_label(labels[ident], ident),
                ident.cycle or 0, row.config, row.run_setting or '')
    return sorted(rows, key=key)


def delta_cell(d: Optional[dict]) -> str:
    """``+1.23 [-0.50, +2.96] paired n=3``."""
    if d is None:
        return '–'
    text = f"{d['mean']:+.2f}"
    if d['low'] is not None:
        text += f" [{d['low']:+.2f}, {d['high']:+.2f}]"
    return f"{text} {d['kind']} n={d['n']}"


def _fmt(value: Optional[float], digits: int = 2) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def _cell(text) -> str:
    return str(text).replace('|', '\\|')


def _markdown_table(header: List[str], body: List[List]) -> List[str]:
    lines = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    lines += ['| ' + ' | '.join(_cell(c) for c in cells) + ' |' for cells in body]
    return lines


def _lead(name: str, row: Row, labels, rows: List[Row]) -> List[str]:
    """The cells that say what a row is: backbone, and decoder and config for transfers (with
    what the transfer ran, where one backbone was transferred with one config two ways)."""
    if name == 'cls':
        return [labels[row.backbone]]
    config = row.config
    if sum((o.backbone, o.config) == (row.backbone, row.config) for o in rows) > 1:
        config += f' [{row.run_setting}]'
    return [labels[row.backbone]] + ([decoder(row.config)] if name == 'seg' else []) + [config]


def markdown_tables(rows: Dict[str, List[Row]], labels, baseline: Baseline) -> List[str]:
    """The headline table of each task with results, and its per-class tables below it."""
    lines = []
    for name, table in TABLES.items():
        if not rows[name]:
            continue
        ordered = sort_rows(rows[name], labels, baseline)
        lead = ['Backbone'] + {'cls': [], 'det': ['Config'], 'seg': ['Decoder', 'Config']}[name]
        header = lead + ['n'] + list(table.columns.values())
        header.append(f'Δ {table.columns[table.delta]} [95% CI]')
        body = []
        for row in ordered:
            cells = _lead(name, row, labels, ordered) + [len(row.values.get(table.delta, []))]
            cells += [f'{_fmt(row.mean(k))} ± {_fmt(row.std(k))}' if row.mean(k) is not None
                      else '–' for k in table.columns]
            ref = baseline.reference(row, rows[name])
            cells.append('ref' if ref is row else delta_cell(delta(row, ref, table.delta)))
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
        body = [_lead(name, row, labels, rows) + [_fmt(row.mean(key), 1)
                                                  for key in classes.values()]
                for row in rows]
        lines += [f'### {kind} per class (mean over seeds)', '',
                  *_markdown_table(lead + list(classes), body), '']
    return lines
