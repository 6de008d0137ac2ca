"""`tts batch`: synthesize every item of a file into OUTDIR/ID.wav, with a manifest.

Input formats (by content and suffix):
    .jsonl            one {"id": ..., "text": ...} object per line ("id" optional)
    id|text lines     (.csv, .psv, or any file whose every line has a '|')
    plain text        one utterance per line; ids are made up from the line number

OUTDIR/manifest.jsonl gets one line per finished or failed item: id, path, seconds, rtf, error.
A rerun skips items already written; a failing item is recorded and the run goes on. With
``--devices N`` (or under a torchrun-style launcher setting RANK and WORLD_SIZE) each process takes
every N-th item.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

MANIFEST = "manifest.jsonl"
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class BatchInputError(ValueError):
    """The input file as a whole cannot be read; one line for the user."""


@dataclass(frozen=True)
class BatchItem:
    id: str
    text: str
    line: int
    error: Optional[str] = None  # a problem found while reading: recorded, not synthesized


def read_items(path: os.PathLike | str) -> list[BatchItem]:
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchInputError(f"input {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BatchInputError(f"cannot read input {path}: {err}") from None
    lines = [(n, line.strip()) for n, line in enumerate(raw.splitlines(), start=1) if line.strip()]
    if not lines:
        raise BatchInputError(f"input {path} has no text")
    if path.suffix == ".jsonl":
        items = [_jsonl_item(n, line) for n, line in lines]
    elif path.suffix in (".csv", ".psv") or all("|" in line for _, line in lines):
        items = [_csv_item(n, line) for n, line in lines]
    else:
        width = len(str(len(lines)))
        items = [BatchItem(f"{n:0{width}d}", line, n) for n, line in lines]
    seen: dict[str, int] = {}
    checked = []
    for item in items:
        error = item.error
        if error is None and not _SAFE_ID.match(item.id):
            error = f"id {item.id!r} is not a safe file name (letters, digits, '.', '_', '-')"
        elif error is None and item.id in seen:
            error = f"id {item.id!r} already used on line {seen[item.id]}"
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
        return BatchItem(f"line{n}", "", n, f"line {n}: not a valid JSONL item ({err})")


def _csv_item(n: int, line: str) -> BatchItem:
    if "|" not in line:
        return BatchItem(f"line{n}", "", n, f"line {n}: expected id|text")
    uid, text = line.split("|", 1)
    return BatchItem(uid.strip(), text.strip(), n)


def read_manifest(outdir: Path) -> dict[str, dict]:
    """The last record of each id (later lines win: a retried item replaces its failure)."""
    records = {}
    path = outdir / MANIFEST
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
                records[record["id"]] = record
            except (ValueError, KeyError):
                continue  # a line cut short by a kill: its item is simply redone
    return records


def append_manifest(outdir: Path, record: dict) -> None:
    # One write() on an O_APPEND file: lines from concurrent ranks never interleave.
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(outdir / MANIFEST, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def pending(items: list[BatchItem], outdir: Path) -> list[BatchItem]:
    done = read_manifest(outdir)
    return [item for item in items
            if not (item.id in done and done[item.id].get("error") is None and (outdir / f"{item.id}.wav").is_file())]


def run_batch(voice, items: list[BatchItem], outdir: Path, *, batch_size: int = 8, vocoder: str = "auto",
              seed: Optional[int] = None, rank: int = 0, world: int = 1, progress: bool = True,
              pause: float = 0.3) -> dict:
    """Synthesize this rank's share of the pending items; returns counts {done, failed, skipped, seconds}."""
    from tqdm import tqdm

    from tts.audio import save_wav
    from tts.synth import synthesize_texts

    todo = pending(items, outdir)
    skipped = len(items) - len(todo)
    mine = todo[rank::world]
    failed = [item for item in mine if item.error is not None]
    for item in failed:
        append_manifest(outdir, {"id": item.id, "path": None, "seconds": None, "rtf": None, "error": item.error})
    mine = sorted((item for item in mine if item.error is None), key=lambda item: len(item.text))
    counts = {"done": 0, "failed": len(failed), "skipped": skipped, "seconds": 0.0}
    bar = tqdm(total=len(mine), unit="utt", desc=f"batch[{rank}]" if world > 1 else "batch", disable=not progress)
    for start in range(0, len(mine), batch_size):
        group = mine[start:start + batch_size]
        began = time.perf_counter()
        results = synthesize_texts(voice, [item.text for item in group], vocoder=vocoder, seed=seed, pause=pause,
                                   batch_size=batch_size, errors="return")
        elapsed = time.perf_counter() - began
        total_audio = sum(len(r) for r in results if not isinstance(r, Exception)) / voice.sample_rate or 1.0
        for item, result in zip(group, results):
            if isinstance(result, Exception):
                append_manifest(outdir, {"id": item.id, "path": None, "seconds": None, "rtf": None,
                                         "error": str(result).splitlines()[0]})
                counts["failed"] += 1
                continue
            path = outdir / f"{item.id}.wav"
            save_wav(path, result, voice.sample_rate)
            seconds = len(result) / voice.sample_rate
            append_manifest(outdir, {"id": item.id, "path": str(path), "seconds": round(seconds, 3),
                                     "rtf": round(elapsed / total_audio, 4), "error": None})
            counts["done"] += 1
            counts["seconds"] += seconds
        bar.update(len(group))
    bar.close()
    return counts
