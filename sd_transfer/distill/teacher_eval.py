"""The teacher's validation metrics, logged where it starts teaching."""
from typing import Dict

import torch


def evaluate(model: torch.nn.Module, runner) -> Dict[str, float]:
    """``model`` (a frozen teacher) on the run's val dataloader with its evaluator.

    Like mmengine's ``ValLoop`` (every rank takes its share, the evaluator gathers) but without
    its hooks: the student's validation, checkpoints and exports are not touched.
    """
    loop = runner.val_loop
    for data in loop.dataloader:
        with torch.no_grad():
            outputs = model.val_step(data)
        loop.evaluator.process(data_samples=outputs, data_batch=data)
    return loop.evaluator.evaluate(len(loop.dataloader.dataset))


def log_teacher_metrics(runner, metrics: Dict[str, float], epoch: float, how: str) -> None:
    """As ``teacher/<metric>`` scalars at ``epoch`` (where the student's val metrics are)."""
    scalars = {f'teacher/{key}': float(value) for key, value in metrics.items()}
    runner.visualizer.add_scalars(scalars, step=epoch)
    shown = ', '.join(f'{key} {value:.2f}' for key, value in metrics.items())
    runner.logger.info(f'SD: teacher ({how}): {shown}')
