"""Learning-rate schedule shared by the acoustic and vocoder systems."""

from __future__ import annotations

import math

import torch


def warmup_exp_decay(
    optimizer: torch.optim.Optimizer, *, lr: float, min_lr: float, warmup_steps: int, decay_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up to ``lr`` over ``warmup_steps``, then exponential decay towards ``min_lr``:
    the excess over ``min_lr`` halves every ``decay_steps`` steps. Step it once per optimizer step.
    """
    if lr <= 0 or min_lr < 0 or min_lr > lr:
        raise ValueError(f"need 0 <= min_lr <= lr and lr > 0, got lr={lr}, min_lr={min_lr}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        decayed = min_lr + (lr - min_lr) * math.pow(0.5, (step - warmup_steps) / max(decay_steps, 1))
        return decayed / lr

    for group in optimizer.param_groups:
        group["lr"] = lr
        group["initial_lr"] = lr
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
