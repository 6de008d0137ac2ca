"""Checkpoints a killed or damaged run can always come back from.

    STAGE/checkpoints/last.ckpt        the newest checkpoint
    STAGE/checkpoints/last.prev.ckpt   the one before it (kept until a newer last.ckpt is complete)
    STAGE/checkpoints/best.ckpt        the best validation loss so far

Every file is serialised in memory, written to a temporary file beside its path and renamed into
place (tts.audio.atomic_write), so a kill at any moment leaves whole files only, plus at worst one
``.last.ckpt.*.tmp``, which the next start removes. A checkpoint damaged afterwards (a truncated
copy, a full disk, a 0-byte file) is set aside at the next start and the newest intact one is
resumed from, with a warning; with none intact the run stops with one line.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any, Optional

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from tts.audio import atomic_write
from tts.errors import TTSError

log = logging.getLogger(__name__)

LAST = "last.ckpt"
PREVIOUS = "last.prev.ckpt"
BEST = "best.ckpt"
DAMAGED_SUFFIX = ".damaged"


class CheckpointError(TTSError):
    """No checkpoint of a stage can be resumed from; the message names the files and what to do."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint whole or not at all; before a new last.ckpt replaces the old one,
    the old one becomes last.prev.ckpt, so one damaged file never loses the run."""

    def save_checkpoint(self, checkpoint: dict, path: Any, storage_options: Optional[Any] = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()  # serialised in memory first: a failure leaves nothing on disk
        torch.save(checkpoint, buffer)
        data = buffer.getvalue()
        if path.name == LAST and path.is_file():
            # The new file is written in full before anything is renamed; a kill between the two
            # renames leaves last.prev.ckpt alone, which resume() then takes.
            atomic_write(path.with_name(f".{LAST}.new"), data)
            path.replace(path.with_name(PREVIOUS))
            path.with_name(f".{LAST}.new").replace(path)
        else:
            atomic_write(path, data)


def remove_stale_files(directory: Path) -> list[Path]:
    """Delete what a killed write left in a checkpoint directory (``.NAME.*.tmp``, ``.last.ckpt.new``);
    only this stage writes there, so nothing in flight is touched. Returns what was removed."""
    removed = []
    if directory.is_dir():
        for path in directory.iterdir():
            if path.name.startswith(".") and (path.name.endswith(".tmp") or path.name == f".{LAST}.new"):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def checkpoint_step(path: Path) -> int:
    """The global step of an intact checkpoint; raises ValueError (with the reason) otherwise."""
    if path.stat().st_size == 0:
        raise ValueError("0 bytes")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for a broken file
        raise ValueError(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("global_step"), int) \
            or "state_dict" not in checkpoint:
        raise ValueError("not a training checkpoint (no global_step or state_dict)")
    return checkpoint["global_step"]


def resume_point(directory: Path, *, stage: str, is_global_zero: bool = True) -> Optional[tuple[Path, int]]:
    """The checkpoint a stage resumes from, as (path, step): the intact one of last.ckpt,
    last.prev.ckpt and best.ckpt with the highest step; None for a stage that has none yet.

    Damaged ones are renamed NAME.damaged (by rank 0) with a warning, so that the next save does
    not keep a damaged last.ckpt as last.prev.ckpt. Raises CheckpointError when files exist but
    none is intact."""
    if is_global_zero:
        for path in remove_stale_files(directory):
            log.info("%s: removed %s, left by a write that was killed", stage, path)
    intact, damaged = [], []
    for name in (LAST, PREVIOUS, BEST):
        path = directory / name
        if not path.is_file():
            continue
        try:
            intact.append((checkpoint_step(path), name == LAST, path))
        except (ValueError, OSError) as err:
            damaged.append((path, str(err)))
    for path, reason in damaged:
        if is_global_zero:
            path.replace(path.with_name(path.name + DAMAGED_SUFFIX))
            log.warning("%s: %s is damaged (%s); set aside as %s%s", stage, path, reason, path.name, DAMAGED_SUFFIX)
    if not intact:
        if damaged:
            listed = "; ".join(f"{p.name}: {reason}" for p, reason in damaged)
            raise CheckpointError(f"{stage}: no intact checkpoint in {directory} ({listed}); delete {directory} "
                                  f"to train the stage from the start")
        return None
    step, _, path = max(intact)
    if damaged and is_global_zero:
        log.warning("%s: resuming from the newest intact checkpoint, %s at step %d", stage, path, step)
    return path, step
