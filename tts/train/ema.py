"""An exponential moving average of a model's weights, bias-corrected.

The average starts at zero and each update is divided by 1 - decay^n (as Adam corrects its
moments), so after n updates it is a proper weighted mean of the n weights seen: early averages
are not dominated by the random initialisation, and a decay of 0.9999 is usable from step one.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


class WeightAverage:
    """average = WeightAverage(model, decay=0.999); average.update() after each optimizer step;
    ``with average.swapped_in(): ...`` runs with the averaged weights and restores the trained ones."""

    def __init__(self, model: torch.nn.Module, *, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"decay must be in (0, 1), got {decay}")
        self.model, self.decay, self.updates = model, decay, 0
        self.shadow = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in self._params()}

    def _params(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        return ((name, p) for name, p in self.model.named_parameters() if p.requires_grad)

    @torch.no_grad()
    def update(self) -> None:
        self.updates += 1
        for name, p in self._params():
            shadow = self.shadow[name]
            if shadow.device != p.device:
                shadow = self.shadow[name] = shadow.to(p.device)
            shadow.mul_(self.decay).add_(p.detach().float(), alpha=1.0 - self.decay)

    @torch.no_grad()
    def averaged(self) -> dict[str, torch.Tensor]:
        """The bias-corrected averages by parameter name (the trained weights before any update)."""
        if self.updates == 0:
            return {name: p.detach().float().clone() for name, p in self._params()}
        correction = 1.0 - self.decay ** self.updates
        return {name: shadow / correction for name, shadow in self.shadow.items()}

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        params = dict(self._params())
        trained = {name: p.detach().clone() for name, p in params.items()}
        with torch.no_grad():
            for name, value in self.averaged().items():
                params[name].copy_(value.to(params[name].dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, value in trained.items():
                    params[name].copy_(value)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": {k: v.cpu() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("the saved weight average does not match the model's parameters")
        self.updates = int(state["updates"])
        for name, value in state["shadow"].items():
            self.shadow[name] = value.to(self.shadow[name].device, torch.float32)
