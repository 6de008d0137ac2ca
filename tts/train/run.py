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

import io
import logging
import signal
from pathlib import Path
from typing import Any, Optional

import lightning as L
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from tts.audio import atomic_write
from tts.config import ConfigError, Recipe, recipe_to_dict
from tts.data import CorpusDataModule, load_item, prepare_corpus, read_metadata
from tts.voice import export_part, read_card

log = logging.getLogger(__name__)

# Sections whose change makes old checkpoints meaningless.
MODEL_SECTIONS = ("audio", "acoustic", "vocoder")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it and renames it into place, so a run
    killed at any moment leaves the previous checkpoint intact, never a truncated one."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Optional[Any] = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()  # serialised in memory first: a failure leaves nothing on disk
        torch.save(checkpoint, buffer)
        atomic_write(path, buffer.getvalue())


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


def _check_compatible(run_dir: Path, recipe: Recipe) -> None:
    """Refuse to resume a run whose model or audio sections have changed since it started."""
    from omegaconf import OmegaConf

    saved_path = run_dir / "recipe.yaml"
    if not saved_path.is_file():
        return
    saved = OmegaConf.to_container(OmegaConf.load(saved_path))
    current = recipe_to_dict(recipe)
    changed = []
    for section in MODEL_SECTIONS:
        for key, value in current[section].items():
            old = saved.get(section, {}).get(key)
            if isinstance(value, tuple):
                value = list(value)
            if old != value:
                changed.append(f"{section}.{key}: {old} -> {value}")
    if changed:
        raise ConfigError(f"{run_dir} was trained with other settings ({'; '.join(changed)}); "
                          f"use a new run_dir or the original values")


def _save_recipe(run_dir: Path, recipe: Recipe) -> None:
    from omegaconf import OmegaConf

    atomic_write(run_dir / "recipe.yaml", OmegaConf.to_yaml(OmegaConf.create(recipe_to_dict(recipe))).encode())


def _symbols(run_dir: Path) -> dict:
    """The run's symbol table: the one it started with, or the frontend's default for a new run."""
    from tts.text import SymbolTable

    card = read_card(run_dir) if (run_dir / "voice.json").is_file() else {}
    if "symbols" in card:
        return card["symbols"]
    return SymbolTable.default().to_dict()


def _make_trainer(recipe: Recipe, stage_dir: Path, *, max_steps: int, grad_clip: float) -> L.Trainer:
    from lightning.pytorch.loggers import TensorBoardLogger

    t = recipe.trainer
    accelerator = {"cuda": "gpu"}.get(t.accelerator, t.accelerator)
    on_cpu = accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())
    if accelerator == "gpu" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator=gpu but no CUDA device is visible; use trainer.accelerator=cpu")
    checkpoints = stage_dir / "checkpoints"
    callbacks = [
        ModelCheckpoint(dirpath=checkpoints, filename="last", every_n_train_steps=t.checkpoint_every_steps,
                        save_top_k=1, enable_version_counter=False),
        ModelCheckpoint(dirpath=checkpoints, filename="best", monitor="val/loss", mode="min", save_top_k=1,
                        auto_insert_metric_name=False, enable_version_counter=False, save_on_train_epoch_end=False),
        SaveOnInterrupt(checkpoints / "last.ckpt"),
    ]
    return L.Trainer(
        max_steps=max_steps,
        accelerator=accelerator,
        devices=t.devices,
        num_nodes=t.num_nodes,
        precision="32-true" if on_cpu else t.precision,
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
    if last.is_file():
        step = torch.load(last, map_location="cpu", weights_only=False)["global_step"]
        if trainer.is_global_zero:
            print(f"{stage}: resuming from {last} at step {step}", flush=True)
        ckpt_path = str(last)
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
    datamodule = CorpusDataModule(data=recipe.data, audio=recipe.audio, symbols=symbols,
                                  cache_root=_cache_root(recipe, run_dir), stage="acoustic", batch_size=cfg.batch_size)
    trainer = _make_trainer(recipe, stage_dir, max_steps=cfg.max_steps, grad_clip=cfg.grad_clip)
    _fit(trainer, system, datamodule, stage_dir, "acoustic")
    if trainer.is_global_zero:
        export_part(run_dir, "acoustic", system.model, audio=recipe.audio, config=recipe.acoustic,
                    steps=trainer.global_step, symbols=symbols)


def train_vocoder(recipe: Recipe, run_dir: Path, symbols: dict) -> None:
    from tts.train.vocoder import WaveNetSystem

    stage_dir = run_dir / "vocoder"
    cfg = recipe.vocoder_train
    gta_dir = make_gta_mels(recipe, run_dir, symbols) if cfg.gta else None
    system = WaveNetSystem(audio=recipe.audio, model=recipe.vocoder, train=cfg)
    datamodule = CorpusDataModule(data=recipe.data, audio=recipe.audio, symbols=symbols,
                                  cache_root=_cache_root(recipe, run_dir), stage="vocoder", batch_size=cfg.batch_size,
                                  segment_frames=cfg.segment_frames, gta_dir=gta_dir)
    trainer = _make_trainer(recipe, stage_dir, max_steps=cfg.max_steps, grad_clip=cfg.grad_clip)
    _fit(trainer, system, datamodule, stage_dir, "vocoder")
    if trainer.is_global_zero:
        export_part(run_dir, "vocoder", system.model, audio=recipe.audio, config=recipe.vocoder,
                    steps=trainer.global_step)


@torch.no_grad()
def make_gta_mels(recipe: Recipe, run_dir: Path, symbols: dict) -> Path:
    """Ground-truth-aligned mels: the trained acoustic model run teacher-forced over the corpus,
    so the vocoder learns from the mels it will be given at synthesis. Saved as ID.npy."""
    from tts.voice import Voice

    if not (run_dir / "acoustic.safetensors").is_file():
        raise ConfigError(f"vocoder_train.gta=true needs a trained acoustic model in {run_dir}; "
                          f"run stage=acoustic first or set vocoder_train.gta=false")
    voice = Voice.load(run_dir, device="cuda" if torch.cuda.is_available() else "cpu", vocoder=False)
    steps = read_card(run_dir)["acoustic"]["steps"]
    out_dir = _cache_root(recipe, run_dir) / f"gta-step{steps}"
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
        np.save(target, out["mel_post"][0].float().cpu().numpy())
    return out_dir


def train(recipe: Recipe) -> Path:
    """Train the stages the recipe asks for into recipe.run_dir; returns the run directory."""
    read_metadata(recipe.data.root)  # fail fast, before any model is built, on a wrong data.root
    run_dir = Path(recipe.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_compatible(run_dir, recipe)
    _save_recipe(run_dir, recipe)
    L.seed_everything(recipe.trainer.seed, workers=True, verbose=False)
    symbols = _symbols(run_dir)
    if recipe.stage in ("acoustic", "all"):
        train_acoustic(recipe, run_dir, symbols)
    if recipe.stage in ("vocoder", "all"):
        train_vocoder(recipe, run_dir, symbols)
    return run_dir
