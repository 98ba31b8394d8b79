"""Check dataset folders before a long run starts, so a wrong path fails in seconds, clearly."""
import os
import os.path as osp
import xml.etree.ElementTree as ET

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


def _check_cifar(loader, dataset):
    from .cifar import LocalCIFAR10, LocalCIFAR100
    cls = {'LocalCIFAR10': LocalCIFAR10, 'LocalCIFAR100': LocalCIFAR100}[dataset['type']]
    folder = osp.join(dataset.get('data_root', ''), dataset.get('data_prefix') or '',
                      cls.base_folder)
    for name, _ in cls.train_list + cls.test_list:
        if not osp.isfile(osp.join(folder, name)):
            raise UserError(f'{loader}: {osp.join(folder, name)} does not exist (expected the '
                            f'unpacked {cls.filename} in {folder})')


def check_classification_data(cfg) -> None:
    """Validate the ImageNet-style and CIFAR datasets of the train and val loaders.

    Both layouts mmpretrain's ImageNet reads are checked: ``meta/<split>.txt`` ann files (every
    line parses and names an existing image) and class folders (none empty); CIFAR's unpacked
    batch files must exist. Other dataset types are left to their own loaders.
    """
    for loader in ('train_dataloader', 'val_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset')
        kind = dataset and dataset.get('type')
        if kind not in ('ImageNet', 'CustomDataset', 'LocalCIFAR10', 'LocalCIFAR100'):
            continue
        root = dataset.get('data_root', '')
        if root and not osp.isdir(root):
            raise UserError(f'{loader}: data_root {root} does not exist')
        if kind.startswith('LocalCIFAR'):
            _check_cifar(loader, dataset)
            continue
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


def _number(node, tag, xml_path):
    child = node.find(tag) if node is not None else None
    try:
        return float(child.text)
    except (AttributeError, TypeError, ValueError):
        raise UserError(f'{xml_path}: missing or non-numeric <{tag}>') from None


def check_voc_annotation(xml_path: str, classes) -> None:
    """One VOC XML: size, and per object a known class and a bndbox inside the image.

    mmdet's ``VOCDataset`` silently drops objects of unknown classes and crashes on a missing
    ``bndbox`` with an AttributeError; a box outside the image trains on garbage.
    """
    try:
        root = ET.parse(xml_path).getroot()
    except (ET.ParseError, OSError) as e:
        raise UserError(f'{xml_path}: not a readable VOC annotation ({e})') from None
    width = _number(root.find('size'), 'width', xml_path)
    height = _number(root.find('size'), 'height', xml_path)
    for i, obj in enumerate(root.findall('object'), 1):
        name = obj.findtext('name')
        if name not in classes:
            raise UserError(f'{xml_path}: object {i} has unknown class {name!r}')
        box = obj.find('bndbox')
        if box is None:
            raise UserError(f'{xml_path}: object {i} ({name}) has no <bndbox>')
        x1, y1, x2, y2 = (_number(box, t, xml_path) for t in ('xmin', 'ymin', 'xmax', 'ymax'))
        # VOC boxes are 1-based and inclusive; allow the devkit's 0..size+1 slack
        if not (0 <= x1 < x2 <= width + 1 and 0 <= y1 < y2 <= height + 1):
            raise UserError(f'{xml_path}: object {i} ({name}) box {x1:g},{y1:g},{x2:g},{y2:g} '
                            f'is empty or outside the {width:g}x{height:g} image')


def check_voc_detection(dataset: dict, classes) -> None:
    """Every annotation listed in a VOC detection dataset config (``ann_file`` + sub root)."""
    root = dataset.get('data_root', '')
    sub_root = osp.join(root, (dataset.get('data_prefix') or {}).get('sub_data_root', ''))
    ann_file = osp.join(root, dataset['ann_file'])
    if not osp.isfile(ann_file):
        raise UserError(f'{ann_file}: no such file (check --data-root)')
    with open(ann_file) as f:
        ids = [line.strip() for line in f if line.strip()]
    for img_id in ids:
        xml_path = osp.join(sub_root, 'Annotations', f'{img_id}.xml')
        if not osp.isfile(xml_path):
            raise UserError(f'{ann_file}: lists {img_id} but {xml_path} does not exist')
        check_voc_annotation(xml_path, classes)
