"""Tiny synthetic ImageNet and PascalVOC datasets in the real on-disk layouts.

They stand in for the real data in tests and the demo: mmpretrain, mmdet and mmseg load them with
their own dataset classes, unmodified. Every class is a shape + texture + hue; hues overlap
between classes and there are distractors and noise, so small models learn the data in a few
hundred iterations but not perfectly.
"""
import colorsys
import os
import os.path as osp
import pickle
import shutil
import xml.etree.ElementTree as ET

import numpy as np
from PIL import Image

# The first ImageNet-1k synsets in sorted order, so label k here is label k of real ImageNet
# (and of mmpretrain's IMAGENET_CATEGORIES).
IMAGENET_WNIDS = tuple("""
    n01440764 n01443537 n01484850 n01491361 n01494475 n01496331 n01498041 n01514668 n01514859
    n01518878 n01530575 n01531178 n01532829 n01534433 n01537544 n01558993 n01560419 n01580077
    n01582220 n01592084 n01601694 n01608432 n01614925 n01616318 n01622779 n01629819 n01630670
    n01631663 n01632458 n01632777 n01641577 n01644373 n01644900 n01664065 n01665541 n01667114
    n01667778 n01669191 n01675722 n01677366 n01682714 n01685808 n01687978 n01688243 n01689811
    n01692333 n01693334 n01694178 n01695060 n01697457""".split())

VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
               'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
               'sheep', 'sofa', 'train', 'tvmonitor')
# Classes that are actually drawn: few enough for a tiny detector to learn in ~200 iterations.
VOC_DRAWN = ('person', 'car', 'dog', 'cat', 'bird', 'bottle')

SHAPES = ('ellipse', 'box', 'triangle', 'diamond', 'cross', 'ring')
TEXTURES = ('flat', 'hstripes', 'vstripes', 'checker', 'dots')
MARKER = '.sd_transfer_tiny'


def _voc_palette():
    """The devkit's colour map: class index bits spread over the high bits of R, G and B."""
    palette = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c = i
        for j in range(8):
            for ch in range(3):
                palette[i, ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
    return palette


VOC_PALETTE = _voc_palette()


def _fresh_root(root, subdirs):
    """Remove our own earlier output so the layout is exact; never touch folders we didn't write."""
    present = [d for d in subdirs if osp.exists(osp.join(root, d))]
    if present and not osp.exists(osp.join(root, MARKER)):
        raise FileExistsError(f'{root} already holds {present}, not written by this generator')
    for d in present:
        shutil.rmtree(osp.join(root, d))
    os.makedirs(root, exist_ok=True)
    open(osp.join(root, MARKER), 'w').close()


def _style(k):
    """Shape, texture and hue of class k. (shape, texture) is unique for k < 30; hues overlap."""
    return SHAPES[k % 6], TEXTURES[(k + k // 6) % 5], (k * 0.618034) % 1.0


def _shape_mask(shape, hw, box, angle):
    """Pixels of `shape` filling box (x0, y0, w, h), rotated by angle; the box may overhang."""
    y, x = np.mgrid[:hw[0], :hw[1]] + 0.5
    x0, y0, w, h = box
    u, v = (x - x0) / w * 2 - 1, (y - y0) / h * 2 - 1
    c, s = np.cos(angle), np.sin(angle)
    u, v = c * u + s * v, c * v - s * u
    au, av, r2 = np.abs(u), np.abs(v), u * u + v * v
    if shape == 'ellipse':
        return r2 <= 1
    if shape == 'box':
        return (au <= 0.85) & (av <= 0.85)
    if shape == 'triangle':
        return (v <= 0.9) & (au <= (v + 0.9) / 2)
    if shape == 'diamond':
        return au + av <= 1
    if shape == 'cross':
        return ((au <= 0.3) | (av <= 0.3)) & (au <= 0.95) & (av <= 0.95)
    return (r2 <= 1) & (r2 >= 0.45)  # ring


def _paint(img, mask, k, box, rng):
    """Fill `mask` with class k's texture in two tones of a jittered class hue."""
    _, texture, hue = _style(k)
    x0, y0, w, h = box
    half = max(2.0, min(w, h) / 8)
    y, x = np.mgrid[:img.shape[0], :img.shape[1]]
    y, x = y - y0, x - x0
    ty, tx = y // half, x // half
    dy, dx = y % (2 * half) - half, x % (2 * half) - half
    pattern = {
        'flat': np.zeros_like(ty, bool),
        'hstripes': ty % 2 == 1,
        'vstripes': tx % 2 == 1,
        'checker': (tx + ty) % 2 == 1,
        'dots': dy ** 2 + dx ** 2 < (0.6 * half) ** 2,
    }[texture]
    hue = (hue + rng.uniform(-0.07, 0.07)) % 1.0
    colour = 255 * np.array(colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 1), rng.uniform(0.5, 1)))
    img[mask] = np.where(pattern[mask, None], 0.5 * colour, colour)


def _place(rng, hw, w, h):
    """A random w x h box that is at least about half inside the image."""
    return rng.uniform(-w / 4, hw[1] - 3 * w / 4), rng.uniform(-h / 4, hw[0] - 3 * h / 4), w, h


def _random_box(rng, hw, lo, hi):
    """A box of side lo..hi times the image's long side."""
    w = max(hw) * rng.uniform(lo, hi)
    return _place(rng, hw, w, w * np.exp(rng.uniform(-0.4, 0.4)))


def _background(rng, hw):
    """A smooth greyish colour field with a few flat blobs: busy, but unlike any class."""
    grid = rng.uniform(30, 225, (3, 3, 3))
    grid = (grid + grid.mean(axis=2, keepdims=True)) / 2
    img = Image.fromarray(grid.astype(np.uint8)).resize(hw[::-1], Image.BICUBIC)
    img = np.asarray(img, np.float64).copy()
    for _ in range(rng.integers(0, 4)):
        mask = _shape_mask(SHAPES[rng.integers(2)], hw, _random_box(rng, hw, 0.08, 0.2), 0.0)
        img[mask] = 255 * np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.25),
                                                       rng.uniform(0.2, 0.9)))
    return img


def _to_image(img, rng, noise):
    """Add pixel noise and quantise."""
    return Image.fromarray(np.clip(img + rng.normal(0, noise, img.shape), 0, 255).astype(np.uint8))


def _imagenet_image(rng, label, classes, size):
    """One labelled object on top of up to two smaller objects of other classes; ``size``: the
    side, or (width, height)."""
    hw = (size, size) if isinstance(size, int) else (size[1], size[0])
    img = _background(rng, hw)
    for _ in range(rng.integers(0, 3) if classes > 1 else 0):
        other = (label + rng.integers(1, classes)) % classes
        box = _random_box(rng, hw, 0.15, 0.4)
        _paint(img, _shape_mask(_style(other)[0], hw, box, rng.uniform(-0.5, 0.5)), other, box, rng)
    box = _random_box(rng, hw, 0.35, 0.8)
    _paint(img, _shape_mask(_style(label)[0], hw, box, rng.uniform(-0.5, 0.5)), label, box, rng)
    return _to_image(img, rng, noise=12)


def make_tiny_imagenet(root, seed=0, classes=10, size=64, train_per_class=60, val_per_class=20):
    """Write ``train/<wnid>/*.JPEG``, ``val/<wnid>/*.JPEG`` and ``meta/{train,val}.txt``.

    The meta files are mmpretrain's ann-file format (``<wnid>/<file> <label>``, relative to the
    split folder, label = index of the sorted wnid); the class folders also serve mmpretrain's
    folder-only layout. Val keeps real ImageNet's file names, sorted into class folders.
    ``meta/classes.txt`` (not in the real layout) lists the wnids for mmpretrain's ``classes``
    argument: ``ImageNet`` otherwise names 1000 classes and, folder-only, refuses fewer folders.
    ``size`` is the images' side, or (width, height) (ImageNet's typical photo: (500, 375)).
    """
    assert 1 <= classes <= len(IMAGENET_WNIDS), f'classes must be 1..{len(IMAGENET_WNIDS)}'
    _fresh_root(root, ('train', 'val', 'meta'))
    os.makedirs(osp.join(root, 'meta'))
    wnids = IMAGENET_WNIDS[:classes]
    with open(osp.join(root, 'meta', 'classes.txt'), 'w') as f:
        f.writelines(f'{wnid}\n' for wnid in wnids)
    summary = dict(root=root, wnids=wnids)
    for split_id, (split, per_class) in enumerate(
            (('train', train_per_class), ('val', val_per_class))):
        lines = []
        for label, wnid in enumerate(wnids):
            os.makedirs(osp.join(root, split, wnid))
            for i in range(per_class):
                if split == 'train':
                    name = f'{wnid}_{i:06d}.JPEG'
                else:
                    name = f'ILSVRC2012_val_{i * classes + label + 1:08d}.JPEG'
                rng = np.random.default_rng([seed, split_id, label, i])
                _imagenet_image(rng, label, classes, size).save(
                    osp.join(root, split, wnid, name), quality=90)
                lines.append(f'{wnid}/{name} {label}\n')
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as f:
            f.writelines(lines)
        summary[split] = len(lines)
    return summary


def make_tiny_cifar100(root, seed=0, classes=10, train_per_class=20, test_per_class=5):
    """Write ``cifar-100-python/{train,test,meta}`` as the official archive unpacks.

    Pickled dicts as mmpretrain's ``CIFAR100`` (and torchvision's) read them: ``data`` uint8
    ``(N, 3072)`` (R, G, B planes of 32 x 32), ``fine_labels``, ``coarse_labels``,
    ``filenames``, ``batch_label``; ``meta`` holds the 100 fine and 20 coarse label names. Only
    the first ``classes`` fine labels are drawn.
    """
    from mmpretrain.datasets.categories import CIFAR100_CATEGORIES
    assert 1 <= classes <= 100, 'classes must be 1..100'
    _fresh_root(root, ('cifar-100-python', ))
    folder = osp.join(root, 'cifar-100-python')
    os.makedirs(folder)
    summary = dict(root=root, classes=classes)
    for split_id, (split, per_class) in enumerate(
            (('train', train_per_class), ('test', test_per_class))):
        data, labels, names = [], [], []
        for label in range(classes):
            for i in range(per_class):
                rng = np.random.default_rng([seed, 10 + split_id, label, i])
                img = np.asarray(_imagenet_image(rng, label, classes, 32))
                data.append(img.transpose(2, 0, 1).reshape(-1))
                labels.append(label)
                names.append(f'{CIFAR100_CATEGORIES[label]}_s_{i:06d}.png')
        entry = dict(data=np.stack(data).astype(np.uint8), fine_labels=labels,
                     coarse_labels=[label // 5 for label in labels], filenames=names,
                     batch_label=f'{split}ing batch 1 of 1')
        with open(osp.join(folder, split), 'wb') as f:
            pickle.dump(entry, f, protocol=2)
        summary[split] = len(labels)
    with open(osp.join(folder, 'meta'), 'wb') as f:
        pickle.dump(dict(fine_label_names=list(CIFAR100_CATEGORIES),
                         coarse_label_names=[f'superclass_{i}' for i in range(20)]), f,
                    protocol=2)
    return summary


def _voc_scene(rng, size, drawn):
    """Draw 1-3 objects (sometimes plus a tiny 'difficult' one) that occlude each other little.

    Returns the image, the instance map (k = k-th object, 0 = background) and the objects as
    (class name, difficult) in instance order.
    """
    short = round(size * rng.uniform(0.7, 1.0))
    hw = (short, size) if rng.random() < 0.7 else (size, short)
    img = _background(rng, hw)
    wanted = [(rng.integers(len(drawn)), _random_box(rng, hw, 0.3, 0.6), False)
              for _ in range(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))]
    wanted.sort(key=lambda o: -o[1][2] * o[1][3])  # large first, small ones drawn on top
    if rng.random() < 0.15:
        wanted.append((rng.integers(len(drawn)), _random_box(rng, hw, 0.08, 0.14), True))
    inst = np.zeros(hw, np.uint8)
    objects = []
    for k, box, difficult in wanted:
        drawn_masks = [inst == j for j in range(1, len(objects) + 1)]
        for _ in range(20):  # hide at most a quarter of the new object and of each older one
            mask = _shape_mask(_style(k)[0], hw, box, rng.uniform(-0.25, 0.25))
            if mask.any() and (mask & (inst > 0)).sum() <= 0.25 * mask.sum() and all(
                    (mask & m).sum() <= 0.25 * m.sum() for m in drawn_masks):
                break
            box = _place(rng, hw, *box[2:])
        else:
            continue
        _paint(img, mask, k, box, rng)
        inst[mask] = len(objects) + 1
        objects.append((drawn[k], difficult))
    return _to_image(img, rng, noise=10), inst, objects


def _void_border(inst):
    """Pixels next to a boundary between two labels, which real VOC masks mark 255 (void)."""
    h, w = inst.shape
    padded = np.pad(inst, 1, mode='edge')
    shifted = [padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    return np.max(shifted, axis=0) != np.min(shifted, axis=0)


def _save_palette_png(index, path):
    img = Image.fromarray(index.astype(np.uint8))
    img.putpalette(VOC_PALETTE.tobytes())  # turns the 'L' image into a 'P' one
    img.save(path)


def _write_xml(path, year, name, inst, objects, segmented):
    """An annotation in the devkit's schema; a box is the tight, 1-based box of the visible mask."""
    def add(parent, tag, text=None):
        node = ET.SubElement(parent, tag)
        if text is not None:
            node.text = str(text)
        return node

    h, w = inst.shape
    ann = ET.Element('annotation')
    add(ann, 'folder', f'VOC{year}')
    add(ann, 'filename', f'{name}.jpg')
    source = add(ann, 'source')
    add(source, 'database', f'The VOC{year} Database')
    add(source, 'annotation', f'PASCAL VOC{year}')
    add(source, 'image', 'synthetic')
    size = add(ann, 'size')
    add(size, 'width', w)
    add(size, 'height', h)
    add(size, 'depth', 3)
    add(ann, 'segmented', int(segmented))
    for k, (cls, difficult) in enumerate(objects, 1):
        ys, xs = np.nonzero(inst == k)
        obj = add(ann, 'object')
        add(obj, 'name', cls)
        add(obj, 'pose', 'Unspecified')
        add(obj, 'truncated', int(xs.min() == 0 or ys.min() == 0 or xs.max() == w - 1
                                  or ys.max() == h - 1))
        add(obj, 'difficult', int(difficult))
        bndbox = add(obj, 'bndbox')
        for tag, value in zip(('xmin', 'ymin', 'xmax', 'ymax'),
                              (xs.min(), ys.min(), xs.max(), ys.max())):
            add(bndbox, tag, value + 1)
    ET.indent(ann, '\t')
    ET.ElementTree(ann).write(path)


def _write_voc_year(root, year, seed, size, n_trainval, n_test, n_aug, drawn):
    """Write ``root/VOC<year>``; return {image-set file: number of ids} and object counts.

    As in the real data, ``aug`` images (VOC2012 only, from SBD in reality) are in the Main
    sets but not segmented: they have no SegmentationClass/Object masks, only SegmentationClassAug
    ones (grey index PNGs without the void border, as mmseg's voc_aug.py converter writes), and
    SegmentationClassAug also covers Segmentation/train so that trainaug.txt is usable.
    """
    base = osp.join(root, f'VOC{year}')
    prefix = '' if year == 2007 else f'{year}_'
    names = [f'{prefix}{i:06d}' for i in range(1, n_trainval + n_test + n_aug + 1)]
    order = [names[i] for i in np.random.default_rng([seed, year]).permutation(len(names))]
    test, trainval, aug = (order[:n_test], order[n_test:n_test + n_trainval],
                           order[n_test + n_trainval:])
    train, val = trainval[::2], trainval[1::2]
    sets = {'Main/train': train + aug, 'Main/val': val, 'Main/trainval': trainval + aug,
            'Main/test': test, 'Segmentation/train': train, 'Segmentation/val': val,
            'Segmentation/trainval': trainval, 'Segmentation/test': test}
    folders = ['JPEGImages', 'Annotations', 'ImageSets/Main', 'ImageSets/Segmentation',
               'SegmentationClass', 'SegmentationObject']
    if n_aug:
        sets.update({'Segmentation/aug': aug, 'Segmentation/trainaug': train + aug})
        folders.append('SegmentationClassAug')
    for folder in folders:
        os.makedirs(osp.join(base, folder))

    aug_masks = set(aug + train) if n_aug else set()
    counts = {f'VOC{year}/objects': 0, f'VOC{year}/difficult': 0}
    for i, name in enumerate(names):
        img, inst, objects = _voc_scene(np.random.default_rng([seed, year, i]), size, drawn)
        img.save(osp.join(base, 'JPEGImages', f'{name}.jpg'), quality=90)
        segmented = name not in aug
        _write_xml(osp.join(base, 'Annotations', f'{name}.xml'), year, name, inst, objects,
                   segmented)
        counts[f'VOC{year}/objects'] += len(objects)
        counts[f'VOC{year}/difficult'] += sum(d for _, d in objects)
        semantic = np.array([0] + [VOC_CLASSES.index(c) + 1 for c, _ in objects], np.uint8)[inst]
        if segmented:
            hard = [k for k, (_, difficult) in enumerate(objects, 1) if difficult]
            void = _void_border(inst) | np.isin(inst, hard)
            _save_palette_png(np.where(void, 255, semantic),
                              osp.join(base, 'SegmentationClass', f'{name}.png'))
            _save_palette_png(np.where(void, 255, inst),
                              osp.join(base, 'SegmentationObject', f'{name}.png'))
        if name in aug_masks:
            Image.fromarray(semantic).save(osp.join(base, 'SegmentationClassAug', f'{name}.png'))

    for key, ids in sets.items():
        with open(osp.join(base, 'ImageSets', f'{key}.txt'), 'w') as f:
            f.writelines(f'{i}\n' for i in sorted(ids))
    return {**{f'VOC{year}/ImageSets/{k}.txt': len(v) for k, v in sets.items()}, **counts}


def make_tiny_voc(root, seed=0, size=128, train_images=80, test_images=40, aug_images=40,
                  drawn_classes=VOC_DRAWN):
    """Write ``VOC2007/`` and ``VOC2012/`` under ``root``, the VOCdevkit folder.

    Each year has ``train_images`` trainval images (split in half into train and val, for Main
    and Segmentation alike) and ``test_images`` test images; VOC2012 also has ``aug_images``
    SBD-like images (see ``_write_voc_year``). Images are ``size`` px on the long side. Only
    ``drawn_classes`` (real VOC names) appear; objects marked difficult are tiny and void (255)
    in SegmentationClass/Object, as in the real data.
    """
    assert set(drawn_classes) <= set(VOC_CLASSES), f'not VOC classes: {drawn_classes}'
    _fresh_root(root, ('VOC2007', 'VOC2012'))
    summary = dict(root=root, classes=tuple(drawn_classes))
    summary.update(_write_voc_year(root, 2007, seed, size, train_images, test_images, 0,
                                   drawn_classes))
    summary.update(_write_voc_year(root, 2012, seed, size, train_images, test_images, aug_images,
                                   drawn_classes))
    return summary
