"""Corpora in the LJSpeech layout, the feature cache, datasets, batching and DataModules.

A corpus is ``ROOT/metadata.csv`` with rows ``id|text|normalized text`` (the third column may be
missing or empty; a multi-speaker corpus has ``id|speaker|text|normalized text``) and
``ROOT/wavs/ID.wav``. Every row is checked in one pass before training starts, and every bad row is
reported together (data/README.md describes the layout); phoneme ids,
log-mels and 16-bit audio are computed once per utterance and cached under a directory keyed by the
audio config and symbol table, so a changed config never reads stale features.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import random
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

from tts.audio import AudioError, MelSpectrogram, atomic_write, load_wav, mel_silence, num_frames
from tts.config import AudioConfig, DataConfig
from tts.errors import TTSError
from tts.rows import parse_row, split_row  # noqa: F401 (the row parser; re-exported)

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


class CorpusError(TTSError):
    """A corpus row or layout that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Utterance:
    id: str
    text: str  # what is spoken: the normalized column when it is there, else the raw text
    wav: Path
    line: int  # 1-based line in metadata.csv, for error messages
    raw_text: str = ""  # the text column as written
    speaker: Optional[str] = None  # multi-speaker corpora only


@dataclass(frozen=True)
class BadRow:
    line: int
    id: str
    reason: str


def read_rows(root: os.PathLike | str, *, speakers: bool = False,
              listing: str = "metadata.csv") -> tuple[list[Utterance], list[BadRow]]:
    """Parse ROOT/metadata.csv (or another ``listing`` of the same rows, such as a held-out
    test.txt) in one pass -> (good rows, bad rows with their reasons). Raises CorpusError only for
    the layout: a missing directory or file, or a file with no rows."""
    root = Path(root)
    metadata = root / listing
    if not root.is_dir():
        raise CorpusError(f"data.root {root} is not a directory")
    if not metadata.is_file():
        raise CorpusError(f"{metadata} not found: data.root must hold {listing} and wavs/ (the LJSpeech layout)")
    rows, bad = [], []
    seen: dict[str, int] = {}
    try:
        with open(metadata, encoding="utf-8") as f:
            lines = list(f)
    except (OSError, UnicodeDecodeError) as err:
        raise CorpusError(f"{metadata}: cannot read it ({err})") from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            uid, speaker, raw, text = parse_row(line, speakers=speakers)
        except ValueError as err:
            bad.append(BadRow(line_no, line.split("|", 1)[0].strip()[:40] or "?", str(err)))
            continue
        if uid in seen:
            bad.append(BadRow(line_no, uid, f"id {uid!r} already used on line {seen[uid]}"))
            continue
        seen[uid] = line_no
        rows.append(Utterance(id=uid, text=text, wav=root / "wavs" / f"{uid}.wav", line=line_no, raw_text=raw,
                              speaker=speaker))
    if not rows and not bad:
        raise CorpusError(f"{metadata} has no rows")
    return rows, bad


def read_metadata(root: os.PathLike | str, *, speakers: bool = False, listing: str = "metadata.csv") -> list[Utterance]:
    """Parse ROOT/metadata.csv (or ``listing``); raises CorpusError naming every malformed row
    (count, the first few) or a missing file."""
    rows, bad = read_rows(root, speakers=speakers, listing=listing)
    if bad:
        raise CorpusError(_bad_rows_message(Path(root) / listing, bad, len(rows) + len(bad), report=None))
    return rows


SHOWN_BAD_ROWS = 3


def _bad_rows_message(metadata: Path, bad: Sequence[BadRow], total: int, report: Optional[Path]) -> str:
    first = bad[0]
    message = f"{metadata}:{first.line}: {first.id}: {first.reason}"
    if len(bad) > 1:
        more = "; ".join(f"line {b.line} {b.id}: {b.reason}" for b in bad[1:SHOWN_BAD_ROWS])
        etc = ", ..." if len(bad) > SHOWN_BAD_ROWS else ""
        message += f"; {len(bad)} bad rows of {total} in all ({more}{etc})"
    if report is not None:
        message += f"; every bad row and why: {report}"
    return message


def write_bad_rows_report(path: Path, metadata: Path, bad: Sequence[BadRow]) -> None:
    """A tab-separated list of every bad row: line, id, reason."""
    lines = [f"# bad rows of {metadata}: line, id, reason", *(f"{b.line}\t{b.id}\t{b.reason}" for b in bad)]
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, ("\n".join(lines) + "\n").encode())


def cache_key(audio: AudioConfig, symbols: dict, resample: bool) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "audio": asdict(audio), "symbols": symbols, "resample": resample},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _source_stamp(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


def _feature_worker_start() -> None:
    """The entry point of a feature worker process: one torch thread each, since the workers
    already share the cores out. Set here, not in the featurizer, which also runs in the training
    process itself (one worker) and must not change its thread count."""
    torch.set_num_threads(1)


class _Featurizer:
    """Turns one utterance into cached arrays; picklable so worker processes can run it."""

    def __init__(self, audio: AudioConfig, symbols: dict, resample: bool, cache_dir: Path):
        self.audio, self.symbols, self.resample, self.cache_dir = audio, symbols, resample, cache_dir
        self._frontend = self._table = self._mel = None

    def path(self, utt: Utterance) -> Path:
        return self.cache_dir / f"{utt.id}.npz"

    def __call__(self, utt: Utterance) -> tuple[str, Optional[str], int, int]:
        """-> (id, error or None, n_symbols, n_frames); writes the cache file when it is missing or stale."""
        from tts.text import Frontend, SymbolTable, TextError

        path = self.path(utt)
        try:
            if not utt.wav.is_file():
                raise AudioError(f"{utt.wav}: no such file")
            stamp = _source_stamp(utt.wav)
            if path.is_file():
                with np.load(path, allow_pickle=False) as cached:
                    if np.array_equal(cached["source"], stamp):
                        return utt.id, None, int(cached["ids"].shape[0]), int(cached["mel"].shape[1])
            if self._frontend is None:
                self._frontend, self._table = Frontend(), SymbolTable.from_dict(self.symbols)
                self._mel = MelSpectrogram(self.audio)
            if not utt.text:
                raise CorpusError("empty text")
            ids = np.asarray(self._frontend.text_to_ids(utt.text, self._table), dtype=np.int16)
            wav = load_wav(utt.wav, self.audio, resample=self.resample)
            with torch.no_grad():
                mel = self._mel(torch.from_numpy(wav)).numpy().astype(np.float32)
            pcm = np.clip(np.round(wav * 32767.0), -32768, 32767).astype(np.int16)
        except (AudioError, TextError, CorpusError) as err:
            return utt.id, str(err), 0, 0
        buffer = io.BytesIO()
        np.savez(buffer, ids=ids, mel=mel, audio=pcm, source=stamp)
        atomic_write(path, buffer.getvalue())
        return utt.id, None, len(ids), mel.shape[1]


@dataclass(frozen=True)
class Item:
    id: str
    path: Path  # the cache file
    n_symbols: int
    n_frames: int


BAD_ROWS_REPORT = "bad_rows.tsv"


def prepare_corpus(
    data: DataConfig, audio: AudioConfig, symbols: dict, cache_root: Path, *, progress: bool = True,
    report: Optional[Path] = None,
) -> list[Item]:
    """Validate every row of the corpus and cache its features (in parallel, with a progress bar).

    Every bad row is found in this one pass: they are written to ``report`` (default
    CACHE_ROOT/bad_rows.tsv) with their reasons and raise one CorpusError that counts them and
    names the first few, unless data.skip_bad is set: then they are left out, counted in the log
    and listed in the same report.
    """
    from tqdm import tqdm

    rows, bad = read_rows(data.root)
    total = len(rows) + len(bad)
    cache_dir = cache_root / cache_key(audio, symbols, data.resample)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:  # data.cache_dir (or the run directory) names a file, or cannot be written
        raise CorpusError(f"cannot create the feature cache {cache_dir}: {err.strerror} (data.cache_dir sets where "
                          f"it goes)") from None
    featurize = _Featurizer(audio, symbols, data.resample, cache_dir)
    metadata = Path(data.root) / "metadata.csv"
    report = report if report is not None else cache_root / BAD_ROWS_REPORT
    workers = min(data.num_workers, os.cpu_count() or 1, max(1, len(rows) // 8))
    bar = tqdm(total=len(rows), desc="features", unit="utt", disable=not progress, leave=False)
    results = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_feature_worker_start) as pool:
            for result in pool.map(featurize, rows, chunksize=16):
                results.append(result)
                bar.update()
    else:
        for row in rows:
            results.append(featurize(row))
            bar.update()
    bar.close()

    items = []
    for row, (uid, error, n_symbols, n_frames) in zip(rows, results):
        if error is not None:
            bad.append(BadRow(row.line, uid, error))
            continue
        items.append(Item(uid, featurize.path(row), n_symbols, n_frames))
    bad.sort(key=lambda b: b.line)
    if bad:
        write_bad_rows_report(report, metadata, bad)
        message = _bad_rows_message(metadata, bad, total, report)
        if not data.skip_bad:
            raise CorpusError(message + " (fix them, or set data.skip_bad=true to skip bad rows)")
        log.warning("skipped %d bad row(s) of %d (data.skip_bad=true): %s", len(bad), total, message)
    else:
        report.unlink(missing_ok=True)  # a report from an earlier, since repaired, corpus
    max_frames = num_frames(int(data.max_seconds * audio.sample_rate), audio)
    too_long = [item for item in items if item.n_frames > max_frames]
    if too_long:
        log.info("left out %d utterance(s) longer than data.max_seconds=%s", len(too_long), data.max_seconds)
        items = [item for item in items if item.n_frames <= max_frames]
    if not items:
        raise CorpusError(f"{metadata}: no usable utterances")
    return items


# At most this share of a corpus is held out for validation: data.val_size is a count meant for a
# full corpus (the ljspeech recipe's 64 of 13,100), and on a small one it would leave almost
# nothing to train on.
MAX_VAL_FRACTION = 0.1


def split(items: Sequence[Item], *, val_size: int, seed: int) -> tuple[list[Item], list[Item]]:
    """Deterministic train/validation split: the same corpus and seed always give the same split.
    ``val_size`` is clamped, with a warning, to MAX_VAL_FRACTION of the corpus (at least one item
    when there are two or more)."""
    ordered = sorted(items, key=lambda item: item.id)
    random.Random(seed).shuffle(ordered)
    limit = max(1, int(len(ordered) * MAX_VAL_FRACTION)) if len(ordered) > 1 else 0
    if val_size > limit:
        log.warning("data.val_size=%d would hold out %d of %d utterances; using %d (at most %d%% of the corpus) "
                    "for validation", val_size, min(val_size, len(ordered)), len(ordered), limit,
                    round(100 * MAX_VAL_FRACTION))
        val_size = limit
    return ordered[val_size:], ordered[:val_size]


def load_item(item: Item) -> dict[str, np.ndarray]:
    with np.load(item.path, allow_pickle=False) as cached:
        return {key: cached[key] for key in ("ids", "mel", "audio")}


class TextMelDataset(Dataset):
    def __init__(self, items: Sequence[Item]):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        cached = load_item(item)
        return {"id": item.id, "ids": cached["ids"], "mel": cached["mel"]}


class TextMelCollate:
    """Pads a list of examples into the batch dict the acoustic system expects:
    text (B, L) long padded with pad_id, text_lengths (B,), mel (B, n_mels, T) padded with
    mel_silence(audio), mel_lengths (B,), ids list[str]."""

    def __init__(self, *, pad_id: int, audio: AudioConfig):
        self.pad_id = pad_id
        self.mel_pad = mel_silence(audio)

    def __call__(self, examples: list[dict]) -> dict:
        text_lengths = torch.tensor([len(e["ids"]) for e in examples])
        mel_lengths = torch.tensor([e["mel"].shape[1] for e in examples])
        n_mels = examples[0]["mel"].shape[0]
        text = torch.full((len(examples), int(text_lengths.max())), self.pad_id, dtype=torch.long)
        mel = torch.full((len(examples), n_mels, int(mel_lengths.max())), self.mel_pad)
        for i, e in enumerate(examples):
            text[i, : len(e["ids"])] = torch.from_numpy(e["ids"].astype(np.int64))
            mel[i, :, : e["mel"].shape[1]] = torch.from_numpy(e["mel"])
        return {"text": text, "text_lengths": text_lengths, "mel": mel, "mel_lengths": mel_lengths,
                "ids": [e["id"] for e in examples]}


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of similar length, in a new random order every epoch, sharded across DDP ranks.

    Indices are shuffled, cut into pools of ``pool`` batches, each pool sorted by length and cut
    into batches; the batches are then shuffled. Padding stays small without a fixed order.
    Every rank gets the same number of batches (DDP needs that).
    """

    def __init__(self, lengths: Sequence[int], *, batch_size: int, seed: int, shuffle: bool = True,
                 pool: int = 50):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.lengths, self.batch_size, self.seed, self.shuffle, self.pool = list(lengths), batch_size, seed, shuffle, pool
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @staticmethod
    def _rank_world() -> tuple[int, int]:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        step = self.batch_size * self.pool
        batches = []
        for start in range(0, len(order), step):
            chunk = sorted(order[start:start + step], key=lambda i: self.lengths[i])
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        rank, world = self._rank_world()
        batches = self._batches()
        per_rank = max(1, len(batches) // world)
        self.epoch += 1  # a new order next time even if nobody calls set_epoch
        return iter(batches[rank * per_rank:(rank + 1) * per_rank] if len(batches) >= world
                    else batches[:1])

    def __len__(self) -> int:
        n_batches = math.ceil(len(self.lengths) / self.batch_size)
        return max(1, n_batches // self._rank_world()[1])


class SegmentDataset(Dataset):
    """Random audio segments with their mel frames, for the vocoder.

    Returns audio (S * hop,) float32 in [-1, 1] and mel (n_mels, S); utterances shorter than S
    frames are padded with silence. ``mel_dir`` switches the conditioning to ground-truth-aligned
    mels saved as ``ID.npy`` there; with ``mel_share`` below 1 each segment draws which mel it
    gets (that share the ones in ``mel_dir``, the rest the true ones). ``blur`` = (frames, bands):
    each utterance's mel is blurred by a Gaussian with sigmas drawn uniformly up to these
    (vocoder_train.mel_blur_frames/_bands) before the segment is cut, so the blur sees the frames
    around it.
    """

    def __init__(self, items: Sequence[Item], *, segment_frames: int, audio: AudioConfig,
                 mel_dir: Optional[Path] = None, mel_share: float = 1.0, seed: int = 0, random_start: bool = True,
                 blur: tuple[float, float] = (0.0, 0.0)):
        self.items, self.frames, self.audio, self.mel_dir = list(items), segment_frames, audio, mel_dir
        self.mel_share, self.random_start, self.blur = mel_share, random_start, blur
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        cached = load_item(item)
        # No draw at a share of 1: the segment starts and blurs of a plain GTA run stay as they were.
        aligned = self.mel_dir is not None and (self.mel_share >= 1 or self.rng.random() < self.mel_share)
        mel = np.load(self.mel_dir / f"{item.id}.npy", allow_pickle=False) if aligned else cached["mel"]
        hop, frames = self.audio.hop_length, self.frames
        pcm = cached["audio"].astype(np.float32) / 32768.0
        usable = mel.shape[1] - 1  # the last frame has no full hop of samples after it
        pcm = np.pad(pcm, (0, max(0, (frames + usable) * hop - len(pcm))))
        start = int(self.rng.integers(0, usable - frames + 1)) if self.random_start and usable >= frames else 0
        if any(self.blur):
            from scipy.ndimage import gaussian_filter

            frames_sigma, bands_sigma = (float(self.rng.uniform(0, limit)) for limit in self.blur)
            mel = gaussian_filter(mel, (bands_sigma, frames_sigma), mode="nearest")
        if usable < frames:
            mel = np.pad(mel[:, :usable], ((0, 0), (0, frames - usable)), constant_values=mel_silence(self.audio))
        else:
            mel = mel[:, start:start + frames]
        segment = pcm[start * hop:(start + frames) * hop]
        return {"audio": torch.from_numpy(np.ascontiguousarray(segment)),
                "mel": torch.from_numpy(np.ascontiguousarray(mel, dtype=np.float32))}


def _worker_init(worker_id: int) -> None:
    info = torch.utils.data.get_worker_info()
    info.dataset.rng = np.random.default_rng(info.seed % 2**32)


class CorpusDataModule(L.LightningDataModule):
    """Caches the corpus once (rank 0, in prepare_data), then serves either stage's batches.

    stage "acoustic": TextMelCollate batches bucketed by length; stage "vocoder": random segments.
    """

    def __init__(self, *, data: DataConfig, audio: AudioConfig, symbols: dict, cache_root: Path,
                 stage: str, batch_size: int, segment_frames: int = 32, gta_dir: Optional[Path] = None,
                 gta_share: float = 1.0, mel_blur: tuple[float, float] = (0.0, 0.0)):
        super().__init__()
        self.data, self.audio, self.symbols, self.cache_root = data, audio, symbols, cache_root
        self.stage, self.batch_size, self.segment_frames, self.gta_dir = stage, batch_size, segment_frames, gta_dir
        self.gta_share, self.mel_blur = gta_share, mel_blur
        self.train_items: list[Item] = []
        self.val_items: list[Item] = []

    def prepare_data(self) -> None:
        prepare_corpus(self.data, self.audio, self.symbols, self.cache_root)

    def setup(self, stage: str = "fit") -> None:
        items = prepare_corpus(self.data, self.audio, self.symbols, self.cache_root, progress=False)
        self.train_items, self.val_items = split(items, val_size=self.data.val_size, seed=self.data.seed)

    def _loader(self, items: list[Item], train: bool) -> DataLoader:
        workers = self.data.num_workers
        common = dict(num_workers=workers, persistent_workers=workers > 0, pin_memory=torch.cuda.is_available())
        if self.stage == "acoustic":
            sampler = BucketBatchSampler([item.n_frames for item in items], batch_size=self.batch_size,
                                         seed=self.data.seed, shuffle=train)
            collate = TextMelCollate(pad_id=self.symbols["pad_id"], audio=self.audio)
            return DataLoader(TextMelDataset(items), batch_sampler=sampler, collate_fn=collate, **common)
        dataset = SegmentDataset(items, segment_frames=self.segment_frames, audio=self.audio, mel_dir=self.gta_dir,
                                 mel_share=self.gta_share if train else 1.0, seed=self.data.seed, random_start=train,
                                 blur=self.mel_blur if train else (0.0, 0.0))
        # The Trainer runs with use_distributed_sampler=False (it cannot shard BucketBatchSampler), so
        # shard here.
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        sampler = DistributedSampler(dataset, shuffle=train, seed=self.data.seed) if distributed else None
        return DataLoader(dataset, batch_size=self.batch_size, shuffle=train and sampler is None, sampler=sampler,
                          drop_last=train and len(items) > self.batch_size, worker_init_fn=_worker_init, **common)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_items, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_items or self.train_items[:1], train=False)
