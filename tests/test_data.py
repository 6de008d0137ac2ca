import math

import numpy as np
import pytest
import soundfile as sf
import torch

from tts.config import AudioConfig, DataConfig
from tts.data import (BucketBatchSampler, CorpusError, SegmentDataset, TextMelCollate, prepare_corpus,
                      read_metadata, split)
from tts.text import SymbolTable

AUDIO = AudioConfig()
SYMBOLS = SymbolTable.default().to_dict()


def _prepare(root, tmp_path, **data):
    config = DataConfig(root=str(root), num_workers=0, **data)
    return prepare_corpus(config, AUDIO, SYMBOLS, tmp_path / "cache", progress=False)


def test_prepare_caches_ids_and_mels(corpus, tmp_path):
    items = _prepare(corpus, tmp_path)
    assert len(items) == 8
    first = items[0]
    with np.load(first.path) as cached:
        assert cached["mel"].shape == (80, first.n_frames)
        assert cached["ids"][-1] == SymbolTable.default().eos_id and len(cached["ids"]) == first.n_symbols
        assert cached["audio"].dtype == np.int16
    # The second pass reads the cache instead of recomputing.
    mtime = first.path.stat().st_mtime_ns
    assert [i.id for i in _prepare(corpus, tmp_path)] == [i.id for i in items]
    assert first.path.stat().st_mtime_ns == mtime


def test_changed_audio_config_uses_another_cache(corpus, tmp_path):
    a = _prepare(corpus, tmp_path)[0].path.parent
    b = prepare_corpus(DataConfig(root=str(corpus), num_workers=0), AudioConfig(n_mels=40), SYMBOLS,
                       tmp_path / "cache", progress=False)[0].path.parent
    assert a != b


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda root: (root / "wavs" / "LJ003.wav").unlink(), "LJ003.wav: no such file"),
        (lambda root: sf.write(root / "wavs" / "LJ003.wav", np.zeros(500, np.float32), 16000), "sample rate is 16000"),
        (lambda root: (root / "wavs" / "LJ003.wav").write_bytes(b"junk"), "cannot read audio"),
        (lambda root: _rewrite_row(root, 3, "LJ003||"), "empty text"),
    ],
    ids=["missing-wav", "wrong-rate", "unreadable", "empty-text"],
)
def test_bad_rows_name_file_and_line(corpus, tmp_path, breakage, message):
    breakage(corpus)
    with pytest.raises(CorpusError, match=message) as err:
        _prepare(corpus, tmp_path)
    assert "metadata.csv:4: LJ003" in str(err.value) and "data.skip_bad=true" in str(err.value)
    items = _prepare(corpus, tmp_path, skip_bad=True)
    assert len(items) == 7 and "LJ003" not in {i.id for i in items}


def _rewrite_row(root, index, row):
    lines = (root / "metadata.csv").read_text().splitlines()
    lines[index] = row
    (root / "metadata.csv").write_text("\n".join(lines) + "\n")


def test_metadata_errors(tmp_path):
    with pytest.raises(CorpusError, match="not a directory"):
        read_metadata(tmp_path / "nowhere")
    with pytest.raises(CorpusError, match="metadata.csv not found"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("a|x\nb\n")
    with pytest.raises(CorpusError, match="metadata.csv:2: expected"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("a|x\na|y\n")
    with pytest.raises(CorpusError, match="already used on line 1"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("a|Raw 1 text|Normalized one text\nb|only raw\n")
    assert [r.text for r in read_metadata(tmp_path)] == ["Normalized one text", "only raw"]


def test_split_is_deterministic_and_disjoint(corpus, tmp_path):
    items = _prepare(corpus, tmp_path)
    train, val = split(items, val_size=2, seed=3)
    assert len(val) == 2 and not {i.id for i in train} & {i.id for i in val}
    assert split(list(reversed(items)), val_size=2, seed=3) == (train, val)


def test_collate_pads_text_and_mel():
    collate = TextMelCollate(pad_id=0, log_floor=1e-5)
    batch = collate([{"id": "a", "ids": np.array([5, 6, 7], np.int16), "mel": np.ones((80, 4), np.float32)},
                     {"id": "b", "ids": np.array([5], np.int16), "mel": np.ones((80, 9), np.float32)}])
    assert batch["text"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["text_lengths"].tolist() == [3, 1] and batch["mel_lengths"].tolist() == [4, 9]
    assert batch["mel"].shape == (2, 80, 9)
    assert torch.all(batch["mel"][0, :, 4:] == math.log(1e-5)) and torch.all(batch["mel"][0, :, :4] == 1)


def test_bucket_sampler_covers_everything_with_similar_lengths():
    lengths = list(np.random.default_rng(0).integers(10, 1000, size=100))
    sampler = BucketBatchSampler(lengths, batch_size=10, seed=0, pool=5)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(100)) and len(sampler) == 10
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 300  # random batches would spread over ~800
    assert list(sampler) != batches  # a new order each epoch


def test_segments_pair_audio_with_frames(corpus, tmp_path):
    items = _prepare(corpus, tmp_path)
    dataset = SegmentDataset(items, segment_frames=8, audio=AUDIO, seed=0)
    example = dataset[0]
    assert example["audio"].shape == (8 * 256,) and example["mel"].shape == (80, 8)
    # Too-short utterances are padded, not dropped.
    long_segments = SegmentDataset(items, segment_frames=100, audio=AUDIO)
    assert long_segments[0]["audio"].shape == (100 * 256,) and long_segments[0]["mel"].shape == (80, 100)
