"""Learning-rate schedule shared by the acoustic and vocoder systems."""

from __future__ import annotations

import math

import torch


def warmup_exp_decay(
    optimizer: torch.optim.Optimizer, *, lr: float, min_lr: float, warmup_steps: int, decay_steps: int,
    start_step: int = 0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then exponential decay towards ``min_lr``:
    the excess over ``min_lr`` halves every ``decay_steps`` steps. Step it once per optimizer step.

    ``start_step``: the steps the weights were already trained for (init_from a voice). The decay
    carries on from there; the warm-up is still the run's own, since its Adam moments start afresh.
    """
    if lr <= 0 or min_lr < 0 or min_lr > lr:
        raise ValueError(f"need 0 <= min_lr <= lr and lr > 0, got lr={lr}, min_lr={min_lr}")

    def factor(step: int) -> float:
        warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        decaying = max(0, start_step + step - warmup_steps)
        return warm * (min_lr + (lr - min_lr) * math.pow(0.5, decaying / max(decay_steps, 1))) / lr

    for group in optimizer.param_groups:
        group["lr"] = lr
        group["initial_lr"] = lr
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
