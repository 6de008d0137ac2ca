"""Corpora in the LJSpeech layout, the feature cache, datasets, batching and DataModules.

A corpus is ``ROOT/metadata.csv`` with rows ``id|text|normalized text`` (the third column may be
missing or empty) and ``ROOT/wavs/ID.wav``. Every row is checked before training starts; phoneme ids,
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

from tts.audio import AudioError, MelSpectrogram, atomic_write, load_wav, num_frames
from tts.config import AudioConfig, DataConfig
from tts.errors import TTSError

log = logging.getLogger(__name__)

CACHE_FORMAT = 1


class CorpusError(TTSError):
    """A corpus row or layout that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Utterance:
    id: str
    text: str
    wav: Path
    line: int  # 1-based line in metadata.csv, for error messages


def read_metadata(root: os.PathLike | str) -> list[Utterance]:
    """Parse ROOT/metadata.csv. Raises CorpusError for a missing file or a malformed row."""
    root = Path(root)
    metadata = root / "metadata.csv"
    if not root.is_dir():
        raise CorpusError(f"data.root {root} is not a directory")
    if not metadata.is_file():
        raise CorpusError(f"{metadata} not found: data.root must hold metadata.csv and wavs/ (the LJSpeech layout)")
    rows = []
    seen: dict[str, int] = {}
    with open(metadata, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            line = line.rstrip("\n\r")
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) < 2:
                raise CorpusError(f"{metadata}:{line_no}: expected 'id|text|normalized text', got {line[:60]!r}")
            uid = fields[0].strip()
            text = (fields[2] if len(fields) > 2 and fields[2].strip() else fields[1]).strip()
            if uid in seen:
                raise CorpusError(f"{metadata}:{line_no}: id {uid!r} already used on line {seen[uid]}")
            seen[uid] = line_no
            rows.append(Utterance(id=uid, text=text, wav=root / "wavs" / f"{uid}.wav", line=line_no))
    if not rows:
        raise CorpusError(f"{metadata} has no rows")
    return rows


def cache_key(audio: AudioConfig, symbols: dict, resample: bool) -> str:
    blob = json.dumps({"format": CACHE_FORMAT, "audio": asdict(audio), "symbols": symbols, "resample": resample},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _source_stamp(path: Path) -> np.ndarray:
    st = path.stat()
    return np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)


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
                torch.set_num_threads(1)
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


def prepare_corpus(
    data: DataConfig, audio: AudioConfig, symbols: dict, cache_root: Path, *, progress: bool = True
) -> list[Item]:
    """Validate every row of the corpus and cache its features (in parallel, with a progress bar).

    A bad row raises CorpusError naming the file and the metadata line, unless data.skip_bad is set:
    then it is left out and counted in the log.
    """
    from tqdm import tqdm

    rows = read_metadata(data.root)
    cache_dir = cache_root / cache_key(audio, symbols, data.resample)
    cache_dir.mkdir(parents=True, exist_ok=True)
    featurize = _Featurizer(audio, symbols, data.resample, cache_dir)
    metadata = Path(data.root) / "metadata.csv"
    workers = min(data.num_workers, os.cpu_count() or 1, max(1, len(rows) // 8))
    bar = tqdm(total=len(rows), desc="features", unit="utt", disable=not progress, leave=False)
    results = []
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for result in pool.map(featurize, rows, chunksize=16):
                results.append(result)
                bar.update()
    else:
        for row in rows:
            results.append(featurize(row))
            bar.update()
    bar.close()

    items, bad = [], []
    for row, (uid, error, n_symbols, n_frames) in zip(rows, results):
        if error is not None:
            message = f"{metadata}:{row.line}: {uid}: {error}"
            if not data.skip_bad:
                raise CorpusError(message + " (fix it, or set data.skip_bad=true to skip bad rows)")
            bad.append(message)
            continue
        items.append(Item(uid, featurize.path(row), n_symbols, n_frames))
    if bad:
        log.warning("skipped %d bad row(s) of %d; first: %s", len(bad), len(rows), bad[0])
    max_frames = num_frames(int(data.max_seconds * audio.sample_rate), audio)
    too_long = [item for item in items if item.n_frames > max_frames]
    if too_long:
        log.info("left out %d utterance(s) longer than data.max_seconds=%s", len(too_long), data.max_seconds)
        items = [item for item in items if item.n_frames <= max_frames]
    if not items:
        raise CorpusError(f"{metadata}: no usable utterances")
    return items


def split(items: Sequence[Item], *, val_size: int, seed: int) -> tuple[list[Item], list[Item]]:
    """Deterministic train/validation split: the same corpus and seed always give the same split."""
    ordered = sorted(items, key=lambda item: item.id)
    random.Random(seed).shuffle(ordered)
    val_size = min(val_size, max(len(ordered) - 1, 0))
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
    log(log_floor), mel_lengths (B,), ids list[str]."""

    def __init__(self, *, pad_id: int, log_floor: float):
        self.pad_id = pad_id
        self.mel_pad = math.log(log_floor)

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
    mels saved as ``ID.npy`` there.
    """

    def __init__(self, items: Sequence[Item], *, segment_frames: int, audio: AudioConfig,
                 mel_dir: Optional[Path] = None, seed: int = 0, random_start: bool = True):
        self.items, self.frames, self.audio, self.mel_dir = list(items), segment_frames, audio, mel_dir
        self.random_start = random_start
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        cached = load_item(item)
        mel = cached["mel"] if self.mel_dir is None else np.load(self.mel_dir / f"{item.id}.npy", allow_pickle=False)
        hop, frames = self.audio.hop_length, self.frames
        pcm = cached["audio"].astype(np.float32) / 32768.0
        usable = mel.shape[1] - 1  # the last frame has no full hop of samples after it
        pcm = np.pad(pcm, (0, max(0, (frames + usable) * hop - len(pcm))))
        if usable < frames:
            floor = math.log(self.audio.log_floor)
            mel = np.pad(mel[:, :usable], ((0, 0), (0, frames - usable)), constant_values=floor)
            start = 0
        else:
            start = int(self.rng.integers(0, usable - frames + 1)) if self.random_start else 0
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
                 stage: str, batch_size: int, segment_frames: int = 32, gta_dir: Optional[Path] = None):
        super().__init__()
        self.data, self.audio, self.symbols, self.cache_root = data, audio, symbols, cache_root
        self.stage, self.batch_size, self.segment_frames, self.gta_dir = stage, batch_size, segment_frames, gta_dir
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
            collate = TextMelCollate(pad_id=self.symbols["pad_id"], log_floor=self.audio.log_floor)
            return DataLoader(TextMelDataset(items), batch_sampler=sampler, collate_fn=collate, **common)
        dataset = SegmentDataset(items, segment_frames=self.segment_frames, audio=self.audio, mel_dir=self.gta_dir,
                                 seed=self.data.seed, random_start=train)
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
