"""Result tables: one row per setting, its seeds aggregated as mean ± std, Δ to a baseline.

A row is a backbone (pretraining setting + cycle, or a file) and, for transfer results, the
transfer config and what the transfer actually ran (resolved config hash, batch, world size),
the data it was tested on and its test config. Every value is in percent: top-1/top-5 and
mIoU/mAcc/aAcc as the evaluators give them, VOC AP (which mmdet gives as a fraction) times 100.
Means, stds and Δ are over pretraining seeds, each the mean of its transfer seeds
(:mod:`.stats`).
"""
import json
import math
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import UserError
from .runs import BackboneId, Incomplete
from .stats import compare, counts, means, unit_name, unit_of


@dataclass
class Table:
    name: str
    title: str
    columns: Dict[str, str]  # metric key -> column title of the headline table (mean ± std)
    delta: str  # the metric that gets a Δ column
    per_class: str = ''  # regex with groups (what, class) for per-class keys
    scale: float = 1.0  # metrics.json value -> percent
    cost: Dict[str, str] = field(default_factory=dict)  # key -> column title (mean over seeds)


TABLES = dict(
    cls=Table('classification', 'Classification (validation set of the pretraining run)',
              {'accuracy/top1': 'top-1', 'accuracy/top5': 'top-5'}, 'accuracy/top1',
              cost={'cost/device_hours': 'device-h', 'cost/teacher_images': 'teacher fwd'}),
    det=Table('detection', 'Detection (PascalVOC07 test: AP50 11-point, AP at IoU 0.50:0.95, AP75)',
              {'pascal_voc/AP50': 'AP50', 'pascal_voc/AP': 'AP', 'pascal_voc/AP75': 'AP75'},
              'pascal_voc/AP50', r'^pascal_voc/(AP50|AP75|AP)_(.+)$', 100.0),
    seg=Table('segmentation', 'Segmentation (PascalVOC)',
              {'mIoU': 'mIoU', 'mAcc': 'mAcc', 'aAcc': 'aAcc'}, 'mIoU', r'^(IoU)_(.+)$'),
)


@dataclass
class Row:
    backbone: BackboneId
    config: str  # transfer config name; '' for classification
    run_setting: Optional[str] = None  # the transfer's resolved config, batch, world size
    data: Optional[str] = None  # the transfer's test data
    test: Optional[str] = None  # the transfer's test config hash
    batch: str = ''  # how the transfer's batch differs from its recipe's
    runs: List[str] = field(default_factory=list)
    seeds: list = field(default_factory=list)  # per run: (pretraining, transfer) or pretraining
    values: Dict[str, list] = field(default_factory=lambda: defaultdict(list))  # (seed, value)
    units: Dict[str, Dict[tuple, List[float]]] = field(
        default_factory=lambda: defaultdict(dict))  # metric -> unit -> values of its runs

    @property
    def transfer(self) -> tuple:
        """What the transfer ran: rows compared with each other share it."""
        return (self.config, self.run_setting, self.data, self.test)

    def add(self, path: str, seed, metrics: Dict[str, float], scale: float) -> None:
        self.runs.append(path)
        self.seeds.append(seed)
        unit = unit_of(seed, path)
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.values[key].append((seed, value * scale))
                self.units[key].setdefault(unit, []).append(value * scale)

    def mean(self, key: str) -> Optional[float]:
        """Mean over pretraining seeds of each one's mean over its transfer seeds."""
        unit_means = means(self.units.get(key) or {})
        return statistics.mean(unit_means.values()) if unit_means else None

    def std(self, key: str) -> Optional[float]:
        """Sample std of the per-pretraining-seed means; None for fewer than two."""
        unit_means = list(means(self.units.get(key) or {}).values())
        return statistics.stdev(unit_means) if len(unit_means) > 1 else None

    def counts(self, key: str) -> str:
        return counts(self.units.get(key) or {}, transfers=bool(self.config))


def decoder(config: str) -> str:
    """The head family a transfer config is named after: 'deeplabv3', 'pspnet', 'fcn', ..."""
    return config.split('_')[0]


def _cost(meta: dict) -> Dict[str, float]:
    cost = meta.get('cost') or {}
    return {f'cost/{k}': cost[k] for k in ('device_hours', 'teacher_images', 'images')
            if isinstance(cost.get(k), (int, float))}


def _known(seed) -> bool:
    """Whether two runs with this seed are the same sample (the transfer seed is recorded)."""
    return seed is not None and not (isinstance(seed, tuple) and seed[1] is None)


def build_rows(pretrain_runs, transfer_runs, incomplete: List[Incomplete]) -> Dict[str, List[Row]]:
    """Group runs of the same setting (their seeds) into rows, per table.

    A second run of one setting with a seed already counted is the same sample again: it is
    listed in ``incomplete`` as a duplicate, not averaged in.
    """
    rows = {name: {} for name in TABLES}

    def add(table, key, path, kind, seed, metrics):
        row = rows[table].setdefault(key, Row(*key))
        if _known(seed) and seed in row.seeds:
            first = row.runs[row.seeds.index(seed)]
            if table == 'cls' and path == first:
                return  # another cycle of a run already counted: its own row
            incomplete.append(Incomplete(path, kind, f'not counted: duplicate of {first} '
                                         f'(same setting, seed {_seed_text(seed)})'))
            return
        row.add(path, seed, metrics, TABLES[table].scale)

    for run in pretrain_runs:
        for cycle, meta in sorted(run.backbones.items()):
            add('cls', (run.backbone_id(cycle), ''), run.path, 'pretrain', run.seed,
                {**(meta.get('val') or {}), **_cost(meta)})
    for run in transfer_runs:
        key = (run.backbone, run.config, run.run_setting, run.data, run.test, run.batch)
        add('det' if run.task == 'det' else 'seg', key, run.path, 'transfer', run.seed,
            run.metrics)
    return {name: list(table_rows.values()) for name, table_rows in rows.items()}


def _sd_label(sd: dict, rivals: List[dict]) -> str:
    """'T=3', with the SD settings that tell it from rivals of the same temperature."""
    parts = [f"T={sd['temperature']:g}"] if 'temperature' in sd else []
    parts += [f'{k}={sd[k]:g}' if isinstance(sd[k], float) else f'{k}={sd[k]}'
              for k in sorted(sd) if k != 'temperature'
              and any(r.get(k) != sd[k] for r in rivals)]
    return ' '.join(parts)


def backbone_labels(ids) -> Dict[BackboneId, str]:
    """Readable, distinct labels: 'resnet18_sd_tiny (SD T=3) cycle 4', 'r50.pth (1a2b3c4d)'.

    SD settings are named by their temperature; where two settings of one config share it, by
    the other settings that differ too. A fixed teacher is named by its model config and hash.
    Runs of one config that differ in what they actually ran (config hash, batch, world size)
    or in their data get that in brackets; a batch other than the recipe's is said too.
    """
    settings = {i.setting: i for i in ids}
    sd_of = {s: json.loads(i.sd) for s, i in settings.items() if i.config and i.sd is not None}
    names = {}
    for setting, ident in settings.items():
        sd = sd_of.get(setting)
        if not ident.config:
            names[setting] = f'{ident.file} ({ident.sha})'
        elif ident.plain:
            names[setting] = f"{ident.config} ({ident.schedule or 'baseline'})"
        elif ident.teacher == 'none':  # label smoothing, no teacher
            names[setting] = f'{ident.config} (label smoothing ε={ident.label_smoothing:g})'
        elif sd is not None and sd.get('kd_form') == 'pskd':
            names[setting] = f"{ident.config} (PS-KD α={sd['alpha']:g})"
        elif sd is not None and sd.get('kd_weight') == 0:
            names[setting] = f"{ident.config} (control: CE weight {sd['ce_weight']:.3g}, no KD)"
        else:
            rivals = [v for s, v in sd_of.items() if s[0] == ident.config
                      and v.get('temperature') == (sd or {}).get('temperature')]
            how = _sd_label(sd or {}, rivals)
            if (ident.teacher or '').startswith('file '):  # by its model and sha256[:8]
                teacher = f"KD from {ident.teacher_name} {ident.teacher.split()[-1][:8]}"
                names[setting] = f"{ident.config} ({', '.join(p for p in (teacher, how) if p)})"
            else:
                method = {'previous generation': 'born-again', 'EMA': (
                    f"EMA teacher m={(sd or {}).get('momentum', 0):g}")}.get(ident.teacher, 'SD')
                names[setting] = f"{ident.config} ({' '.join([method, how]).strip()})"
        if ident.generation is not None:
            names[setting] += f' gen {ident.generation}'
    # one config run two ways (other --cfg-options, batch or GPUs, other data): say which is which
    for attr, text in (('run_setting', '[{}]'), ('data', '[data: {}]')):
        groups = defaultdict(list)
        for setting in settings:
            groups[names[setting]].append(setting)
        for group in groups.values():
            if len({getattr(settings[s], attr) for s in group}) > 1:
                for setting in group:
                    names[setting] += ' ' + text.format(getattr(settings[setting], attr))
    for setting, ident in settings.items():
        if ident.batch:
            names[setting] += f' [{ident.batch}]'
    return {i: names[i.setting] + ('' if i.cycle is None else f' cycle {i.cycle}') for i in ids}


def setting_label(label: str, ident: BackboneId) -> str:
    return label if ident.cycle is None else label.rsplit(' cycle ', 1)[0]


@dataclass
class Baseline:
    """What Δ is measured against; ``note`` says it in words.

    By default every row is compared with its *matched* baseline (:meth:`reference`).
    ``--baseline`` names one setting (compared at each row's cycle) or one backbone instead.
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

    def reference(self, row: Row, rows: List[Row], labels) -> Tuple[Optional[Row], str]:
        """The row ``row`` is compared with, and why that one (or why none) where it was not
        the only candidate.

        The matched baseline is a backbone that never had a teacher, of the same architecture,
        depth, pretraining schedule and cycle, pretrained on the same data with the same total
        batch, world size and precision, and transferred the same way. Of several, the one of
        the same pretraining config wins, then the one sharing more of the row's seeds, then
        the one with more seeds.
        """
        same = [o for o in rows if o.transfer == row.transfer]
        if self.backbone is not None:
            found = [o for o in same if o.backbone == self.backbone]
            return (found[0] if len(found) == 1 else None), ''
        if self.setting is not None:
            found = [o for o in same if o.backbone.setting == self.setting
                     and o.backbone.cycle == row.backbone.cycle]
            return (found[0] if len(found) == 1 else None), ''
        ident = row.backbone
        if ident.plain:
            return row, ''
        if ident.family is None:
            return None, ''
        candidates = [o for o in same if o.backbone.plain and o.backbone.family == ident.family
                      and o.backbone.cycle == ident.cycle]
        fitting = [o for o in candidates if (o.backbone.run_shape, o.backbone.data) == (
            ident.run_shape, ident.data)]
        if not fitting:
            if not candidates:
                return None, ('no baseline: no backbone without a teacher of the same '
                              'architecture, depth, schedule and cycle, transferred the same way')
            return None, 'no baseline: ' + '; '.join(
                f'{labels[o.backbone]} was pretrained with {o.backbone.run_shape} on '
                f'{o.backbone.data or "unrecorded data"}' for o in candidates) + (
                f'; this backbone with {ident.run_shape} on {ident.data or "unrecorded data"}')
        mine = {unit_of(s, p) for s, p in zip(row.seeds, row.runs)}

        def preference(o):
            units = {unit_of(s, p) for s, p in zip(o.seeds, o.runs)}
            return (o.backbone.config == ident.config, len(units & mine), len(units))

        ranked = sorted(fitting, key=preference, reverse=True)
        if len(ranked) == 1:
            return ranked[0], ''
        best, others = preference(ranked[0]), [preference(o) for o in ranked[1:]]
        names = ', '.join(labels[o.backbone] for o in ranked[1:])
        if best == others[0]:
            tied = ', '.join(labels[o.backbone] for o in ranked if preference(o) == best)
            return None, (f'no baseline: {tied} fit equally (same config or not, seeds shared '
                          'and in all); name one with --baseline')
        if best[0] != others[0][0]:
            why = 'the same pretraining config as this backbone'
        elif best[1] != others[0][1]:
            why = f'shares {best[1]} of its seeds (the next best {others[0][1]})'
        else:
            why = f'has {best[2]} seeds (the next best {others[0][2]})'
        return ranked[0], f'baseline {labels[ranked[0].backbone]}, not {names}: {why}'


MATCHED_NOTE = ('Δ: difference to the matched baseline — a backbone that never had a teacher, of '
                'the same architecture, depth, pretraining schedule and cycle, pretrained on the '
                'same data with the same total batch, world size and precision, with the same '
                'transfer run — and its 95% interval. The unit is the pretraining seed: its '
                'transfer seeds are averaged, then the interval is Student\'s t over the per-seed '
                'differences where both rows have the seeds (paired; seeds only one side has are '
                'left out and named), Welch\'s t over the per-seed means otherwise (unpaired).')


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
            'interval over pretraining seeds (paired by seed where both rows have them, '
            'Welch\'s otherwise).')


def delta(row: Row, ref: Optional[Row], key: str) -> Optional[dict]:
    """Δ of ``key`` against ``ref`` (:func:`.stats.compare`); None without a reference."""
    if ref is None or ref is row:
        return None
    return compare(row.units.get(key) or {}, ref.units.get(key) or {})


def _delta_n(d: dict) -> str:
    return str(d['n']) if d['kind'] == 'paired' else '/'.join(map(str, d['n']))


def _dropped(d: dict) -> str:
    """'seed 2 (this row only)' for the units a paired Δ left out."""
    return ', '.join([f'{u} (this row only)' for u in d['dropped']['row']]
                     + [f'{u} (baseline only)' for u in d['dropped']['ref']])


def _seed_text(seed) -> str:
    return '/'.join(str(s) for s in seed) if isinstance(seed, tuple) else str(seed)


def flat_rows(rows: Dict[str, List[Row]], labels, baseline: Baseline) -> List[dict]:
    """Every (row, metric) as one flat record, for results.csv and results.json."""
    records = []
    for name, table in TABLES.items():
        for row in sort_rows(rows[name], labels, baseline):
            ref, why = baseline.reference(row, rows[name], labels)
            for key in sorted(row.values):
                d = delta(row, ref, key) or {}
                records.append(dict(
                    table=table.name, backbone=labels[row.backbone],
                    setting=setting_label(labels[row.backbone], row.backbone),
                    cycle=row.backbone.cycle, sd=row.backbone.sd, teacher=row.backbone.teacher,
                    config=row.config, run_setting=row.run_setting, test_data=row.data,
                    test_setting=row.test, decoder=decoder(row.config) if row.config else '',
                    metric=key, mean=row.mean(key), std=row.std(key),
                    n=len(row.units[key]), n_runs=len(row.values[key]), counts=row.counts(key),
                    delta=d.get('mean'), delta_low=d.get('low'), delta_high=d.get('high'),
                    delta_kind=d.get('kind'), delta_n=_delta_n(d) if d else None,
                    delta_dropped=_dropped(d) if d else None,
                    baseline=None if ref is None else labels[ref.backbone], baseline_note=why,
                    seeds=' '.join(_seed_text(s) for s in row.seeds), runs=' '.join(row.runs),
                    values=' '.join(f'{_seed_text(s)}={v:.6g}' for s, v in row.values[key])))
    return records


def sort_rows(rows: List[Row], labels, baseline: Baseline) -> List[Row]:
    """Grouped by backbone, the baselines' first; cycles in order; then transfer config."""
    def key(row):
        ident = row.backbone
        return (not baseline.is_reference(ident), setting_label(labels[ident], ident),
                ident.cycle or 0, row.config, row.run_setting or '', row.data or '',
                row.test or '')
    return sorted(rows, key=key)


def interval_text(d: dict) -> str:
    """``+1.23 [-0.50, +2.96]``, ``+1.00 exact`` (zero width), ``+1.23`` (no interval)."""
    text = f"{d['mean']:+.2f}"
    if d['low'] is None:
        return text
    if math.isclose(d['high'], d['low'], abs_tol=1e-9):
        return text + ' exact'
    return text + f" [{d['low']:+.2f}, {d['high']:+.2f}]"


def delta_cell(row: Row, ref: Optional[Row], key: str) -> str:
    """``+1.23 [-0.50, +2.96] paired n=3 backbones × 3``, and the seeds a pairing left out."""
    d = delta(row, ref, key)
    if d is None:
        return '–'
    units = row.units[key]
    if d['kind'] == 'paired':
        n = counts({u: units[u] for u in d['common']}, transfers=bool(row.config))
    else:
        n = f'{row.counts(key)} vs {ref.counts(key)}'
    dropped = _dropped(d)
    return f"{interval_text(d)} {d['kind']} n={n}" + (f', without {dropped}' if dropped else '')


def fmt(value: Optional[float], digits: int = 2) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def amount(value: Optional[float]) -> str:
    """Device-hours and image counts: three significant digits, k/M for large counts."""
    if value is None:
        return '–'
    for size, suffix in ((1e9, 'G'), (1e6, 'M'), (1e3, 'k')):
        if abs(value) >= size:
            return f'{value / size:.3g}{suffix}'
    return f'{value:.3g}'


@dataclass
class TextTable:
    """A table as cells of text, rendered as Markdown (report.md) or booktabs (report.tex)."""
    title: str
    header: List[str]
    body: List[List[str]]
    notes: List[str] = field(default_factory=list)
    lead: int = 1  # the first columns, which say what a row is
    level: int = 2  # Markdown heading level


def markdown(table: TextTable) -> List[str]:
    def cell(text):
        return str(text).replace('|', '\\|')
    lines = [f"{'#' * table.level} {table.title}", '',
             '| ' + ' | '.join(table.header) + ' |', '|' + '---|' * len(table.header)]
    lines += ['| ' + ' | '.join(cell(c) for c in cells) + ' |' for cells in table.body]
    return lines + [''] + [f'- {note}' for note in table.notes] + ([''] if table.notes else [])


def _lead(name: str, row: Row, labels, rows: List[Row]) -> List[str]:
    """The cells that say what a row is: backbone, and decoder and config for transfers (with
    what tells apart rows of one backbone and config: what the transfer ran, its test data or
    test config; and a batch other than the recipe's)."""
    if name == 'cls':
        return [labels[row.backbone]]
    config = row.config
    siblings = [o for o in rows if (o.backbone, o.config) == (row.backbone, row.config)]
    for attr, text in (('run_setting', '[{}]'), ('data', '[data: {}]'), ('test', '[test {}]')):
        if len({getattr(o, attr) for o in siblings}) > 1:
            config += ' ' + text.format(getattr(row, attr))
    if row.batch:
        config += f' [{row.batch}]'
    return [labels[row.backbone]] + ([decoder(row.config)] if name == 'seg' else []) + [config]


def headline_tables(rows: Dict[str, List[Row]], labels, baseline: Baseline) -> Dict[str, Tuple]:
    """The headline table of each task with results, and its per-class tables."""
    tables = {}
    for name, table in TABLES.items():
        if not rows[name]:
            continue
        ordered = sort_rows(rows[name], labels, baseline)
        lead = ['Backbone'] + {'cls': [], 'det': ['Config'], 'seg': ['Decoder', 'Config']}[name]
        header = lead + ['n'] + list(table.columns.values()) + list(table.cost.values())
        header.append(f'Δ {table.columns[table.delta]} [95% CI]')
        body, notes = [], []
        for row in ordered:
            cells = _lead(name, row, labels, ordered) + [row.counts(table.delta)]
            cells += [f'{fmt(row.mean(k))} ± {fmt(row.std(k))}' if row.mean(k) is not None
                      else '–' for k in table.columns]
            cells += [amount(row.mean(k)) for k in table.cost]
            ref, why = baseline.reference(row, rows[name], labels)
            cells.append('ref' if ref is row else delta_cell(row, ref, table.delta))
            body.append(cells)
            if why:
                notes.append(f"{' / '.join(_lead(name, row, labels, ordered))}: {why}")
        tables[name] = (TextTable(table.title, header, body, notes, len(lead)),
                        _per_class_tables(name, ordered, lead, labels))
    return tables


def _per_class_tables(name: str, rows: List[Row], lead: List[str], labels) -> List[TextTable]:
    """Per-class means (std and n are in results.csv), one table per kind (AP50, AP, IoU)."""
    pattern = TABLES[name].per_class
    columns = defaultdict(dict)  # kind -> {class: metric key}, classes in order of appearance
    for row in rows:
        for key in row.values:
            match = re.match(pattern, key) if pattern else None
            if match:
                columns[match.group(1)].setdefault(match.group(2), key)
    return [TextTable(f'{kind} per class (mean over seeds)', lead + list(classes),
                      [_lead(name, row, labels, rows) + [fmt(row.mean(key), 1)
                                                         for key in classes.values()]
                       for row in rows], lead=len(lead), level=3)
            for kind, classes in columns.items()]
