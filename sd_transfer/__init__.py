"""Snapshot-distillation pretraining and PascalVOC transfer on OpenMMLab."""
__version__ = '0.1.0'
