"""`tts batch`: synthesize every item of a file into OUTDIR/ID.wav (or ID.flac, ID.mp3, ... with
``format``; tts.formats), with a manifest.

Input formats (by suffix, else by content):
    .jsonl            one {"id": ..., "text": ...} object per line ("id" optional)
    id|text lines     .csv or .psv, or any file whose every line has a '|'; LJSpeech's
                      id|text|normalized rows work too (the second field is read)
    plain text        .txt, or anything else: one utterance per line; ids are the line numbers

OUTDIR/manifest.jsonl gets one line per finished or failed item: id, path (relative to OUTDIR),
seconds, rtf (compute seconds per audio second of the batch the item was in), error (null when it
worked). The last line of an id wins.

Resuming: a rerun skips every item whose last record has no error and whose file, in the format
asked for, exists; failed items are tried again. Each file is written to a temporary name and
renamed into place, and each manifest line is one append, so an interrupted run loses at most the
batch it was in.

Failures: an item that cannot be spoken, or whose batch fails in the model and then fails again
on its own, is recorded with its error and the run goes on.

Several processes: ``rank``/``world`` split the items (sorted by length, every world-th one) in a
way that does not depend on what is already done, so processes that start at different times, or
a rerun with another process count, never write the same item twice. ``run_devices`` spawns one
process per GPU; under a launcher (torchrun, SLURM via torchrun) every process reads RANK,
WORLD_SIZE and LOCAL_RANK instead (``launcher_rank``), so the same command scales to many nodes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from tts.errors import TTSError
from tts.rows import split_row
from tts.synth import SynthesisSettings

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BatchInputError(TTSError):
    """The input file or output directory as a whole cannot be used; one line for the user."""


@dataclass(frozen=True)
class BatchItem:
    id: str  # the audio is OUTDIR/ID.FORMAT; items broken in the input get "#lineN" ids that no file can have
    text: str
    line: int
    error: Optional[str] = None  # a problem found while reading: recorded, not synthesized


@dataclass(frozen=True)
class BatchSettings(SynthesisSettings):
    """How to synthesize (tts.synth.SynthesisSettings) plus what else `tts batch` takes besides
    INPUT and OUTDIR. Picklable, so that spawned processes get it whole; validated on construction."""

    voice: Optional[str] = None  # voice or run directory; None: the default voice
    device: Optional[str] = None  # None: cuda:LOCAL_RANK when CUDA is there, else cpu
    progress: bool = True
    normalizer: str = "builtin"  # tts.text.Frontend's: builtin or nemo
    format: str = "wav"  # tts.formats: each item is written to OUTDIR/ID.FORMAT

    def __post_init__(self) -> None:
        super().__post_init__()
        from tts.formats import check_format

        check_format(self.format, None)  # and again at the voice's rate, once it is loaded

    @property
    def synthesis(self) -> SynthesisSettings:
        return SynthesisSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(SynthesisSettings)})


def read_items(path: os.PathLike | str, *, require_ids: bool = False) -> list[BatchItem]:
    """Items of an input file, in file order. Problems of single lines (bad JSON, an unsafe or
    repeated id) are kept in ``BatchItem.error``; a file that cannot be read at all raises
    BatchInputError. ``require_ids`` refuses plain text (ids made up from line numbers)."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchInputError(f"input {path} does not exist") from None
    except IsADirectoryError:
        raise BatchInputError(f"input {path} is a directory; give a .txt, .csv or .jsonl file") from None
    except UnicodeDecodeError as err:
        raise BatchInputError(f"cannot read input {path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise BatchInputError(f"cannot read input {path}: {err.strerror}") from None
    lines = [(n, line.strip()) for n, line in enumerate(raw.splitlines(), start=1) if line.strip()]
    if not lines:
        raise BatchInputError(f"input {path} has no text")
    if path.suffix == ".jsonl":
        items = [_jsonl_item(n, line) for n, line in lines]
    elif path.suffix in (".csv", ".psv") or (path.suffix != ".txt" and all("|" in line for _, line in lines)):
        items = [_csv_item(n, line) for n, line in lines]
    elif require_ids:
        raise BatchInputError(f"{path}: expected id|text lines (line {lines[0][0]} has no '|')")
    else:
        width = len(str(lines[-1][0]))
        items = [BatchItem(f"{n:0{width}d}", line, n) for n, line in lines]
    seen: dict[str, int] = {}
    checked = []
    for item in items:
        error = item.error
        if error is None and not _SAFE_ID.match(item.id):
            error = f"line {item.line}: id {item.id!r} is not a safe file name (letters, digits, '.', '_', '-')"
        elif error is None and item.id in seen:
            error = f"line {item.line}: id {item.id!r} already used on line {seen[item.id]}"
            # recorded under its own key, so it never shadows the first item's record
            checked.append(BatchItem(f"{item.id}#line{item.line}", item.text, item.line, error))
            continue
        seen.setdefault(item.id, item.line)
        checked.append(BatchItem(item.id, item.text, item.line, error))
    return checked


def _jsonl_item(n: int, line: str) -> BatchItem:
    try:
        obj = json.loads(line)
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise ValueError('expected an object with a "text" string')
        return BatchItem(str(obj.get("id", f"line{n}")), obj["text"], n)
    except ValueError as err:
        return BatchItem(f"#line{n}", "", n, f"line {n}: not a valid JSONL item ({err})")


def _csv_item(n: int, line: str) -> BatchItem:
    """An id|text[|normalized] row, read by the corpus row parser; its id is checked by read_items'
    own rule (a file name in OUTDIR, as for JSONL ids)."""
    try:
        uid, _, raw, _ = split_row(line)
    except ValueError as err:
        return BatchItem(f"#line{n}", "", n, f"line {n}: {err}")
    # The text as written, not a normalized third column: the frontend normalizes it as it does
    # every other input, and `tts eval` compares the recognizer against the same column.
    return BatchItem(uid, raw, n)


def prepare_outdir(path: os.PathLike | str) -> Path:
    """Create OUTDIR if needed and check that files can be written in it."""
    outdir = Path(path)
    if outdir.exists() and not outdir.is_dir():
        raise BatchInputError(f"output {outdir} is a file; give a directory")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=outdir):
            pass
    except OSError as err:
        raise BatchInputError(f"cannot write to output directory {outdir}: {err.strerror}") from None
    return outdir


def read_manifest(outdir: Path) -> dict[str, dict]:
    """The last record of each id (later lines win: a retried item replaces its failure)."""
    records = {}
    path = Path(outdir) / MANIFEST
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                records[record["id"]] = record
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill: its item is simply redone
    return records


def append_manifest(outdir: Path, record: dict) -> None:
    # One write() on an O_APPEND file: lines from concurrent processes never interleave.
    data = (json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n").encode()
    fd = os.open(Path(outdir) / MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def close_cut_line(outdir: Path) -> None:
    """End a manifest line cut short by a kill, so the next record starts on a line of its own."""
    path = Path(outdir) / MANIFEST
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                append_line = os.open(path, os.O_WRONLY | os.O_APPEND)
                try:
                    os.write(append_line, b"\n")
                finally:
                    os.close(append_line)


def is_done(item: BatchItem, records: dict[str, dict], outdir: Path, fmt: str = "wav") -> bool:
    record = records.get(item.id)
    return (record is not None and record.get("error") is None and record.get("path") == f"{item.id}.{fmt}"
            and (Path(outdir) / f"{item.id}.{fmt}").is_file())


def pending(items: Sequence[BatchItem], outdir: Path, fmt: str = "wav") -> list[BatchItem]:
    """The items not yet written to OUTDIR/ID.FMT (another format's file does not count)."""
    records = read_manifest(outdir)
    return [item for item in items if not is_done(item, records, outdir, fmt)]


def shard(items: Sequence[BatchItem], rank: int, world: int) -> list[BatchItem]:
    """This process's share: items sorted by text length, every ``world``-th from ``rank``. It
    depends only on the items, never on progress, so concurrent or resumed processes agree."""
    if not 0 <= rank < world:
        raise ValueError(f"need 0 <= rank < world, got rank {rank} of {world}")
    ordered = sorted(items, key=lambda item: (len(item.text), item.line))
    return ordered[rank::world]


def _speak(voice, texts: list[str], settings: BatchSettings) -> list:
    """Speech or Exception per text. A batch that fails in the model is retried one text at a
    time, so one bad item costs only itself."""
    from tts.synth import synthesize_texts

    try:
        return synthesize_texts(voice, texts, settings.synthesis, errors="return")
    except Exception as err:  # noqa: BLE001 - recorded per item; the run must go on
        if len(texts) == 1:
            return [err]
        log.debug("a batch of %d failed (%s); retrying its items one at a time", len(texts), err)
        return [result for text in texts for result in _speak(voice, [text], settings)]


def _error_line(err: Exception) -> str:
    """One line for the manifest: a text's own message, or the exception type and first line."""
    from tts.text import TextError

    message = (str(err).splitlines() or [""])[0]
    return message if isinstance(err, TextError) else f"{type(err).__name__}: {message}"


def run_batch(voice, items: Sequence[BatchItem], outdir: Path, settings: BatchSettings, *, rank: int = 0,
              world: int = 1) -> dict:
    """Synthesize this process's pending share of ``items`` with a loaded ``voice``.

    Returns {"done", "failed", "skipped": item counts, "seconds": audio written, "elapsed": wall seconds}.
    """
    from tqdm import tqdm

    outdir = Path(outdir)
    began = time.perf_counter()
    close_cut_line(outdir)
    mine = shard(items, rank, world)
    todo = pending(mine, outdir, settings.format)
    counts = {"done": 0, "failed": 0, "skipped": len(mine) - len(todo), "seconds": 0.0, "elapsed": 0.0}
    for item in todo:
        if item.error is not None:
            append_manifest(outdir, {"id": item.id, "path": None, "seconds": None, "rtf": None, "error": item.error})
            counts["failed"] += 1
    todo = [item for item in todo if item.error is None]
    bar = tqdm(total=len(todo), unit="item", desc=f"batch {rank + 1}/{world}" if world > 1 else "batch",
               position=rank if world > 1 else None, disable=not settings.progress, dynamic_ncols=True)
    for start in range(0, len(todo), settings.batch_size):
        group = todo[start:start + settings.batch_size]
        group_began = time.perf_counter()
        results = _speak(voice, [item.text for item in group], settings)
        compute = time.perf_counter() - group_began
        audio_seconds = sum(r.seconds for r in results if not isinstance(r, Exception))
        for item, result in zip(group, results):
            if isinstance(result, Exception):
                append_manifest(outdir, {"id": item.id, "path": None, "seconds": None, "rtf": None,
                                         "error": _error_line(result)})
                counts["failed"] += 1
                continue
            name = f"{item.id}.{settings.format}"
            result.save(outdir / name, fmt=settings.format)
            append_manifest(outdir, {"id": item.id, "path": name, "seconds": round(result.seconds, 3),
                                     "rtf": round(compute / max(audio_seconds, 1e-9), 4), "error": None})
            counts["done"] += 1
            counts["seconds"] += result.seconds
        bar.update(len(group))
    bar.close()
    counts["elapsed"] = time.perf_counter() - began
    return counts


def launcher_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) from a torchrun-style launcher's RANK, WORLD_SIZE and
    LOCAL_RANK; (0, 1, 0) without one."""
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    try:
        rank, world, local = (int(os.environ.get(name, default)) for name, default in zip(names, ("0", "1", "0")))
    except ValueError:
        shown = ", ".join(f"{name}={os.environ.get(name)!r}" for name in names)
        raise BatchInputError(f"launcher variables must be integers: {shown}") from None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise BatchInputError(f"launcher variables out of range: RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local}")
    return rank, world, local


def process_device(settings: BatchSettings, local_rank: int) -> Optional[str]:
    """The device of one process: --device when given, else its own GPU under a launcher."""
    if settings.device is not None:
        return settings.device
    import torch

    return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"


def run_process(items: Sequence[BatchItem], outdir: Path, settings: BatchSettings, *, rank: int, world: int,
                device: Optional[str]) -> dict:
    """Load the voice in this process and run its share."""
    from tts.api import Synthesizer

    voice = Synthesizer.load(settings.voice, device=device, vocoder=settings.vocoder,
                             normalizer=settings.normalizer).voice
    from tts.formats import check_format

    check_format(settings.format, voice.sample_rate)
    return run_batch(voice, items, outdir, settings, rank=rank, world=world)


def _spawned(rank: int, items: list, outdir: Path, settings: BatchSettings, world: int) -> None:
    if settings.device == "cpu":  # the cores are shared out between the processes
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    run_process(items, outdir, settings, rank=rank, world=world,
                device="cpu" if settings.device == "cpu" else f"cuda:{rank}")


def run_devices(items: Sequence[BatchItem], outdir: Path, settings: BatchSettings, devices: int) -> None:
    """One process per GPU (cuda:0 .. cuda:devices-1), each taking its share; waits for all.
    With ``--device cpu``, N processes on the CPU instead (the same path, testable without GPUs).
    A process that dies raises here after the others have finished what they can."""
    import torch
    import torch.multiprocessing as mp

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if settings.device not in (None, "cpu"):
        raise BatchInputError("--devices N puts process k on cuda:k; leave --device out (or --device cpu "
                              "for N processes on the CPU)")
    if settings.device is None and devices > visible:
        raise BatchInputError(f"--devices {devices} needs {devices} CUDA devices; {visible} visible"
                              + ("" if visible else " (on a CPU-only machine leave --devices out, "
                                                    "or add --device cpu for N CPU processes)"))
    from tts.api import Synthesizer

    Synthesizer.load(settings.voice, device="cpu", vocoder=settings.vocoder,  # a bad voice fails here, once
                     normalizer=settings.normalizer)
    try:
        mp.spawn(_spawned, args=(list(items), Path(outdir), settings, devices), nprocs=devices, join=True)
    except (mp.ProcessRaisedException, mp.ProcessExitedException) as err:  # the message ends with the cause
        last = [line for line in str(err).splitlines() if line.strip()][-1]
        raise BatchInputError(f"a process failed ({last.strip()}); finished items are kept, "
                              f"run the same command to go on") from None


def summarize(items: Sequence[BatchItem], outdir: Path, fmt: str = "wav") -> dict:
    """What the manifest says now about ``items`` written as ``fmt``: {"done", "failed", "seconds", "failed_ids"}."""
    records = read_manifest(outdir)
    done = [item for item in items if is_done(item, records, outdir, fmt)]
    failed = [item.id for item in items if item.id in records and records[item.id].get("error") is not None]
    return {"done": len(done), "failed": len(failed), "failed_ids": failed,
            "seconds": sum(records[item.id]["seconds"] for item in done)}
