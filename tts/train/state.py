"""What a training system keeps besides its model's weights: the steps those weights started from
(init_from a voice) and, optionally, an average of the weights (tts.train.ema.WeightAverage).

Both systems (tts.train.acoustic, tts.train.vocoder) mix this in before L.LightningModule."""

from __future__ import annotations

import contextlib
import math
from contextlib import ExitStack
from typing import ContextManager, Optional

import torch

from tts.train.ema import WeightAverage


class SystemState:
    """``self.init_steps``: steps the weights had when the run started from another voice;
    ``self.ema``: the weight average or None. The average is updated after every optimizer step,
    swapped in for validation (its loss and media are of what the voice exports) and saved in and
    restored from checkpoints with the steps."""

    def init_state(self, model: torch.nn.Module, *, ema_decay: Optional[float]) -> None:
        self.init_steps = 0
        self.ema = WeightAverage(model, decay=ema_decay) if ema_decay else None
        self._ema_swap = ExitStack()

    def averaged_weights(self) -> ContextManager:
        """``with system.averaged_weights(): ...`` runs with the weights the voice exports."""
        return self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext()

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update()

    def on_validation_epoch_start(self) -> None:
        self._ema_swap.enter_context(self.averaged_weights())

    def on_validation_epoch_end(self) -> None:
        self._ema_swap.close()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["init_steps"] = self.init_steps
        if self.ema is not None:
            checkpoint["weight_average"] = self.ema.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.init_steps = int(checkpoint.get("init_steps", 0))
        if self.ema is not None and "weight_average" in checkpoint:
            self.ema.load_state_dict(checkpoint["weight_average"])
        self._take_the_recipes_lr(checkpoint)

    def _take_the_recipes_lr(self, checkpoint: dict) -> None:
        """A resumed run trains at the learning rate its command gives: the schedule's peak is
        restored from the checkpoint (its base_lrs) unless it is replaced here, which would keep
        the old rate however the command set it."""
        lr = self.train_config.lr
        schedulers = checkpoint.get("lr_schedulers") or []
        old = next((b for sched in schedulers for b in sched.get("base_lrs", ()) if not math.isclose(b, lr)), None)
        if old is None:
            return
        for sched in schedulers:
            sched["base_lrs"] = [lr] * len(sched.get("base_lrs", ()))
        for state in checkpoint.get("optimizer_states") or []:
            for group in state.get("param_groups", ()):
                group["lr"] = group["lr"] * lr / old
                group["initial_lr"] = lr
        _say(f"learning rate {old:g} -> {lr:g} (the command's) from the resumed step on")


def _say(message: str) -> None:
    from lightning.pytorch.utilities import rank_zero_only

    rank_zero_only(print)(message, flush=True)
