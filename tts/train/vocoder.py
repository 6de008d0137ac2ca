"""The vocoder training system: WaveNet likelihood, optimiser, schedule and validation audio."""

from __future__ import annotations

import dataclasses
import math
from typing import Union

import lightning as L
import torch

from tts.config import AudioConfig, VocoderTrainConfig, WaveNetConfig, from_dict
from tts.models.wavenet import WaveNet
from tts.train.state import SystemState
from tts.train.schedule import warmup_exp_decay

# Seconds of audio generated from the first validation batch and logged to TensorBoard.
VAL_AUDIO_SECONDS = 0.5


def _config(cls, value):
    """A config dataclass, or the plain dict it was saved as in a checkpoint's hyperparameters."""
    return value if isinstance(value, cls) else from_dict(cls, dict(value))


class WaveNetSystem(SystemState, L.LightningModule):
    """Trains a WaveNet on batches of random segments (tts.data.SegmentDataset):
    {"audio": (B, S * hop) float32 in [-1, 1], "mel": (B, n_mels, S) float32}.

    The loss is the mean negative log-likelihood per sample in nats (cross-entropy over mu-law
    classes, or the discretized mixture-of-logistics NLL). Hyperparameters are saved as plain
    dicts, so checkpoints unpickle without this package's classes. Gradient clipping is the
    Trainer's (gradient_clip_val).
    """

    def __init__(self, *, audio: Union[AudioConfig, dict], model: Union[WaveNetConfig, dict],
                 train: Union[VocoderTrainConfig, dict]):
        super().__init__()
        audio, model = _config(AudioConfig, audio), _config(WaveNetConfig, model)
        train = _config(VocoderTrainConfig, train)
        self.save_hyperparameters({"audio": dataclasses.asdict(audio), "model": dataclasses.asdict(model),
                                   "train": dataclasses.asdict(train)})
        self.audio, self.model_config, self.train_config = audio, model, train
        self.model = WaveNet(model, n_mels=audio.n_mels, hop_length=audio.hop_length, audio=audio)
        if train.trainable == "conditioning":
            learning = {id(p) for p in self.model.conditioning_parameters()}
            for p in self.model.parameters():
                p.requires_grad_(id(p) in learning)
        self._loss = self.batch_loss
        self.init_state(self.model, ema_decay=train.ema_decay)

    def forward(self, batch: dict) -> torch.Tensor:
        """Teacher-forced output (B, out_channels, S * hop)."""
        return self.model(batch["audio"], batch["mel"])

    def batch_loss(self, audio: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
        """Mean NLL per sample of audio (B, T) given mel (B, n_mels, F)."""
        return self.model.nll(self.model(audio, mel), audio)

    def compile_model(self) -> None:
        """torch.compile the training loss: the whole teacher-forced network and its likelihood
        fuse into one graph (the segments have one fixed shape, so it compiles once)."""
        from tts.models.lpc import keep_out_of_compiled_graphs
        from tts.train import inductor_fix

        keep_out_of_compiled_graphs()
        inductor_fix.apply()
        self._loss = torch.compile(self.batch_loss)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch["audio"], batch["mel"])
        B = batch["audio"].shape[0]
        self.log("train/loss", loss, batch_size=B, prog_bar=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=B)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss = self.model.nll(self(batch), batch["audio"])
        self.log("val/loss", loss, batch_size=batch["audio"].shape[0], sync_dist=True, prog_bar=True)
        if batch_idx == 0 and self.trainer.is_global_zero:
            self._log_audio(batch)

    def _log_audio(self, batch: dict) -> None:
        """Generate ~VAL_AUDIO_SECONDS from the first utterance's mel with the fast sampler and
        log it beside the target, to TensorBoard only (other loggers, or none, skip this)."""
        from lightning.pytorch.loggers import TensorBoardLogger

        writers = [lg.experiment for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        if not writers:
            return
        hop, rate = self.audio.hop_length, self.audio.sample_rate
        frames = min(batch["mel"].shape[2], max(1, math.ceil(VAL_AUDIO_SECONDS * rate / hop)))
        mel = batch["mel"][:1, :, :frames].detach().float()
        with torch.autocast(device_type=mel.device.type, enabled=False):
            wav = self.model.generate(mel, seed=0, backend="fast")
        step = self.global_step
        writers[0].add_audio("val/generated", wav[0].cpu().clamp(-1, 1)[None], step, sample_rate=rate)
        writers[0].add_audio("val/target", batch["audio"][0, : frames * hop].detach().float().cpu()[None], step,
                             sample_rate=rate)

    def configure_optimizers(self) -> dict:
        t = self.train_config
        optimizer = torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=t.lr, weight_decay=t.weight_decay)
        scheduler = warmup_exp_decay(optimizer, lr=t.lr, min_lr=t.min_lr, warmup_steps=t.warmup_steps,
                                     decay_steps=t.decay_steps, start_step=self.init_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}
