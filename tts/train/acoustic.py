"""The acoustic training system: Tacotron losses, optimiser, schedule and validation logging.

Pure functions (losses and alignment metrics) come first; they take padded tensors plus lengths
and are shared by the system, the tests and anything that wants to judge an alignment.
"""

from __future__ import annotations

import dataclasses
from typing import Union

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F

from tts.audio import mel_silence
from tts.config import AcousticTrainConfig, AudioConfig, TacotronConfig, from_dict
from tts.models.tacotron import Tacotron, lengths_to_mask
from tts.train.schedule import warmup_exp_decay
from tts.train.state import SystemState

MEL_LOSSES = ("l1", "mse", "l1+mse")


def decoder_lengths(mel_lengths: torch.Tensor, reduction: int) -> torch.Tensor:
    """Mel frames (B,) -> decoder steps (B,) = ceil(frames / reduction)."""
    return torch.div(mel_lengths + reduction - 1, reduction, rounding_mode="floor")


def guided_attention_loss(alignments: torch.Tensor, text_lengths: torch.Tensor, dec_lengths: torch.Tensor, *,
                          sigma: float) -> torch.Tensor:
    """Diagonal guided-attention penalty (Tachibana et al. 2018).

    alignments: (B, T_dec, L); text_lengths, dec_lengths: (B,). Each weight A[t, n] is penalised by
    W[t, n] = 1 - exp(-(n / N - t / T)^2 / (2 sigma^2)); the loss is the penalty summed over symbols
    and averaged over valid decoder steps, so it lies in [0, 1] whatever the sentence length
    (~0 for a diagonal alignment).
    """
    B, T, N = alignments.shape
    t = torch.arange(T, device=alignments.device, dtype=torch.float32)[None, :, None] / dec_lengths[:, None, None]
    n = torch.arange(N, device=alignments.device, dtype=torch.float32)[None, None, :] / text_lengths[:, None, None]
    penalty = 1.0 - torch.exp(-((n - t) ** 2) / (2.0 * sigma ** 2))
    mask = lengths_to_mask(dec_lengths, T)[:, :, None] & lengths_to_mask(text_lengths, N)[:, None, :]
    per_step = (alignments.float() * penalty * mask).sum(dim=2)  # (B, T)
    return per_step.sum() / lengths_to_mask(dec_lengths, T).sum().clamp(min=1)


def alignment_focus(alignments: torch.Tensor, text_lengths: torch.Tensor, mel_lengths: torch.Tensor, *,
                    reduction: int) -> float:
    """Mean over valid decoder steps of the largest attention weight: ~1 for a sharp alignment,
    1 / L for a flat one. alignments: (B, T_dec, L); lengths (B,) in symbols and mel frames."""
    steps = decoder_lengths(mel_lengths, reduction).clamp(max=alignments.shape[1])
    mask = lengths_to_mask(steps, alignments.shape[1])
    text_mask = lengths_to_mask(text_lengths, alignments.shape[2])[:, None, :]
    peaks = (alignments.float() * text_mask).amax(dim=2)
    return float((peaks * mask).sum() / mask.sum().clamp(min=1))


def diagonal_score(alignments: torch.Tensor, text_lengths: torch.Tensor, mel_lengths: torch.Tensor, *,
                   reduction: int) -> float:
    """Fraction of consecutive valid decoder steps whose most attended symbol does not move back:
    1.0 for a monotonic alignment (also for one stuck on a symbol: pair it with
    ``alignment_coverage``). alignments: (B, T_dec, L)."""
    steps = decoder_lengths(mel_lengths, reduction).clamp(max=alignments.shape[1])
    text_mask = lengths_to_mask(text_lengths, alignments.shape[2])[:, None, :]
    peaks = alignments.float().masked_fill(~text_mask, -1.0).argmax(dim=2)  # (B, T_dec)
    forward = peaks[:, 1:] >= peaks[:, :-1]
    pairs = lengths_to_mask((steps - 1).clamp(min=0), max(alignments.shape[1] - 1, 0))
    return float((forward & pairs).sum() / pairs.sum().clamp(min=1))


def alignment_coverage(alignments: torch.Tensor, text_lengths: torch.Tensor, mel_lengths: torch.Tensor, *,
                       reduction: int) -> float:
    """Fraction of valid symbols that are the most attended symbol of at least one valid decoder
    step: ~1 when every symbol gets spoken, low when attention stalls or stops early (which
    ``diagonal_score`` alone does not see). alignments: (B, T_dec, L)."""
    B, T, N = alignments.shape
    steps = decoder_lengths(mel_lengths, reduction).clamp(max=T)
    text_mask = lengths_to_mask(text_lengths, N)
    peaks = alignments.float().masked_fill(~text_mask[:, None, :], -1.0).argmax(dim=2)  # (B, T_dec)
    peaks = peaks.masked_fill(~lengths_to_mask(steps, T), N)  # invalid steps point past the end
    visited = torch.zeros(B, N + 1, dtype=torch.bool, device=alignments.device)
    visited.scatter_(1, peaks, True)
    return float((visited[:, :N] & text_mask).sum() / text_mask.sum().clamp(min=1))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """values (B, C, T), mask (B, 1, T) -> mean over valid entries."""
    mask = mask.to(values.dtype)
    return (values * mask).sum() / (mask.sum() * values.shape[1]).clamp(min=1)


def _config(cls, value):
    """A config dataclass, or the plain dict it was saved as in a checkpoint's hyperparameters."""
    return value if isinstance(value, cls) else from_dict(cls, dict(value))


class TacotronSystem(SystemState, L.LightningModule):
    """Trains a Tacotron on batches from tts.data.TextMelCollate:
    {"text": (B, L) long, "text_lengths": (B,), "mel": (B, n_mels, T), "mel_lengths": (B,), "ids": list[str]}.

    Hyperparameters are saved as plain dicts (config dataclasses as dicts, the symbol table as
    JSON data), so checkpoints unpickle without this package's classes.
    """

    def __init__(self, *, audio: Union[AudioConfig, dict], model: Union[TacotronConfig, dict],
                 train: Union[AcousticTrainConfig, dict], symbols: dict):
        super().__init__()
        audio, model, train = _config(AudioConfig, audio), _config(TacotronConfig, model), _config(AcousticTrainConfig, train)
        if not isinstance(symbols, dict) or "symbols" not in symbols or "pad_id" not in symbols:
            raise ValueError("symbols must be a symbol-table dict with keys 'symbols' and 'pad_id'")
        if train.mel_loss not in MEL_LOSSES:
            raise ValueError(f"acoustic_train.mel_loss must be one of {', '.join(MEL_LOSSES)}, got {train.mel_loss!r}")
        if train.guided_attention_decay_steps <= 0:
            raise ValueError(f"acoustic_train.guided_attention_decay_steps must be positive, "
                             f"got {train.guided_attention_decay_steps}")
        self.save_hyperparameters({"audio": dataclasses.asdict(audio), "model": dataclasses.asdict(model),
                                   "train": dataclasses.asdict(train), "symbols": symbols})
        self.audio, self.model_config, self.train_config = audio, model, train
        self.model = Tacotron(model, n_symbols=len(symbols["symbols"]), n_mels=audio.n_mels,
                              pad_id=int(symbols["pad_id"]))
        self.mel_pad_value = mel_silence(audio)
        self.init_state(self.model, ema_decay=train.ema_decay)

    def forward(self, batch: dict) -> dict:
        return self.model(batch["text"], batch["text_lengths"], batch["mel"], batch["mel_lengths"])

    def compile_model(self) -> None:
        """torch.compile the decoder step, where the time goes: the teacher-forced decoder is a
        Python loop of T / r steps, which compiles as one small graph (dynamic in batch and text
        length) instead of an unrolled loop; the encoder and postnet run once per batch."""
        from tts.train import inductor_fix

        inductor_fix.apply()
        self.model.decoder.step = torch.compile(self.model.decoder.step, dynamic=True)

    def guided_attention_weight(self, step: int) -> float:
        """The guided-attention weight halves every guided_attention_decay_steps steps."""
        t = self.train_config
        return t.guided_attention_weight * 0.5 ** (step / t.guided_attention_decay_steps)

    def _mel_loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        kind = self.train_config.mel_loss
        loss = pred.new_zeros(())
        if "l1" in kind:
            loss = loss + _masked_mean((pred - target).abs(), mask)
        if "mse" in kind:
            loss = loss + _masked_mean((pred - target) ** 2, mask)
        return loss

    def losses(self, batch: dict, out: dict, *, step: int) -> dict:
        """All loss terms for a batch and the model's teacher-forced output: "mel", "mel_post",
        "stop", "guided_attention" (unweighted), "guided_attention_weight" (a float) and the
        weighted sum "loss"."""
        mel, mel_lengths, text_lengths = batch["mel"], batch["mel_lengths"], batch["text_lengths"]
        r = self.model_config.reduction
        T = mel.shape[2]
        frame_mask = lengths_to_mask(mel_lengths, T)[:, None, :]
        target = mel.float()
        mel_loss = self._mel_loss(out["mel"].float(), target, frame_mask)
        post_loss = self._mel_loss(out["mel_post"].float(), target, frame_mask)
        # Stop target: 1 from the last frame on; frames filling the last decoder step's group count too.
        frames = torch.arange(T, device=mel.device)[None, :]
        stop_target = (frames >= mel_lengths[:, None] - 1).float()
        stop_mask = lengths_to_mask(decoder_lengths(mel_lengths, r) * r, T).float()
        stop_loss = F.binary_cross_entropy_with_logits(
            out["stop_logits"].float(), stop_target, weight=stop_mask, reduction="sum",
            pos_weight=torch.tensor(self.train_config.stop_pos_weight, device=mel.device),
        ) / stop_mask.sum().clamp(min=1)
        ga = guided_attention_loss(out["alignments"], text_lengths, decoder_lengths(mel_lengths, r),
                                   sigma=self.train_config.guided_attention_sigma)
        ga_weight = self.guided_attention_weight(step)
        total = mel_loss + post_loss + stop_loss + ga_weight * ga
        return {"loss": total, "mel": mel_loss, "mel_post": post_loss, "stop": stop_loss,
                "guided_attention": ga, "guided_attention_weight": ga_weight}

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        out = self(batch)
        losses = self.losses(batch, out, step=self.init_steps + self.global_step)
        B = batch["text"].shape[0]
        for name, value in losses.items():
            self.log(f"train/{name}", value, batch_size=B, prog_bar=name == "loss")
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], batch_size=B)
        return losses["loss"]

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        out = self(batch)
        losses = self.losses(batch, out, step=self.init_steps + self.global_step)
        B = batch["text"].shape[0]
        for name in ("loss", "mel", "mel_post", "stop", "guided_attention"):
            self.log(f"val/{name}", losses[name], batch_size=B, sync_dist=True, prog_bar=name == "loss")
        focus = alignment_focus(out["alignments"], batch["text_lengths"], batch["mel_lengths"],
                                reduction=self.model_config.reduction)
        self.log("val/alignment_focus", focus, batch_size=B, sync_dist=True)
        if batch_idx == 0 and self.trainer.is_global_zero:
            self._log_samples(batch, out)

    def _log_samples(self, batch: dict, out: dict) -> None:
        """Alignment and mel images, Griffin-Lim audio and the free-running alignment focus of the
        first few sentences, to TensorBoard only (other loggers get the scalar metrics)."""
        from lightning.pytorch.loggers import TensorBoardLogger

        writers = [lg.experiment for lg in self.loggers if isinstance(lg, TensorBoardLogger)]
        n = min(self.train_config.val_sentences, batch["text"].shape[0])
        if not writers or n < 1:
            return
        from tts.audio import griffin_lim

        writer, step, r = writers[0], self.global_step, self.model_config.reduction
        text, text_lengths = batch["text"][:n], batch["text_lengths"][:n]
        generator = torch.Generator(device=self.device)
        generator.manual_seed(0)
        inferred = self.model.infer(text, text_lengths, generator=generator, pad_value=self.mel_pad_value)
        writer.add_scalar("val/infer_alignment_focus",
                          alignment_focus(inferred["alignments"], text_lengths, inferred["mel_lengths"], reduction=r),
                          step)
        writer.add_scalar("val/infer_diagonal_score",
                          diagonal_score(inferred["alignments"], text_lengths, inferred["mel_lengths"], reduction=r),
                          step)
        writer.add_scalar("val/infer_alignment_coverage",
                          alignment_coverage(inferred["alignments"], text_lengths, inferred["mel_lengths"],
                                             reduction=r), step)
        for i in range(n):
            n_sym = int(text_lengths[i])
            t_len, i_len = int(batch["mel_lengths"][i]), int(inferred["mel_lengths"][i])
            target = batch["mel"][i, :, :t_len].float().cpu().numpy()
            teacher = out["mel_post"][i, :, :t_len].float().cpu().numpy()
            free = inferred["mel_post"][i, :, :i_len].float()
            writer.add_image(f"val/alignment/{i}", _plot_alignments(
                [out["alignments"][i, : -(-t_len // r), :n_sym].float().cpu().numpy(),
                 inferred["alignments"][i, : -(-i_len // r), :n_sym].float().cpu().numpy()],
                ["teacher-forced", f"inferred ({inferred['stop_reason'][i]})"]), step, dataformats="HWC")
            writer.add_image(f"val/mel/{i}", _plot_mels(
                [target, teacher, free.cpu().numpy()], ["target", "teacher-forced (postnet)", "inferred"]),
                step, dataformats="HWC")
            # Griffin-Lim's inverse STFT needs more than n_fft / 2 samples (an early model may stop at once).
            if (i_len - 1) * self.audio.hop_length > self.audio.n_fft // 2:
                wav = griffin_lim(free, self.audio)
                writer.add_audio(f"val/audio/{i}", wav.cpu()[None], step, sample_rate=self.audio.sample_rate)

    def configure_optimizers(self) -> dict:
        t = self.train_config
        optimizer = torch.optim.Adam(self.parameters(), lr=t.lr, betas=(0.9, 0.999), eps=1e-6,
                                     weight_decay=t.weight_decay)
        scheduler = warmup_exp_decay(optimizer, lr=t.lr, min_lr=t.min_lr, warmup_steps=t.warmup_steps,
                                     decay_steps=t.decay_steps, start_step=self.init_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step", "frequency": 1}}


def _plot_alignments(alignments: list[np.ndarray], titles: list[str]) -> np.ndarray:
    """(T_dec, L) arrays side by side."""
    from tts.plot import draw_alignment, figure, rgb_array

    fig = figure(5 * len(alignments), 4, dpi=80)
    for k, (alignment, title) in enumerate(zip(alignments, titles)):
        ax = fig.add_subplot(1, len(alignments), k + 1)
        fig.colorbar(draw_alignment(ax, alignment, title), ax=ax)
    return rgb_array(fig)


def _plot_mels(mels: list[np.ndarray], titles: list[str]) -> np.ndarray:
    """(n_mels, T) arrays stacked vertically."""
    from tts.plot import draw_mel, figure, rgb_array

    fig = figure(8, 2.5 * len(mels), dpi=80)
    for k, (mel, title) in enumerate(zip(mels, titles)):
        ax = fig.add_subplot(len(mels), 1, k + 1)
        fig.colorbar(draw_mel(ax, mel, title), ax=ax)
    return rgb_array(fig)
