"""`tts train`: one run directory holds a whole voice, trained stage by stage.

    RUN_DIR/recipe.yaml                 the resolved recipe (refused on resume if model or audio changed)
    RUN_DIR/voice.json                  the voice card: audio config, symbols, model configs, steps
    RUN_DIR/acoustic.safetensors        exported after the acoustic stage (what `tts synth` loads)
    RUN_DIR/vocoder.safetensors         exported after the vocoder stage
    RUN_DIR/{acoustic,vocoder}/checkpoints/{last,best}.ckpt   Lightning checkpoints, written atomically
    RUN_DIR/{acoustic,vocoder}/logs/    TensorBoard

Running the same command again continues each unfinished stage from its last checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import signal
import time
from pathlib import Path
from typing import Optional

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from tts.audio import atomic_write
from tts.card import load_card
from tts.config import ConfigError, Recipe, recipe_to_dict
from tts.data import CorpusDataModule, load_item, prepare_corpus, read_rows
from tts.train.checkpoints import AtomicCheckpointIO, resume_point  # noqa: F401 (AtomicCheckpointIO: also imported from here)
from tts.train.export import export_system

log = logging.getLogger(__name__)

# Sections whose change makes old checkpoints meaningless.
MODEL_SECTIONS = ("audio", "acoustic", "vocoder")
# Model fields that act only while training: a run may change them on resume, and a run started
# from a voice (init_from) may set them otherwise than the voice was trained with, e.g. to go on
# with noise injection; every other model field must stay as the weights were trained.
TRAINING_ONLY = frozenset({"acoustic.dropout", "acoustic.decoder_dropout",
                           "vocoder.dropout", "vocoder.noise_injection"})


class SaveOnInterrupt(Callback):
    """Ctrl-C or SIGTERM (which Lightning turns into an exception) still saves the last checkpoint."""

    def __init__(self, path: Path):
        self.path = path

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if trainer.global_step > 0:
            trainer.save_checkpoint(self.path)
            if trainer.is_global_zero:
                log.warning("interrupted at step %d; saved %s (run the same command to resume)",
                            trainer.global_step, self.path)


class StopAfter(Callback):
    """trainer.max_minutes: ends the stage once this process has trained that long; the fit then
    saves last.ckpt and the stage exports, as at max_steps. Rank 0's clock decides for every rank."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60.0
        self.start = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.strategy.broadcast(time.monotonic() - self.start >= self.seconds):
            if not trainer.should_stop and trainer.is_global_zero:
                log.info("trainer.max_minutes=%g reached at step %d", self.seconds / 60, trainer.global_step)
            trainer.should_stop = True


class SaveEvery(Callback):
    """trainer.checkpoint_every_minutes: also saves last.ckpt once that long has passed since the
    last save (by this callback or at start), so a run killed without warning (SIGKILL, a machine
    taken away) loses at most those minutes however slow its steps. Rank 0's clock decides."""

    def __init__(self, minutes: float, path: Path):
        self.seconds, self.path = minutes * 60.0, path
        self.last = time.monotonic()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.last = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, *args) -> None:
        if trainer.strategy.broadcast(time.monotonic() - self.last >= self.seconds):
            trainer.save_checkpoint(self.path)
            self.last = time.monotonic()


def _has_trained(run_dir: Path, stage: str) -> bool:
    """Whether ``stage`` (acoustic or vocoder) has weights in ``run_dir``: a checkpoint or an export."""
    return (run_dir / f"{stage}.safetensors").is_file() or any((run_dir / stage / "checkpoints").glob("*.ckpt"))


def _check_compatible(run_dir: Path, recipe: Recipe) -> None:
    """Refuse to go on with a run whose trained weights no longer fit its recipe: a model section
    (acoustic, vocoder) changed since that stage was trained here, or the audio section once either
    was. A section whose model has no weights here yet may change: the acoustic stage of an old run
    resumes under a recipe whose vocoder has since been redesigned, and the vocoder then starts
    afresh with the new one."""
    from omegaconf import OmegaConf

    saved_path = run_dir / "recipe.yaml"
    if not saved_path.is_file():
        return
    saved = OmegaConf.to_container(OmegaConf.load(saved_path))
    current = recipe_to_dict(recipe)
    trained = {stage: _has_trained(run_dir, stage) for stage in ("acoustic", "vocoder")}
    changed = []
    for section in MODEL_SECTIONS:
        if not (any(trained.values()) if section == "audio" else trained[section]):
            continue
        for key, value in current[section].items():
            old = saved.get(section, {}).get(key)
            if isinstance(value, tuple):
                value = list(value)
            if old != value and f"{section}.{key}" not in TRAINING_ONLY:
                changed.append(f"{section}.{key}: {old} -> {value}")
    if changed:
        raise ConfigError(f"{run_dir} was trained with other settings ({'; '.join(changed)}); "
                          f"use a new run_dir or the original values")


def _save_recipe(run_dir: Path, recipe: Recipe) -> None:
    from omegaconf import OmegaConf

    atomic_write(run_dir / "recipe.yaml", OmegaConf.to_yaml(OmegaConf.create(recipe_to_dict(recipe))).encode())


def _symbols(run_dir: Path, init_from: Optional[str] = None) -> dict:
    """The run's symbol table: the one it started with, else that of the voice it starts from,
    else the frontend's default for a new run."""
    from tts.text import SymbolTable

    for directory in (run_dir, Path(init_from) if init_from else None):
        if directory is not None and (directory / "voice.json").is_file():
            symbols = load_card(directory).symbols
            if symbols is not None:
                return symbols
    if init_from and not Path(init_from).is_dir():
        raise ConfigError(f"init_from={init_from}: no such voice directory")
    return SymbolTable.default().to_dict()


def _validate_models(recipe: Recipe, symbols: dict) -> None:
    """Build the stages' models on the meta device (no memory, no time), so a setting the
    models refuse fails here, before anything is trained or written."""
    from tts.models.tacotron import Tacotron
    from tts.models.wavenet import WaveNet

    try:
        with torch.device("meta"):
            if recipe.stage in ("acoustic", "all"):
                Tacotron(recipe.acoustic, n_symbols=len(symbols["symbols"]), n_mels=recipe.audio.n_mels,
                         pad_id=int(symbols["pad_id"]))
            if recipe.stage in ("vocoder", "all"):
                WaveNet(recipe.vocoder, n_mels=recipe.audio.n_mels, hop_length=recipe.audio.hop_length, audio=recipe.audio)
    except (ValueError, RuntimeError) as err:
        raise ConfigError(str(err).splitlines()[0]) from None


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 matrix work natively (AVX512-BF16 or AMX): only then is bf16
    autocast faster than fp32 here; elsewhere it is emulated and slower."""
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(check is not None and check() for check in checks):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags


def _on_cpu(recipe: Recipe) -> bool:
    accelerator = {"cuda": "gpu"}.get(recipe.trainer.accelerator, recipe.trainer.accelerator)
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator=gpu but no CUDA device is visible; use trainer.accelerator=cpu")
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def resolve_precision(recipe: Recipe) -> str:
    """The Lightning precision a run trains in: the recipe's, except bf16 on a CPU without native
    bf16, which falls back to fp32 with one log line."""
    precision = recipe.trainer.precision
    if precision.startswith("bf16") and _on_cpu(recipe) and not cpu_has_bf16():
        log.info("this CPU has no native bf16 (avx512_bf16 or AMX): training in fp32 instead of %s", precision)
        return "32-true"
    if precision == "16-mixed" and _on_cpu(recipe):
        raise ConfigError("trainer.precision=16-mixed needs a GPU; on the CPU use bf16-mixed or 32-true")
    return precision


# Where torch.compile measured faster (scripts/bench_train.py, docs/training.md): "auto" compiles
# these stages on the CPU. On the GPU it stays off until it has been measured there.
COMPILE_MEASURED_FASTER_ON_CPU = {"vocoder": True, "acoustic": False}


def resolve_compile(recipe: Recipe, stage: str) -> bool:
    value = str(recipe.trainer.compile).lower()
    if value == "auto":
        return _on_cpu(recipe) and COMPILE_MEASURED_FASTER_ON_CPU[stage]
    return value == "true"


def _make_trainer(recipe: Recipe, stage_dir: Path, *, max_steps: int, grad_clip: float) -> L.Trainer:
    from lightning.pytorch.loggers import TensorBoardLogger

    t = recipe.trainer
    accelerator = {"cuda": "gpu"}.get(t.accelerator, t.accelerator)
    _on_cpu(recipe)  # refuses gpu without CUDA
    checkpoints = stage_dir / "checkpoints"
    callbacks = [
        ModelCheckpoint(dirpath=checkpoints, filename="last", every_n_train_steps=t.checkpoint_every_steps,
                        save_top_k=1, enable_version_counter=False),
        ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/loss", mode="min", save_top_k=1,
                        auto_insert_metric_name=False, enable_version_counter=False, save_on_train_epoch_end=False),
        SaveOnInterrupt(checkpoints / "last.ckpt"),
    ]
    if t.max_minutes is not None:
        callbacks.append(StopAfter(t.max_minutes))
    if t.checkpoint_every_minutes is not None:
        callbacks.append(SaveEvery(t.checkpoint_every_minutes, checkpoints / "last.ckpt"))
    return L.Trainer(
        max_steps=max_steps,
        accelerator=accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        precision=resolve_precision(recipe),
        gradient_clip_val=grad_clip,
        val_check_interval=t.val_every_steps,
        check_val_every_n_epoch=None,
        num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_steps,
        logger=TensorBoardLogger(save_dir=str(stage_dir), name="logs", version="", default_hp_metric=False),
        callbacks=callbacks,
        plugins=[AtomicCheckpointIO()],
        use_distributed_sampler=False,  # the data module shards its own samplers
        enable_model_summary=False,
    )


def _fit(trainer: L.Trainer, system: L.LightningModule, datamodule: CorpusDataModule, stage_dir: Path, stage: str) -> None:
    last = stage_dir / "checkpoints" / "last.ckpt"
    ckpt_path = None
    resume = resume_point(last.parent, stage=stage, is_global_zero=trainer.is_global_zero)
    if resume is not None:
        ckpt_path, step = str(resume[0]), resume[1]
        if trainer.is_global_zero:
            print(f"{stage}: resuming from {ckpt_path} at step {step}", flush=True)
    try:
        trainer.fit(system, datamodule=datamodule, ckpt_path=ckpt_path)
    except BaseException:
        # Lightning turns SIGTERM into a SystemExit with status 0, and when the signal went to the
        # whole process group a killed data worker surfaces as a RuntimeError first; either way
        # SaveOnInterrupt has saved last.ckpt, and the exit status must still say "terminated".
        if getattr(trainer, "received_sigterm", False):
            raise SystemExit(128 + signal.SIGTERM) from None
        raise
    trainer.save_checkpoint(last)


def _cache_root(recipe: Recipe, run_dir: Path) -> Path:
    return Path(recipe.data.cache_dir) if recipe.data.cache_dir else run_dir / "cache"


def train_acoustic(recipe: Recipe, run_dir: Path, symbols: dict) -> None:
    from tts.train.acoustic import TacotronSystem

    stage_dir = run_dir / "acoustic"
    cfg = recipe.acoustic_train
    system = TacotronSystem(audio=recipe.audio, model=recipe.acoustic, train=cfg, symbols=symbols)
    _start_from_voice(recipe, stage_dir, "acoustic", system)
    if resolve_compile(recipe, "acoustic"):
        system.compile_model()
    datamodule = CorpusDataModule(data=recipe.data, audio=recipe.audio, symbols=symbols,
                                  cache_root=_cache_root(recipe, run_dir), stage="acoustic", batch_size=cfg.batch_size)
    trainer = _make_trainer(recipe, stage_dir, max_steps=cfg.max_steps, grad_clip=cfg.grad_clip)
    _fit(trainer, system, datamodule, stage_dir, "acoustic")
    if trainer.is_global_zero:
        export_system(system, run_dir, "acoustic", steps=system.init_steps + trainer.global_step, symbols=symbols)


def train_vocoder(recipe: Recipe, run_dir: Path, symbols: dict) -> None:
    from tts.train.vocoder import WaveNetSystem

    stage_dir = run_dir / "vocoder"
    cfg = recipe.vocoder_train
    gta_dir = make_gta_mels(recipe, run_dir, symbols) if cfg.gta else None
    system = WaveNetSystem(audio=recipe.audio, model=recipe.vocoder, train=cfg)
    _start_from_voice(recipe, stage_dir, "vocoder", system)
    if resolve_compile(recipe, "vocoder"):
        system.compile_model()
    datamodule = CorpusDataModule(data=recipe.data, audio=recipe.audio, symbols=symbols,
                                  cache_root=_cache_root(recipe, run_dir), stage="vocoder", batch_size=cfg.batch_size,
                                  segment_frames=cfg.segment_frames, gta_dir=gta_dir, gta_share=cfg.gta_share,
                                  mel_blur=(cfg.mel_blur_frames, cfg.mel_blur_bands))
    trainer = _make_trainer(recipe, stage_dir, max_steps=cfg.max_steps, grad_clip=cfg.grad_clip)
    _fit(trainer, system, datamodule, stage_dir, "vocoder")
    if trainer.is_global_zero:
        export_system(system, run_dir, "vocoder", steps=system.init_steps + trainer.global_step)


def _start_from_voice(recipe: Recipe, stage_dir: Path, part: str, system: L.LightningModule) -> None:
    """init_from=VOICE_DIR: a stage with no checkpoint yet starts from that voice's weights for
    ``part``, and its step count carries on. The voice's audio and model settings must be the
    recipe's (a checkpoint, once written, wins: resuming never re-reads the voice)."""
    if not recipe.init_from or (stage_dir / "checkpoints" / "last.ckpt").is_file():
        return
    from safetensors.torch import load_file

    voice_dir = Path(recipe.init_from)
    card = load_card(voice_dir)  # checked: a wrong type or unknown field is a VoiceError naming it
    theirs_part = getattr(card, part)
    if theirs_part is None:
        raise ConfigError(f"init_from={voice_dir} has no trained {part} model")
    config = getattr(recipe, part)
    # fields added since the voice was trained took their defaults in the card view
    theirs = {"audio": dataclasses.asdict(theirs_part.audio), part: dataclasses.asdict(theirs_part.config)}
    ours = {"audio": dataclasses.asdict(recipe.audio), part: dataclasses.asdict(config)}
    differ = [(f"{section}.{key}", theirs[section][key], value)
              for section, values in ours.items() for key, value in values.items() if theirs[section][key] != value]
    changed = []
    for name, old, value in differ:
        if name in TRAINING_ONLY:
            log.info("%s: %r in the voice, %r from here on (training only)", name, old, value)
        else:
            changed.append(f"{name}: {old!r} in the voice, {value!r} in the recipe")
    if changed:
        raise ConfigError(f"init_from={voice_dir}: its {part} model was trained with other settings "
                          f"({'; '.join(changed)}); use the voice's settings")
    weights = card.weights(part)
    try:
        state = load_file(str(weights))
        system.model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except Exception as err:  # a damaged or mismatched file: the user's to fix
        raise ConfigError(f"init_from: cannot load {weights} ({str(err).splitlines()[0]})") from None
    system.init_steps = theirs_part.steps
    log.info("%s: starting from %s (%d steps)", part, weights, system.init_steps)



@torch.no_grad()
def make_gta_mels(recipe: Recipe, run_dir: Path, symbols: dict) -> Path:
    """Ground-truth-aligned mels: the trained acoustic model run teacher-forced over the corpus,
    so the vocoder learns from the mels it will be given at synthesis. Saved as ID.npy."""
    from tts.voice import Voice

    if not (run_dir / "acoustic.safetensors").is_file():
        raise ConfigError(f"vocoder_train.gta=true needs a trained acoustic model in {run_dir}; "
                          f"run stage=acoustic first or set vocoder_train.gta=false")
    voice = Voice.load(run_dir, device="cuda" if torch.cuda.is_available() else "cpu", vocoder=False)
    # Named by the weights themselves: runs that share a cache_dir, or one acoustic model trained on,
    # never read each other's mels. Each file is written whole (an interrupted run leaves no part).
    part = voice.card.acoustic
    digest = part.sha256 or hashlib.sha256(voice.card.weights("acoustic").read_bytes()).hexdigest()
    out_dir = _cache_root(recipe, run_dir) / f"gta-step{part.steps}-{digest[:12]}"
    out_dir.mkdir(parents=True, exist_ok=True)
    items = prepare_corpus(recipe.data, recipe.audio, symbols, _cache_root(recipe, run_dir), progress=False)
    model = voice.acoustic
    for item in items:
        target = out_dir / f"{item.id}.npy"
        if target.is_file():
            continue
        cached = load_item(item)
        text = torch.from_numpy(cached["ids"].astype(np.int64))[None].to(voice.device)
        mel = torch.from_numpy(cached["mel"])[None].to(voice.device)
        out = model(text, torch.tensor([text.shape[1]], device=voice.device), mel,
                    torch.tensor([mel.shape[2]], device=voice.device))
        buffer = io.BytesIO()
        np.save(buffer, out["mel_post"][0].float().cpu().numpy())
        atomic_write(target, buffer.getvalue())
    return out_dir


def train(recipe: Recipe) -> Path:
    """Train the stages the recipe asks for into recipe.run_dir; returns the run directory."""
    read_rows(recipe.data.root)  # fail fast on a wrong data.root; bad rows are all named later, in one pass
    run_dir = Path(recipe.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_compatible(run_dir, recipe)
    symbols = _symbols(run_dir, recipe.init_from)
    _validate_models(recipe, symbols)
    _save_recipe(run_dir, recipe)  # only once the whole recipe has been checked
    L.seed_everything(recipe.trainer.seed, workers=True, verbose=False)
    if recipe.stage in ("acoustic", "all"):
        train_acoustic(recipe, run_dir, symbols)
    if recipe.stage in ("vocoder", "all"):
        train_vocoder(recipe, run_dir, symbols)
    return run_dir
