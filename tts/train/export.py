"""Voices from training systems and their checkpoints.

A stage that finishes exports its weights into the run directory (tts.train.run). ``tts export
RUN_DIR -o OUT`` makes a voice from the checkpoints instead, so a run can be listened to while it
trains, after it was stopped, or at its best validation loss:

    export_checkpoints(run_dir, out_dir, checkpoint="last" | "best") -> {part: Exported}

Each part is rebuilt from the settings saved in its checkpoint (not from recipe.yaml, which a
resumed run may have changed since) and written as the stage itself would write it: the weight
average where the run keeps one, and the steps counted on from a voice it started from. A part
with no checkpoint is copied from the run's own export when there is one, so that OUT is a whole
voice. OUT is built in a temporary directory beside it and renamed into place: a failure leaves
nothing behind, and an existing directory is never written into.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import lightning as L

from tts.audio import _umask
from tts.card import PARTS, load_card, read_card, update_card
from tts.config import ConfigError
from tts.train.checkpoints import BEST, resume_point
from tts.voice import export_part

CHECKPOINTS = ("last", "best")


@dataclass(frozen=True)
class Exported:
    steps: int
    source: str  # the checkpoint's file name, or "export" for a part copied from the run's own export


def export_system(system: L.LightningModule, voice_dir: Path, part: str, *, steps: int,
                  symbols: Optional[dict] = None) -> None:
    """Write a training system's model as ``part`` of the voice in ``voice_dir``: its weight
    average where it keeps one (tts.train.state), else the trained weights."""
    with system.averaged_weights():
        export_part(voice_dir, part, system.model, audio=system.audio, config=system.model_config, steps=steps,
                    symbols=symbols)


def _system_class(part: str) -> type:
    if part == "acoustic":
        from tts.train.acoustic import TacotronSystem

        return TacotronSystem
    from tts.train.vocoder import WaveNetSystem

    return WaveNetSystem


def _checkpoint(run_dir: Path, part: str, which: str) -> Optional[Path]:
    directory = run_dir / part / "checkpoints"
    if which == "best":
        return directory / BEST if (directory / BEST).is_file() else None
    # read-only here: damaged files are skipped, not set aside (the run may be training)
    point = resume_point(directory, stage=part, is_global_zero=False)
    return None if point is None else point[0]


def _export_checkpoint(path: Path, part: str, out_dir: Path) -> int:
    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        system = _system_class(part)(**checkpoint["hyper_parameters"])
        system.load_state_dict(checkpoint["state_dict"])
    except Exception as err:  # a checkpoint of another version or a damaged file: the user's to see
        raise ConfigError(f"cannot read {path} ({str(err).splitlines()[0] if str(err) else type(err).__name__})") from None
    system.on_load_checkpoint(checkpoint)
    steps = system.init_steps + int(checkpoint["global_step"])
    symbols = checkpoint["hyper_parameters"].get("symbols")
    export_system(system, out_dir, part, steps=steps, symbols=symbols)
    return steps


def copy_part(voice_dir: Path, part: str, out_dir: Path) -> Optional[int]:
    """Copy ``part`` of the voice (or run) in ``voice_dir``, its weights and card entry (with the
    symbol table for the acoustic part), into ``out_dir``; its steps, or None when it has none."""
    if not (voice_dir / "voice.json").is_file():
        return None
    card = load_card(voice_dir)
    if getattr(card, part) is None:
        return None
    theirs = read_card(voice_dir)
    weights = card.weights(part)
    shutil.copy2(weights, out_dir / weights.name)

    def record(card: dict) -> None:
        card[part] = theirs[part]
        if part == "acoustic" and "symbols" in theirs:
            card["symbols"] = theirs["symbols"]

    update_card(out_dir, record)
    return int(theirs[part]["steps"])


def export_checkpoints(run_dir: Path, out_dir: Path, *, checkpoint: str = "last") -> dict[str, Exported]:
    """Make the voice directory ``out_dir`` from the training run in ``run_dir``: each stage's
    newest intact checkpoint ("last") or its best by validation loss ("best"). Raises ConfigError
    (one line) for a directory that is not a run, an ``out_dir`` that exists, or a checkpoint that
    cannot be read."""
    if checkpoint not in CHECKPOINTS:
        raise ConfigError(f"checkpoint must be one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: no such run directory")
    if out_dir.exists():
        raise ConfigError(f"{out_dir} already exists; name a new directory for the voice")
    sources = {part: _checkpoint(run_dir, part, checkpoint) for part in PARTS}
    if not any(sources.values()):
        kind = "best.ckpt" if checkpoint == "best" else "checkpoints"
        raise ConfigError(f"{run_dir} has no {kind} in acoustic/checkpoints or vocoder/checkpoints "
                          f"(is it a `tts train` run directory?)")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        exported = {}
        for part, path in sources.items():
            if path is not None:
                exported[part] = Exported(_export_checkpoint(path, part, building), path.name)
            else:
                steps = copy_part(run_dir, part, building)
                if steps is not None:
                    exported[part] = Exported(steps, "export")
        building.chmod(0o777 & ~_umask())  # as a plain mkdir would make it, not mkdtemp's 0700
        building.rename(out_dir)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return exported
