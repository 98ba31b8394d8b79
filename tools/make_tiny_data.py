"""Write the tiny synthetic datasets: DIR/imagenet, DIR/cifar100 and DIR/VOCdevkit (real layouts)."""
import argparse
import os.path as osp
import time

from sd_transfer.datasets import make_tiny_cifar100, make_tiny_imagenet, make_tiny_voc


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--classes', type=int, default=10,
                        help='ImageNet classes (max 50), also drawn as CIFAR-100 classes')
    parser.add_argument('--size', type=int, default=64, help='ImageNet image side')
    parser.add_argument('--train-per-class', type=int, default=60)
    parser.add_argument('--val-per-class', type=int, default=20)
    parser.add_argument('--voc-size', type=int, default=128, help='VOC long image side')
    parser.add_argument('--voc-train', type=int, default=80, help='trainval images per year')
    parser.add_argument('--voc-test', type=int, default=40, help='test images per year')
    parser.add_argument('--voc-aug', type=int, default=40, help='VOC2012 SBD-like aug images')
    return parser.parse_args()


def main():
    args = parse_args()
    start = time.time()
    imagenet = make_tiny_imagenet(
        osp.join(args.out, 'imagenet'), seed=args.seed, classes=args.classes, size=args.size,
        train_per_class=args.train_per_class, val_per_class=args.val_per_class)
    print(f"{imagenet['root']}: {len(imagenet['wnids'])} classes, "
          f"{imagenet['train']} train / {imagenet['val']} val images of {args.size} px")
    cifar = make_tiny_cifar100(
        osp.join(args.out, 'cifar100'), seed=args.seed, classes=args.classes,
        train_per_class=args.train_per_class, test_per_class=args.val_per_class)
    print(f"{cifar['root']}: {args.classes} of CIFAR-100's classes, {cifar['train']} train / "
          f"{cifar['test']} test images of 32 px")
    voc = make_tiny_voc(
        osp.join(args.out, 'VOCdevkit'), seed=args.seed, size=args.voc_size,
        train_images=args.voc_train, test_images=args.voc_test, aug_images=args.voc_aug)
    print(f"{voc['root']}: classes drawn {', '.join(voc['classes'])}")
    for key, value in voc.items():
        if key not in ('root', 'classes'):
            print(f'  {key}: {value}')
    print(f'done in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
