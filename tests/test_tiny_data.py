"""The tiny datasets have the real layouts, are seeded, and load in the upstream dataset classes."""
import os
import os.path as osp
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from sd_transfer.datasets import make_tiny_cifar100, make_tiny_imagenet, make_tiny_voc
from sd_transfer.datasets.tiny import VOC_CLASSES, VOC_PALETTE

pytestmark = pytest.mark.slow  # trains or runs tools end to end: not in make test-quick

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SMALL_IMAGENET = dict(classes=3, train_per_class=4, val_per_class=2)
SMALL_VOC = dict(train_images=6, test_images=4, aug_images=4)


@pytest.fixture(scope='session')
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp('tiny')
    return dict(imagenet=make_tiny_imagenet(str(root / 'imagenet')),
                voc=make_tiny_voc(str(root / 'VOCdevkit')))


def _lines(path):
    with open(path) as f:
        return f.read().splitlines()


def _ids(voc_root, year, image_set):
    return _lines(osp.join(voc_root, f'VOC{year}', 'ImageSets', f'{image_set}.txt'))


def _files(root):
    return {osp.relpath(osp.join(d, f), root): osp.join(d, f)
            for d, _, names in os.walk(root) for f in names}


def _upstream_config(package, name):
    """A dataset config as the package ships it (in its .mim folder)."""
    from mmengine import Config
    pkg = __import__(package)
    return Config.fromfile(
        osp.join(osp.dirname(pkg.__file__), '.mim', 'configs', '_base_', 'datasets', name))


def _set_data_root(cfg, data_root):
    """Replace every data_root in a (nested) dataset config, as a user's config would."""
    if isinstance(cfg, dict):
        return {k: data_root if k == 'data_root' else _set_data_root(v, data_root)
                for k, v in cfg.items()}
    if isinstance(cfg, list):
        return [_set_data_root(v, data_root) for v in cfg]
    return cfg


def test_imagenet_layout(tiny):
    summary = tiny['imagenet']
    root, wnids = summary['root'], summary['wnids']
    assert list(wnids) == sorted(wnids) and len(wnids) == 10
    for split, per_class in (('train', 60), ('val', 20)):
        lines = [line.split(' ') for line in _lines(osp.join(root, 'meta', f'{split}.txt'))]
        assert len(lines) == summary[split] == 10 * per_class
        assert sorted(os.listdir(osp.join(root, split))) == list(wnids)
        # The ann file lists exactly the files on disk, labelled by their sorted folder index.
        assert {path for path, _ in lines} == set(_files(osp.join(root, split)))
        for path, label in lines:
            wnid, name = path.split('/')
            assert int(label) == wnids.index(wnid) and name.endswith('.JPEG')
            assert name.startswith(wnid if split == 'train' else 'ILSVRC2012_val_')
    assert _lines(osp.join(root, 'meta', 'classes.txt')) == list(wnids)
    img = Image.open(osp.join(root, 'train', wnids[0], f'{wnids[0]}_000000.JPEG'))
    assert (img.format, img.mode, img.size) == ('JPEG', 'RGB', (64, 64))


def test_voc_layout(tiny):
    voc = tiny['voc']
    root = voc['root']
    assert sorted(d for d in os.listdir(root) if not d.startswith('.')) == ['VOC2007', 'VOC2012']
    for year, n_aug in ((2007, 0), (2012, 40)):
        base = osp.join(root, f'VOC{year}')
        ids = {s: _ids(root, year, s) for s in
               ('Main/train', 'Main/val', 'Main/trainval', 'Main/test', 'Segmentation/train',
                'Segmentation/val', 'Segmentation/trainval', 'Segmentation/test')}
        for key, listed in ids.items():
            assert len(listed) == len(set(listed)) == voc[f'VOC{year}/ImageSets/{key}.txt'] > 0
            assert listed == sorted(listed)
        assert all(i.startswith('2012_') == (year == 2012) for i in ids['Main/trainval'])
        main, seg = ids['Main/trainval'], ids['Segmentation/trainval']
        assert sorted(ids['Main/train'] + ids['Main/val']) == main
        assert sorted(ids['Segmentation/train'] + ids['Segmentation/val']) == seg
        assert ids['Segmentation/val'] == ids['Main/val'] and not set(main) & set(ids['Main/test'])
        assert len(seg) == 80 and len(ids['Main/test']) == 40 and len(main) == 80 + n_aug
        assert len(ids['Segmentation/train']) == len(ids['Segmentation/val']) == 40

        # Every image has an annotation; segmented images (and only those) have both masks.
        everything = set(main) | set(ids['Main/test'])
        assert set(_files(osp.join(base, 'JPEGImages'))) == {f'{i}.jpg' for i in everything}
        assert set(_files(osp.join(base, 'Annotations'))) == {f'{i}.xml' for i in everything}
        segmented = {f'{i}.png' for i in seg + ids['Segmentation/test']}
        assert set(_files(osp.join(base, 'SegmentationClass'))) == segmented
        assert set(_files(osp.join(base, 'SegmentationObject'))) == segmented

    aug = _ids(root, 2012, 'Segmentation/aug')
    train = _ids(root, 2012, 'Segmentation/train')
    assert len(aug) == voc['VOC2012/ImageSets/Segmentation/aug.txt'] == 40
    # As mmseg's voc_aug.py writes them: aug is disjoint from train and val, trainaug their union.
    assert not set(aug) & set(_ids(root, 2012, 'Segmentation/trainval'))
    assert set(aug) <= set(_ids(root, 2012, 'Main/train'))
    assert _ids(root, 2012, 'Segmentation/trainaug') == sorted(aug + train)
    assert set(_files(osp.join(root, 'VOC2012', 'SegmentationClassAug'))) == {
        f'{i}.png' for i in aug + train}
    assert not osp.exists(osp.join(root, 'VOC2007', 'SegmentationClassAug'))


def _parse(xml_path):
    ann = ET.parse(xml_path).getroot()
    size = tuple(int(ann.find(f'size/{k}').text) for k in ('width', 'height', 'depth'))
    objects = [dict(name=o.find('name').text, pose=o.find('pose').text,
                    truncated=int(o.find('truncated').text),
                    difficult=int(o.find('difficult').text),
                    box=[int(o.find(f'bndbox/{k}').text) for k in ('xmin', 'ymin', 'xmax', 'ymax')])
               for o in ann.findall('object')]
    return ann, size, objects


def test_voc_annotations_match_images_and_masks(tiny):
    root, drawn = tiny['voc']['root'], tiny['voc']['classes']
    stats = dict(objects=0, difficult=0, truncated=0, several=0, exact=0)
    for year in (2007, 2012):
        base = osp.join(root, f'VOC{year}')
        aug = set(_ids(root, year, 'Segmentation/aug')) if year == 2012 else set()
        for name in _ids(root, year, 'Main/trainval') + _ids(root, year, 'Main/test'):
            ann, (w, h, depth), objects = _parse(osp.join(base, 'Annotations', f'{name}.xml'))
            assert ann.find('folder').text == f'VOC{year}'
            assert ann.find('filename').text == f'{name}.jpg'
            assert ann.find('source/database').text == f'The VOC{year} Database'
            assert int(ann.find('segmented').text) == (name not in aug)
            img = Image.open(osp.join(base, 'JPEGImages', f'{name}.jpg'))
            assert (img.format, img.mode, img.size, depth) == ('JPEG', 'RGB', (w, h), 3)
            assert objects and max(w, h) == 128
            stats['objects'] += len(objects)
            stats['several'] += len(objects) > 1
            for o in objects:
                assert o['name'] in drawn and o['pose'] == 'Unspecified'
                x1, y1, x2, y2 = o['box']
                assert 1 <= x1 <= x2 <= w and 1 <= y1 <= y2 <= h
                stats['difficult'] += o['difficult']
                stats['truncated'] += o['truncated']
            if name in aug:
                continue
            cls = Image.open(osp.join(base, 'SegmentationClass', f'{name}.png'))
            obj = Image.open(osp.join(base, 'SegmentationObject', f'{name}.png'))
            for mask in (cls, obj):
                assert mask.mode == 'P' and mask.size == (w, h)
                assert mask.getpalette()[:256 * 3] == VOC_PALETTE.flatten().tolist()
            cls, obj = np.asarray(cls), np.asarray(obj)
            assert set(np.unique(cls)) <= set(range(21)) | {255} and 255 in cls
            assert np.array_equal(cls == 255, obj == 255)
            assert set(np.unique(obj)) <= set(range(len(objects) + 1)) | {255}
            for k, o in enumerate(objects, 1):
                if o['difficult']:  # void as a whole, as in the real masks
                    assert not (obj == k).any()
                    continue
                # The object's outline is void in the masks, so the box holds its mask and
                # each side of the box touches the mask or its void outline.
                x1, y1, x2, y2 = np.array(o['box']) - 1
                inside = np.zeros_like(obj, bool)
                inside[y1:y2 + 1, x1:x2 + 1] = True
                assert (obj == k).any() and not ((obj == k) & ~inside).any()
                touched = np.isin(obj[y1:y2 + 1, x1:x2 + 1], (k, 255))
                assert touched[0].any() and touched[-1].any()
                assert touched[:, 0].any() and touched[:, -1].any()
                assert (cls[obj == k] == VOC_CLASSES.index(o['name']) + 1).all()

    for name in _ids(root, 2012, 'Segmentation/trainaug'):
        mask = Image.open(osp.join(root, 'VOC2012', 'SegmentationClassAug', f'{name}.png'))
        assert mask.mode == 'L'
        values = set(np.unique(np.asarray(mask)))
        assert values <= set(range(21)) and len(values) > 1
        _, _, objects = _parse(osp.join(root, 'VOC2012', 'Annotations', f'{name}.xml'))
        labels = [VOC_CLASSES.index(o['name']) + 1 for o in objects]
        assert values - {0} == set(labels)
        # Without a void border, the box of a class that occurs once is exactly its mask's box.
        for label, o in zip(labels, objects):
            if labels.count(label) == 1:
                ys, xs = np.nonzero(np.asarray(mask) == label)
                assert [xs.min() + 1, ys.min() + 1, xs.max() + 1, ys.max() + 1] == o['box']
                stats['exact'] += 1

    counts = tiny['voc']
    assert stats['objects'] == counts['VOC2007/objects'] + counts['VOC2012/objects']
    assert stats['difficult'] == counts['VOC2007/difficult'] + counts['VOC2012/difficult'] > 0
    assert stats['objects'] > stats['difficult'] * 5 and stats['truncated'] > 0
    assert stats['several'] > 0 and stats['exact'] > 40


def test_seeded_and_regenerated_in_place(tmp_path):
    def generate(seed, **voc):
        make_tiny_imagenet(str(tmp_path / 'imagenet'), seed=seed, **SMALL_IMAGENET)
        make_tiny_voc(str(tmp_path / 'VOCdevkit'), seed=seed, **voc)
        return {k: open(p, 'rb').read() for k, p in _files(str(tmp_path)).items()}

    first = generate(0, **SMALL_VOC)
    assert generate(0, **SMALL_VOC) == first
    other = generate(1, **SMALL_VOC)
    images = [k for k in first if k.endswith(('.JPEG', '.jpg'))]
    assert len(images) == 3 * (4 + 2) + (6 + 4) + (6 + 4 + 4) and other.keys() >= set(images)
    assert all(first[k] != other[k] for k in images)
    test_set = osp.join('VOCdevkit', 'VOC2012', 'ImageSets', 'Main', 'test.txt')
    assert first[test_set] != other[test_set]  # the seed also draws the splits
    # Regenerating smaller leaves nothing stale behind.
    smaller = generate(0, train_images=2, test_images=2, aug_images=0)
    assert sum(k.startswith(osp.join('VOCdevkit', 'VOC2012', 'JPEGImages')) for k in smaller) == 4
    assert not any('SegmentationClassAug' in k for k in smaller)


def test_refuses_to_overwrite_foreign_data(tmp_path):
    os.makedirs(tmp_path / 'VOC2007' / 'JPEGImages')
    with pytest.raises(FileExistsError):
        make_tiny_voc(str(tmp_path), **SMALL_VOC)
    assert os.listdir(tmp_path) == ['VOC2007']


def test_cli(tmp_path):
    out = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'make_tiny_data.py'), '--out', str(tmp_path),
         '--classes', '2', '--train-per-class', '3', '--val-per-class', '1', '--voc-train', '2',
         '--voc-test', '1', '--voc-aug', '1', '--voc-size', '96'],
        check=True, capture_output=True, text=True).stdout
    assert 'VOC2012/ImageSets/Segmentation/aug.txt: 1' in out
    assert len(_lines(tmp_path / 'imagenet' / 'meta' / 'train.txt')) == 2 * 3
    img = Image.open(tmp_path / 'VOCdevkit' / 'VOC2007' / 'JPEGImages' / '000001.jpg')
    assert max(img.size) == 96
    assert sorted(os.listdir(tmp_path / 'cifar100' / 'cifar-100-python')) == ['meta', 'test',
                                                                             'train']


def test_mmpretrain_loads_cifar100(tmp_path):
    """The official archive's format; mmpretrain's own class refuses any copy but the release's
    bytes (md5) and would download, ours reads it."""
    import pickle
    from mmpretrain.datasets import CIFAR100
    from sd_transfer.datasets.cifar import LocalCIFAR100
    root = str(tmp_path / 'cifar100')
    make_tiny_cifar100(root, classes=3, train_per_class=4, test_per_class=2)
    with open(osp.join(root, 'cifar-100-python', 'train'), 'rb') as f:
        raw = pickle.load(f, encoding='latin1')
    train = LocalCIFAR100(data_root=root, split='train', pipeline=[])
    test = LocalCIFAR100(data_root=root, split='test', pipeline=[])
    assert (len(train), len(test)) == (12, 6)
    assert len(train.metainfo['classes']) == 100
    for i in (0, 7):
        info = train.get_data_info(i)
        assert info['gt_label'] == raw['fine_labels'][i] == i // 4
        assert np.array_equal(info['img'], raw['data'][i].reshape(3, 32, 32).transpose(1, 2, 0))
    with pytest.raises(RuntimeError, match='Cannot find CIFAR100'):
        CIFAR100(data_root=root, split='train', download=False, pipeline=[])


def test_mmpretrain_loads_imagenet(tiny):
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    from mmpretrain.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    root, wnids = tiny['imagenet']['root'], tiny['imagenet']['wnids']
    cfg = _upstream_config('mmpretrain', 'imagenet_bs32.py')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        # The upstream configs: split='train'/'val' finds meta/<split>.txt.
        train = DATASETS.build(_set_data_root(cfg.train_dataloader.dataset, root))
        val = DATASETS.build(_set_data_root(cfg.val_dataloader.dataset, root))
        # Folder-only layouts.
        folders = DATASETS.build(dict(type='CustomDataset', data_prefix=osp.join(root, 'train')))
        imagenet_folders = DATASETS.build(dict(
            type='ImageNet', data_root=root, data_prefix='val',
            classes=osp.join(root, 'meta', 'classes.txt'), pipeline=cfg.test_pipeline))
        assert train.ann_file == osp.join(root, 'meta', 'train.txt')
        assert (len(train), len(val), len(folders), len(imagenet_folders)) == (600, 200, 600, 200)
        assert folders.CLASSES == imagenet_folders.CLASSES == wnids
        by_path = {d['img_path']: d['gt_label'] for d in train.load_data_list()}
        assert by_path == {d['img_path']: d['gt_label'] for d in folders.load_data_list()}
        assert sorted(set(by_path.values())) == list(range(10))

        for dataset, index in ((train, 0), (val, 199), (imagenet_folders, 57)):
            sample = dataset[index]
            assert sample['inputs'].shape == (3, 224, 224)
            assert sample['data_samples'].gt_label.tolist() == [
                dataset.get_data_info(index)['gt_label']]
        assert imagenet_folders.get_data_info(57)['img_path'] == val.get_data_info(57)['img_path']


def test_mmdet_loads_voc(tiny):
    from mmdet.registry import DATASETS
    from mmdet.utils import register_all_modules
    from mmengine.registry import DefaultScope
    register_all_modules(init_default_scope=False)
    root, drawn = tiny['voc']['root'], tiny['voc']['classes']
    cfg = _upstream_config('mmdet', 'voc0712.py')
    with DefaultScope.overwrite_default_scope('mmdet'):
        train = DATASETS.build(_set_data_root(cfg.train_dataloader.dataset, root))
        test = DATASETS.build(_set_data_root(cfg.test_dataloader.dataset, root))
        # VOC2007 + VOC2012 trainval, repeated 3 times; filter_empty_gt drops nothing.
        assert len(train) == 3 * (80 + 120) and len(test) == 40
        assert test.metainfo['dataset_type'] == 'VOC2007'

        labels = {VOC_CLASSES.index(c) for c in drawn}
        for index in range(0, 40, 7):
            sample = test[index]
            meta = sample['data_samples'].metainfo
            _, (w, h, _), objects = _parse(osp.join(
                root, 'VOC2007', 'Annotations', f"{meta['img_id']}.xml"))
            assert meta['ori_shape'] == (h, w) and sample['inputs'].shape[0] == 3
            assert max(meta['img_shape']) == 1000 or min(meta['img_shape']) == 600
            # Difficult objects become ignored instances; boxes are 0-based like mmdet's.
            for key, difficult in (('gt_instances', 0), ('ignored_instances', 1)):
                instances = getattr(sample['data_samples'], key)
                expected = [o for o in objects if o['difficult'] == difficult]
                assert instances.bboxes.tensor.tolist() == [
                    [float(v - 1) for v in o['box']] for o in expected]
                assert instances.labels.tolist() == [VOC_CLASSES.index(o['name'])
                                                     for o in expected]
                assert set(instances.labels.tolist()) <= labels

        voc07, voc12 = train.dataset.datasets
        instances = [i for d in (voc07, voc12) for j in range(len(d))
                     for i in d.get_data_info(j)['instances']]
        assert len(instances) == sum(
            len(_parse(osp.join(root, f'VOC{year}', 'Annotations', f'{i}.xml'))[2])
            for year in (2007, 2012) for i in _ids(root, year, 'Main/trainval'))
        sample = train[200 + 123]  # second repeat, VOC2012 image 43
        packed = sample['data_samples']
        assert sample['inputs'].shape[0] == 3 and packed.img_id == voc12.get_data_info(43)['img_id']
        assert len(packed.gt_instances) + len(packed.ignored_instances) == len(
            voc12.get_data_info(43)['instances'])


def test_mmseg_loads_voc(tiny):
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS
    from mmseg.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    root = osp.join(tiny['voc']['root'], 'VOC2012')
    cfg = _upstream_config('mmseg', 'pascal_voc12_aug.py')
    with DefaultScope.overwrite_default_scope('mmseg'):
        train = DATASETS.build(_set_data_root(cfg.train_dataloader.dataset, root))
        val = DATASETS.build(_set_data_root(cfg.val_dataloader.dataset, root))
        # train.txt with SegmentationClass, then aug.txt with SegmentationClassAug.
        assert [len(d) for d in train.datasets] == [40, 40] and len(val) == 40
        assert val.metainfo['palette'] == VOC_PALETTE[:21].tolist()

        for dataset, index in ((val, 3), (train, 5), (train, 45)):
            sample = dataset[index]
            info = dataset.get_data_info(index)
            mask = np.asarray(Image.open(info['seg_map_path']))
            seg = sample['data_samples'].gt_sem_seg.data
            assert set(seg.unique().tolist()) <= set(range(21)) | {255}
            assert ('SegmentationClassAug' in info['seg_map_path']) == (dataset is train
                                                                       and index >= 40)
            if dataset is val:  # the test pipeline resizes the image only
                assert np.array_equal(seg[0].numpy(), mask)
                assert max(sample['inputs'].shape[1:]) == 2048 or min(
                    sample['inputs'].shape[1:]) == 512
            else:  # the train pipeline crops to 512 x 512, padding the mask with 255
                assert seg.shape == (1, 512, 512) and sample['inputs'].shape == (3, 512, 512)
