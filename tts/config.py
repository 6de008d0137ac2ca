"""Typed configuration: the schema of every recipe.

A recipe is recipes/NAME.yaml (one section per dataclass below) merged over these defaults, then
``key=value`` overrides from the command line. OmegaConf checks every key and type against the
schema, so a typo is an error instead of a silently ignored setting.

This module imports no torch: ``tts --help`` and ``tts phonemize`` stay fast.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from tts.errors import TTSError

RECIPES_DIR = Path(__file__).resolve().parent.parent / "recipes"
STAGES = ("acoustic", "vocoder", "all")
PRECISIONS = ("bf16-mixed", "16-mixed", "32-true", "32", "bf16-true")
VOCODER_TRAINABLE = ("all", "conditioning")  # vocoder_train.trainable
# A global setting given on the command line applies to each stage whose own setting is not also
# given there: `trainer.max_steps=4` must stop every stage after 4 steps even though a recipe sets
# acoustic_train.max_steps (the stage keys default to the global ones by interpolation).
STAGE_OVERRIDES = {"trainer.max_steps": ("acoustic_train.max_steps", "vocoder_train.max_steps"),
                   "data.batch_size": ("acoustic_train.batch_size", "vocoder_train.batch_size")}


class ConfigError(TTSError):
    """A recipe or override that does not fit the schema; the message is meant for the user."""


@dataclass(frozen=True)
class AudioConfig:
    """The one description of audio and mel features shared by data, models and vocoders."""

    sample_rate: int = 22050
    n_fft: int = 1024
    hop_length: int = 256
    win_length: int = 1024
    n_mels: int = 80
    f_min: float = 0.0
    f_max: float = 8000.0
    # Mels are natural-log magnitudes; the floor keeps log() finite in silence.
    log_floor: float = 1e-5

    def __post_init__(self) -> None:
        if self.win_length > self.n_fft:
            raise ConfigError(f"audio.win_length ({self.win_length}) must not exceed audio.n_fft ({self.n_fft})")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ConfigError(
                f"audio.f_min={self.f_min} and audio.f_max={self.f_max} must satisfy "
                f"0 <= f_min < f_max <= sample_rate/2 = {self.sample_rate / 2}"
            )
        for name in ("sample_rate", "n_fft", "hop_length", "win_length", "n_mels"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"audio.{name} must be positive, got {getattr(self, name)}")
        if self.log_floor <= 0:
            raise ConfigError(f"audio.log_floor must be positive, got {self.log_floor}")


@dataclass(frozen=True)
class DataConfig:
    root: str = "???"  # a corpus in the LJSpeech layout: metadata.csv and wavs/
    batch_size: int = 32
    num_workers: int = 2
    val_size: int = 64  # utterances held out for validation (deterministic split)
    seed: int = 1234
    skip_bad: bool = False  # skip (and count) bad rows instead of stopping
    resample: bool = False  # resample wavs at another rate instead of refusing them
    max_seconds: float = 15.0  # longer utterances are left out of training
    cache_dir: Optional[str] = None  # default: <run_dir>/cache


@dataclass(frozen=True)
class TacotronConfig:
    """Tacotron 2 sizes. n_symbols and n_mels are not here: they come from the symbol table and audio."""

    embedding_dim: int = 512
    encoder_conv_layers: int = 3
    encoder_kernel_size: int = 5
    encoder_dim: int = 512
    attention_dim: int = 128
    location_filters: int = 32
    location_kernel_size: int = 31
    prenet_dim: int = 256
    decoder_dim: int = 1024
    decoder_layers: int = 2
    reduction: int = 2  # mel frames emitted per decoder step
    postnet_dim: int = 512
    postnet_layers: int = 5
    postnet_kernel_size: int = 5
    dropout: float = 0.5  # encoder convs and postnet
    prenet_dropout: float = 0.5  # kept on at inference, as in the paper
    decoder_dropout: float = 0.1
    stop_threshold: float = 0.5
    # Inference length bound: at most this many mel frames per input symbol (plus a margin).
    max_frames_per_symbol: float = 10.0
    # Attention may move at most this many symbols forward per decoder step at inference.
    attention_window: int = 3
    # Inference length bound per sentence: ceil(max_frames_per_symbol * L) + max_frames_margin frames.
    max_frames_margin: int = 10


@dataclass(frozen=True)
class WaveNetConfig:
    """WaveNet sizes. The conditioning width comes from audio.n_mels; the upsampling product
    must equal audio.hop_length."""

    layers: int = 20
    stacks: int = 2
    kernel_size: int = 2
    residual_channels: int = 64
    gate_channels: int = 128
    skip_channels: int = 64
    upsample_scales: tuple[int, ...] = (4, 4, 4, 4)
    cond_kernel_size: int = 3  # conv over mel frames before upsampling (odd; 1 = per frame only)
    output: str = "mulaw"  # "mulaw": 256-way softmax; "mol": mixture of logistics on 16-bit audio
    mulaw_channels: int = 256
    mixtures: int = 10
    dropout: float = 0.0
    # "lpc": linear prediction from the conditioning mel takes the spectral envelope, and the
    # network models only the excitation (docs/wavenet.md). "none": the plain WaveNet.
    excitation: str = "none"
    lpc_order: int = 16
    preemphasis: float = 0.85  # s'_t = s_t - preemphasis * s_(t-1); de-emphasised at the output
    # Training only: noise added to the history the prediction is made from, in mu-law steps
    # (the targets are recomputed against it, as LPCNet does against exposure bias); 0 = off.
    noise_injection: float = 0.0

    def __post_init__(self) -> None:
        if self.output not in ("mulaw", "mol"):
            raise ConfigError(f"vocoder.output must be 'mulaw' or 'mol', got {self.output!r}")
        if self.layers % self.stacks:
            raise ConfigError(f"vocoder.layers ({self.layers}) must be a multiple of vocoder.stacks ({self.stacks})")
        if self.excitation not in ("none", "lpc"):
            raise ConfigError(f"vocoder.excitation must be 'none' or 'lpc', got {self.excitation!r}")
        if not 1 <= self.lpc_order <= 64:
            raise ConfigError(f"vocoder.lpc_order must be in 1 .. 64, got {self.lpc_order}")
        if not 0.0 <= self.preemphasis < 1.0:
            raise ConfigError(f"vocoder.preemphasis must be in [0, 1), got {self.preemphasis}")
        if not 0.0 <= self.noise_injection <= 64.0:
            raise ConfigError(f"vocoder.noise_injection must be in [0, 64] mu-law steps, got {self.noise_injection}")


@dataclass(frozen=True)
class AcousticTrainConfig:
    max_steps: int = "${trainer.max_steps}"  # type: ignore[assignment]
    batch_size: int = "${data.batch_size}"  # type: ignore[assignment]
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 1000
    decay_steps: int = 50000  # exponential decay from lr towards min_lr after warm-up
    weight_decay: float = 1e-6
    grad_clip: float = 1.0
    stop_pos_weight: float = 5.0  # stop frames are rare: weight them up in the BCE
    guided_attention_weight: float = 1.0
    guided_attention_sigma: float = 0.2
    guided_attention_decay_steps: int = 10000  # the weight halves this often
    val_sentences: int = 3  # validation sentences logged as images and audio
    mel_loss: str = "l1"  # on mel before and after the postnet: "l1", "mse" or "l1+mse"
    # Exponential moving average of the weights (bias-corrected), used for validation and export,
    # as vocoder_train.ema_decay; null (the default) exports the trained weights.
    ema_decay: Optional[float] = None


@dataclass(frozen=True)
class VocoderTrainConfig:
    max_steps: int = "${trainer.max_steps}"  # type: ignore[assignment]
    batch_size: int = "${data.batch_size}"  # type: ignore[assignment]
    segment_frames: int = 32  # mel frames per training segment (x hop_length samples)
    gta: bool = False  # condition on ground-truth-aligned mels from the trained acoustic model
    # With gta=true: the share of training segments conditioned on the GTA mels, drawn per segment;
    # the rest keep the true mels, so the vocoder learns the acoustic model's mels while it goes on
    # seeing the ones it learned waveforms from. Validation uses the GTA mels throughout.
    gta_share: float = 1.0
    # What learns: "all", or "conditioning": only the mel path (the upsampler and each layer's
    # conditioning projection), the rest frozen; for adapting a trained vocoder to another
    # model's mels (with gta=true) without wearing down what it learned about waveforms.
    trainable: str = "all"
    # Blur each training segment's conditioning mel by a Gaussian whose sigma is drawn per item,
    # uniformly up to these (in frames, and in mel bands); 0 turns it off. Tacotron's mels are
    # smoother than true ones, so a vocoder that must render them can learn to from true audio and
    # blurred true mels (docs/wavenet.md measures how smooth). Validation mels are not blurred.
    mel_blur_frames: float = 0.0
    mel_blur_bands: float = 0.0
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_steps: int = 500
    decay_steps: int = 100000
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    # Exponential moving average of the weights (bias-corrected), used for validation and export;
    # null turns it off.
    ema_decay: Optional[float] = 0.999


@dataclass(frozen=True)
class TrainerConfig:
    max_steps: int = 100000
    accelerator: str = "auto"  # cpu | gpu | auto
    devices: Any = "auto"  # a count, or "auto"
    num_nodes: int = 1
    # bf16 autocast on the GPU and on CPUs with native bf16 (avx512_bf16 or AMX); elsewhere fp32.
    precision: str = "bf16-mixed"
    # torch.compile the training step: "auto" compiles where it measured faster (docs/training.md).
    compile: str = "auto"
    val_every_steps: int = 1000
    log_every_steps: int = 50
    checkpoint_every_steps: int = 1000
    # Also save last.ckpt whenever this many minutes have passed since the last such save: slow
    # steps (a CPU) may take longer than that between checkpoint_every_steps, and a run killed
    # without warning loses what came after the last save. None: by steps only.
    checkpoint_every_minutes: Optional[float] = 10.0
    # Stop each stage after this many minutes of training in this run of `tts train` (then checkpoint
    # and export, as at max_steps); a resumed run gets the minutes again. None: no time limit.
    max_minutes: Optional[float] = None
    seed: int = 1234


@dataclass(frozen=True)
class Recipe:
    name: str = "custom"
    run_dir: str = "runs/${name}"
    stage: str = "all"
    audio: AudioConfig = field(default_factory=AudioConfig)
    data: DataConfig = field(default_factory=DataConfig)
    acoustic: TacotronConfig = field(default_factory=TacotronConfig)
    acoustic_train: AcousticTrainConfig = field(default_factory=AcousticTrainConfig)
    vocoder: WaveNetConfig = field(default_factory=WaveNetConfig)
    vocoder_train: VocoderTrainConfig = field(default_factory=VocoderTrainConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    # A voice directory (a run or a shipped voice) whose weights start each stage that has no
    # checkpoint yet; its card's step counts carry on in this run's card.
    init_from: Optional[str] = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        t = self.trainer
        if t.accelerator not in ("cpu", "gpu", "cuda", "auto"):
            raise ConfigError(f"trainer.accelerator must be cpu, gpu or auto, got {t.accelerator!r}")
        if t.precision not in PRECISIONS:
            raise ConfigError(f"trainer.precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}")
        if str(t.compile).lower() not in ("auto", "true", "false"):
            raise ConfigError(f"trainer.compile must be auto, true or false, got {t.compile!r}")
        for name in ("max_steps", "val_every_steps", "log_every_steps", "checkpoint_every_steps"):
            if getattr(t, name) < 1:
                raise ConfigError(f"trainer.{name} must be at least 1, got {getattr(t, name)}")
        for name in ("max_minutes", "checkpoint_every_minutes"):
            value = getattr(t, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0 and math.isfinite(value)):
                raise ConfigError(f"trainer.{name} must be a positive number of minutes or null, got {value}")
        scales = math.prod(self.vocoder.upsample_scales)
        if scales != self.audio.hop_length:
            raise ConfigError(f"vocoder.upsample_scales {list(self.vocoder.upsample_scales)} multiply to {scales}, "
                              f"but audio.hop_length is {self.audio.hop_length}: they must be equal")
        if any(s < 1 for s in self.vocoder.upsample_scales):
            raise ConfigError(f"vocoder.upsample_scales must be positive, got {list(self.vocoder.upsample_scales)}")
        a = self.acoustic
        for name in ("encoder_kernel_size", "location_kernel_size", "postnet_kernel_size"):
            value = getattr(a, name)
            if value < 1 or value % 2 == 0:
                raise ConfigError(f"acoustic.{name} must be a positive odd number, got {value}")
        for name in ("dropout", "prenet_dropout", "decoder_dropout"):
            if not 0 <= getattr(a, name) < 1:
                raise ConfigError(f"acoustic.{name} must be in [0, 1), got {getattr(a, name)}")
        if not 0 <= self.vocoder.dropout < 1:
            raise ConfigError(f"vocoder.dropout must be in [0, 1), got {self.vocoder.dropout}")
        if self.vocoder.kernel_size < 2:
            raise ConfigError(f"vocoder.kernel_size must be at least 2, got {self.vocoder.kernel_size}")
        if self.vocoder.cond_kernel_size < 1 or self.vocoder.cond_kernel_size % 2 == 0:
            raise ConfigError(f"vocoder.cond_kernel_size must be a positive odd number, got {self.vocoder.cond_kernel_size}")
        for name in ("mel_blur_frames", "mel_blur_bands"):
            value = getattr(self.vocoder_train, name)
            if not (math.isfinite(value) and 0 <= value <= 10):
                raise ConfigError(f"vocoder_train.{name} must be between 0 and 10, got {value}")
        share = self.vocoder_train.gta_share
        if not (math.isfinite(share) and 0 < share <= 1):
            raise ConfigError(f"vocoder_train.gta_share must be in (0, 1], got {share}")
        if share < 1 and not self.vocoder_train.gta:
            raise ConfigError("vocoder_train.gta_share mixes ground-truth-aligned mels in: "
                              "it needs vocoder_train.gta=true")
        if self.vocoder_train.trainable not in VOCODER_TRAINABLE:
            raise ConfigError(f"vocoder_train.trainable must be one of {', '.join(VOCODER_TRAINABLE)}, "
                              f"got {self.vocoder_train.trainable!r}")
        for section in ("acoustic_train", "vocoder_train"):
            cfg = getattr(self, section)
            if cfg.max_steps < 1 or cfg.batch_size < 1:
                raise ConfigError(f"{section}.max_steps and {section}.batch_size must be at least 1, "
                                  f"got {cfg.max_steps} and {cfg.batch_size}")
            if not 0 <= cfg.min_lr <= cfg.lr:
                raise ConfigError(f"{section}: need 0 <= min_lr <= lr, got lr={cfg.lr}, min_lr={cfg.min_lr}")
        for section in ("acoustic_train", "vocoder_train"):
            decay = getattr(self, section).ema_decay
            if decay is not None and not 0 < decay < 1:
                raise ConfigError(f"{section}.ema_decay must be in (0, 1) or null, got {decay}")
        if self.data.val_size < 1:
            raise ConfigError(f"data.val_size must be at least 1, got {self.data.val_size}")


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def _recipe_path(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown recipe {name!r}; available: {', '.join(available_recipes())} (or a path to a .yaml file)")
    return path


def load_recipe(name: str, overrides: list[str] = ()) -> Recipe:
    """recipes/NAME.yaml (or a path to a yaml file) merged over the schema, then ``key=value`` overrides.

    Raises ConfigError naming the offending key or value.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    path = _recipe_path(name)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"expected key=value, got {item!r}")
    overrides = list(overrides)
    given = {item.split("=", 1)[0].strip() for item in overrides}
    for key, stage_keys in STAGE_OVERRIDES.items():
        value = next((item.split("=", 1)[1] for item in reversed(overrides) if item.split("=", 1)[0].strip() == key), None)
        if value is not None:
            overrides += [f"{stage_key}={value}" for stage_key in stage_keys if stage_key not in given]
    try:
        schema = OmegaConf.structured(Recipe)
        merged = OmegaConf.merge(schema, {"name": path.stem}, OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as err:
        raise ConfigError(_omegaconf_message(err)) from None


def _omegaconf_message(err: Exception) -> str:
    key = getattr(err, "full_key", None)
    first = str(err).splitlines()[0]
    if type(err).__name__ == "ConfigKeyError" and key:
        return f"unknown key {key!r}"
    if type(err).__name__ == "MissingMandatoryValue" and key:
        return f"{key} is required: pass {key}=..."
    return f"{key}: {first}" if key else first


def recipe_to_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


def from_dict(cls, data: dict):
    """Rebuild a config dataclass from a plain dict (as saved beside a model), refusing unknown keys."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {', '.join(unknown)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            value = data[f.name]
            kwargs[f.name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)
