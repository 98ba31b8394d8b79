"""Check dataset folders before a long run starts, so a wrong path fails in seconds, clearly."""
import os
import os.path as osp

from ..errors import UserError

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')


def _listing(folder, cache):
    if folder not in cache:
        try:
            cache[folder] = set(os.listdir(folder))
        except FileNotFoundError:
            cache[folder] = set()
    return cache[folder]


def _check_ann_file(ann_file, img_dir):
    if not osp.isfile(ann_file):
        raise UserError(f'annotation file {ann_file} does not exist')
    cache = {}
    with open(ann_file) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.strip().rsplit(' ', 1)
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                raise UserError(f'{ann_file}:{lineno}: expected "<relative image path> <label>", '
                                f'got {line.strip()!r}')
            path = osp.join(img_dir, parts[0])
            if osp.basename(path) not in _listing(osp.dirname(path), cache):
                raise UserError(f'{ann_file}:{lineno}: image {path} does not exist')


def _check_class_folders(img_dir):
    classes = sorted(e.name for e in os.scandir(img_dir) if e.is_dir())
    if not classes:
        raise UserError(f'{img_dir}: no class folders (expected {img_dir}/<class>/*.JPEG)')
    for name in classes:
        folder = osp.join(img_dir, name)
        if not any(f.lower().endswith(IMG_EXTENSIONS) for f in os.listdir(folder)):
            raise UserError(f'{folder}: class folder holds no images')


def check_classification_data(cfg) -> None:
    """Validate the ImageNet-style datasets of the train and val loaders.

    Both layouts mmpretrain reads are checked: ``meta/<split>.txt`` ann files (every line parses
    and names an existing image) and class folders (none empty). Other dataset types are left to
    their own loaders.
    """
    for loader in ('train_dataloader', 'val_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset')
        if not dataset or dataset.get('type') not in ('ImageNet', 'CustomDataset'):
            continue
        root = dataset.get('data_root', '')
        if root and not osp.isdir(root):
            raise UserError(f'{loader}: data_root {root} does not exist')
        split = dataset.get('split', '')
        prefix = dataset.get('data_prefix') or split
        prefix = prefix.get('img_path', '') if isinstance(prefix, dict) else prefix
        img_dir = osp.join(root, prefix)
        if not osp.isdir(img_dir):
            raise UserError(f'{loader}: image folder {img_dir} does not exist')
        ann_file = dataset.get('ann_file', '')
        if not ann_file and split and osp.isfile(osp.join(root, 'meta', f'{split}.txt')):
            ann_file = osp.join('meta', f'{split}.txt')
        if ann_file:
            _check_ann_file(osp.join(root, ann_file), img_dir)
        else:
            _check_class_folders(img_dir)
