"""Image loading that names a broken file instead of crashing (or silently training on grey).

mmcv's ``LoadImageFromFile`` fails on an undecodable file with a bare assertion deep inside a
dataloader worker, and OpenCV decodes a *truncated* JPEG without any error, filling the missing
part with grey. The CLIs swap in :class:`CheckedLoadImageFromFile` for every pipeline (same
arguments). Only what is broken is rejected: bytes after a JPEG's end-of-image marker (camera
trailers, padding), progressive, CMYK and grayscale JPEGs, and a PNG named ``.JPEG`` (as in
ImageNet) all load.

With ``--skip-bad-images`` a broken training image is skipped (mmengine draws another sample)
and listed in ``WORK_DIR/skipped_images.txt``; validation and test sets cannot skip inside the
loop (mmengine requires every test sample, and dropping one on one rank would misalign the
results gathered from all ranks), so their broken files are found by the first process when the
dataset is built and left out of it on every rank. :class:`SkippedImagesHook` logs the counts.
"""
import os
import os.path as osp
import re
from concurrent.futures import ThreadPoolExecutor

import mmcv
from mmengine import fileio
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.dist import broadcast_object_list, is_main_process
from mmengine.registry import DATASETS, HOOKS, TRANSFORMS
from mmcv.transforms import LoadImageFromFile

from ..errors import UserError

SKIP_LOG = 'skipped_images.txt'
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])  # markers without a length
# In entropy-coded data a 0xFF is followed by 0x00 (stuffing), a restart marker or more 0xFF
# (fill): the first 0xFF followed by anything else starts the next marker.
_NEXT_MARKER = re.compile(rb'\xff[^\x00\xd0-\xd7\xff]')


def _jpeg_complete(data: bytes) -> bool:
    """Whether the JPEG's segments and scans run up to an end-of-image marker.

    Walks the marker segments (each carries its length) and skips each scan's entropy-coded
    data, where a 0xFF byte is always followed by 0x00 (stuffing) or a restart marker. Whatever
    follows the end-of-image marker is ignored; an EXIF thumbnail's own end marker sits inside
    the APP1 segment and is skipped with it.
    """
    pos, end = 2, len(data)
    while pos + 1 < end:
        if data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:
            return True
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 4 > end:
            return False
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], 'big')
        if marker == 0xDA:  # start of scan: entropy-coded data up to the next marker
            found = _NEXT_MARKER.search(data, pos)
            if found is None:
                return False
            pos = found.start()
    return False


def image_problem(data: bytes):
    """Why ``data`` is not a complete image, or ``None``. Cheap: the bytes are read anyway."""
    if not data:
        return 'empty file'
    if data[:3] == b'\xff\xd8\xff' and not _jpeg_complete(data):
        return 'truncated JPEG (no end-of-image marker after its last scan)'
    if data[:8] == b'\x89PNG\r\n\x1a\n' and b'IEND' not in data:
        return 'truncated PNG (no IEND chunk)'
    return None


@TRANSFORMS.register_module()
class CheckedLoadImageFromFile(LoadImageFromFile):
    """``LoadImageFromFile`` that raises a :class:`UserError` naming a broken file.

    With ``skip_bad=True`` the broken image is logged, appended to ``skip_log`` and skipped (the
    dataset then draws another sample, as mmengine does for a pipeline that returns ``None``).
    """

    def __init__(self, *args, skip_bad: bool = False, skip_log: str = '', **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_bad = skip_bad
        self.skip_log = skip_log

    def transform(self, results: dict):
        filename = results['img_path']
        try:
            data = fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError:
            return self._bad(filename, 'file not found')
        problem = image_problem(data)
        img = None
        if problem is None:
            img = mmcv.imfrombytes(data, flag=self.color_type, backend=self.imdecode_backend)
            if img is None:
                problem = 'cannot be decoded as an image'
        if problem is not None:
            return self._bad(filename, problem)
        if self.to_float32:
            img = img.astype('float32')
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _bad(self, filename, problem):
        if not self.skip_bad:
            raise UserError(f'{filename}: {problem} (use --skip-bad-images to skip such files)')
        print_log(f'skipping {filename}: {problem}', logger='current', level=30)
        if self.skip_log:
            record_skipped(self.skip_log, filename, problem, 'train')
        return None


def record_skipped(log_file: str, filename: str, problem: str, split: str) -> None:
    # One short append per file: whole lines even with several workers and ranks writing.
    os.makedirs(osp.dirname(osp.abspath(log_file)), exist_ok=True)
    with open(log_file, 'a') as f:
        f.write(f'{split}\t{filename}\t{problem}\n')


def read_skipped(log_file: str) -> dict:
    """``{split: {file: problem}}`` from ``skip_log`` (each file once)."""
    skipped = {}
    if osp.isfile(log_file):
        with open(log_file) as f:
            for line in f:
                parts = line.rstrip('\n').split('\t')
                if len(parts) == 3:
                    skipped.setdefault(parts[0], {})[parts[1]] = parts[2]
    return skipped


def _leaf_datasets(node):
    """The dataset configs under dataset wrappers (ConcatDataset, RepeatDataset, ...)."""
    if isinstance(node.get('datasets'), (list, tuple)):
        for child in node['datasets']:
            yield from _leaf_datasets(child)
    elif isinstance(node.get('dataset'), dict):
        yield from _leaf_datasets(node['dataset'])
    else:
        yield node


def _file_problem(path: str):
    try:
        with open(path, 'rb') as f:
            return image_problem(f.read())
    except OSError as e:
        return f'unreadable ({e.strerror})'


def exclude_bad_eval_images(cfg, log_file: str, loaders):
    """Leave broken images out of the val/test ``loaders``' datasets, as the first process finds.

    Each dataset is wrapped in :func:`without_bad_images`, so the images are checked when the
    Runner builds the dataset: by then the process group exists for every launcher (on GPU
    mmengine creates it in ``Runner.__init__``), and all ranks can take the first one's list.
    """
    leaves = {}
    for loader in loaders:
        loader_cfg = cfg.get(loader)
        if loader_cfg and loader_cfg.get('dataset'):
            for node in _leaf_datasets(loader_cfg['dataset']):
                leaves.setdefault(id(node), (node, loader))
    for node, loader in leaves.values():
        inner = dict(node)
        node.clear()
        node.update(type='WithoutBadImages', dataset=inner, loader=loader, log_file=log_file)


@DATASETS.register_module(name='WithoutBadImages')
def without_bad_images(dataset: dict, loader: str, log_file: str):
    """``dataset`` built, without the images the first process found broken.

    Every rank must evaluate the same images: mmengine gathers the ranks' results by position,
    so a rank that left out another image (a transient read error on one node) would make the
    metric count some images twice. Reads every image once (not decoded: structure only); a
    file that passes this but still cannot be decoded stops the run with its name.
    """
    built = DATASETS.build(dataset)
    keep = [_good_indices(built, loader, log_file) if is_main_process() else None]
    broadcast_object_list(keep)
    if keep[0] is not None:
        built.get_subset_(keep[0])
    return built


def _good_indices(dataset, loader: str, log_file: str):
    paths = [dataset.get_data_info(i).get('img_path') for i in range(len(dataset))]
    if not all(paths):
        return None  # images held in memory (CIFAR): nothing to read
    print_log(f'--skip-bad-images: checking the {len(paths)} images of {loader} '
              f'({type(dataset).__name__})', logger='current')
    with ThreadPoolExecutor(8) as pool:
        problems = list(pool.map(_file_problem, paths))
    bad = [(path, why) for path, why in zip(paths, problems) if why]
    if not bad:
        return None
    for path, why in bad:
        print_log(f'skipping {path}: {why}', logger='current', level=30)
        record_skipped(log_file, path, why, loader.split('_')[0])
    print_log(f'--skip-bad-images: {len(bad)} of {len(paths)} images of {loader} left out',
              logger='current', level=30)
    return [i for i, why in enumerate(problems) if not why]


@HOOKS.register_module()
class SkippedImagesHook(Hook):
    """Log how many broken images were skipped, per split, after each epoch and at the end."""

    def __init__(self, log_file: str):
        self.log_file = log_file

    def _report(self, runner, when: str) -> None:
        skipped = read_skipped(self.log_file)
        if skipped:
            counts = ', '.join(f'{len(files)} in {split}' for split, files in skipped.items())
            runner.logger.warning(f'skipped images {when}: {counts} (listed in {self.log_file})')

    def after_train_epoch(self, runner) -> None:
        self._report(runner, f'up to epoch {runner.epoch + 1}')

    def after_run(self, runner) -> None:
        self._report(runner, 'in total')
