import math

import numpy as np
import pytest
import soundfile as sf
import torch

from tts.config import AudioConfig, DataConfig
from tts.data import (BucketBatchSampler, CorpusError, SegmentDataset, TextMelCollate, load_item, parse_row,
                      prepare_corpus, read_metadata, split)
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


def test_features_made_in_this_process_leave_its_thread_count_alone(corpus, tmp_path):
    # A small corpus is featurized in the calling process, which is the training process: the
    # featurizer set its torch threads to 1 there, for the whole run.
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _prepare(corpus, tmp_path)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_a_cache_that_cannot_be_made_is_one_line(corpus, tmp_path):
    (tmp_path / "cache").write_text("a file where the cache would go")
    with pytest.raises(CorpusError, match=r"cannot create the feature cache .*cache/\w+: Not a directory"):
        _prepare(corpus, tmp_path)


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


def test_every_bad_row_is_named_in_one_pass(corpus, tmp_path, caplog):
    # Five different faults: all found at once, counted, the first few named, all in the report.
    (corpus / "wavs" / "LJ001.wav").unlink()
    (corpus / "wavs" / "LJ002.wav").write_bytes(b"junk")
    sf.write(corpus / "wavs" / "LJ004.wav", np.zeros(500, np.float32), 16000)
    _rewrite_row(corpus, 5, "LJ005||")
    _rewrite_row(corpus, 6, "LJ006")
    with pytest.raises(CorpusError) as err:
        _prepare(corpus, tmp_path)
    message = str(err.value)
    assert len(message.splitlines()) == 1
    assert "metadata.csv:2: LJ001" in message and "5 bad rows of 8" in message
    assert "line 3 LJ002: " in message and "line 5 LJ004: " in message and ", ..." in message
    report = tmp_path / "cache" / "bad_rows.tsv"
    assert str(report) in message
    rows = [line.split("\t") for line in report.read_text().splitlines()[1:]]
    assert [(r[0], r[1]) for r in rows] == [("2", "LJ001"), ("3", "LJ002"), ("5", "LJ004"), ("6", "LJ005"),
                                            ("7", "LJ006")]
    reasons = [r[2] for r in rows]
    assert "no such file" in reasons[0] and "cannot read audio" in reasons[1] and "16000" in reasons[2]
    assert reasons[3] == "empty text" and "expected 'id|text|normalized text'" in reasons[4]

    report.unlink()
    with caplog.at_level("WARNING", logger="tts.data"):
        items = _prepare(corpus, tmp_path, skip_bad=True)
    assert len(items) == 3 and "skipped 5 bad row(s) of 8" in caplog.text
    assert len(report.read_text().splitlines()) == 6  # skip_bad writes the same report

    # Once the corpus is repaired the stale report goes away.
    for uid in ("LJ001", "LJ002", "LJ004", "LJ005", "LJ006"):
        (corpus / "metadata.csv").write_text("\n".join(
            line for line in (corpus / "metadata.csv").read_text().splitlines() if not line.startswith(uid)) + "\n")
    assert len(_prepare(corpus, tmp_path)) == 3 and not report.exists()


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
    with pytest.raises(CorpusError, match="metadata.csv:2: b: expected"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("a|x\na|y\n")
    with pytest.raises(CorpusError, match="already used on line 1"):
        read_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("a|Raw 1 text|Normalized one text\nb|only raw\n")
    assert [r.text for r in read_metadata(tmp_path)] == ["Normalized one text", "only raw"]
    assert [r.raw_text for r in read_metadata(tmp_path)] == ["Raw 1 text", "only raw"]
    (tmp_path / "test.txt").write_text("c|Held out.\nd\n")  # another listing of the same rows
    with pytest.raises(CorpusError, match="test.txt:2: d: expected"):
        read_metadata(tmp_path, listing="test.txt")


def test_row_parser_decides_the_text_once_and_reads_speakers():
    assert parse_row("a|Raw 1|Normalized one\n") == ("a", None, "Raw 1", "Normalized one")
    assert parse_row("a|Raw 1|  ") == ("a", None, "Raw 1", "Raw 1")  # an empty normalized column: raw
    assert parse_row("a|spk1|Hello.|hello", speakers=True) == ("a", "spk1", "Hello.", "hello")
    assert parse_row("a|spk1|Hello.", speakers=True) == ("a", "spk1", "Hello.", "Hello.")
    for row, reason, speakers in (("a", "expected 'id|text|normalized text'", False),
                                  ("a|x|y|z", "at most 3", False),
                                  ("a|hello", "expected 'id|speaker|text|normalized text'", True),
                                  ("a| |hello", "empty speaker", True),
                                  ("|x", "empty id", False), ("../x|y", "not a file name", False)):
        with pytest.raises(ValueError, match=reason):
            parse_row(row, speakers=speakers)


def test_validation_split_is_clamped_on_a_small_corpus(corpus, tmp_path, caplog):
    # The ljspeech recipe holds out 64 utterances; on 8 that would leave nothing to train on.
    items = _prepare(corpus, tmp_path)
    with caplog.at_level("WARNING", logger="tts.data"):
        train, val = split(items, val_size=64, seed=0)
    assert len(val) == 1 and len(train) == 7
    assert "data.val_size=64 would hold out 8 of 8 utterances; using 1" in caplog.text
    many = items * 5  # ids repeat, which split does not mind: 40 items
    assert len(split(many, val_size=64, seed=0)[1]) == 4
    assert split(items[:1], val_size=64, seed=0) == (items[:1], [])


def test_split_is_deterministic_and_disjoint(corpus, tmp_path):
    items = _prepare(corpus, tmp_path)
    train, val = split(items, val_size=1, seed=3)
    assert len(val) == 1 and len(train) == 7 and not {i.id for i in train} & {i.id for i in val}
    assert split(list(reversed(items)), val_size=1, seed=3) == (train, val)
    assert split(items, val_size=1, seed=4) != (train, val)


def test_collate_pads_text_and_mel():
    collate = TextMelCollate(pad_id=0, audio=AudioConfig(log_floor=1e-5))
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


def test_blurred_segments_keep_their_audio_and_smooth_the_mel(corpus, tmp_path):
    """vocoder_train.mel_blur_*: the same segment (same start, same audio), its mel smoother in
    time and across bands, by a different amount per draw."""
    items = _prepare(corpus, tmp_path)
    plain = SegmentDataset(items, segment_frames=8, audio=AUDIO, seed=3)
    blurred = SegmentDataset(items, segment_frames=8, audio=AUDIO, seed=3, blur=(2.0, 2.0))
    a, b = plain[0], blurred[0]
    assert torch.equal(a["audio"], b["audio"]) and b["mel"].shape == a["mel"].shape

    def roughness(mel, axis):
        return mel.diff(dim=axis).abs().mean().item()

    assert roughness(b["mel"], 1) < roughness(a["mel"], 1) and roughness(b["mel"], 0) < roughness(a["mel"], 0)
    assert abs(b["mel"].mean().item() - a["mel"].mean().item()) < 0.5  # blurred, not shifted
    again = [blurred[0]["mel"] for _ in range(3)]
    assert not torch.equal(again[0], again[1]) or not torch.equal(again[1], again[2])


def test_gta_share_mixes_aligned_and_true_mels_per_segment(corpus, tmp_path):
    """vocoder_train.gta_share: each segment draws its mel, the aligned one (ID.npy in mel_dir) about
    that share of the time and the true one otherwise; the audio is the same segment either way."""
    items = _prepare(corpus, tmp_path)
    gta = tmp_path / "gta"
    gta.mkdir()
    for item in items:
        np.save(gta / f"{item.id}.npy", load_item(item)["mel"] + 100.0)  # told apart by their level
    mixed = SegmentDataset(items, segment_frames=8, audio=AUDIO, seed=5, mel_dir=gta, mel_share=0.5)
    aligned = SegmentDataset(items, segment_frames=8, audio=AUDIO, seed=5, mel_dir=gta)
    kinds = [mixed[0]["mel"].mean().item() > 50 for _ in range(40)]
    assert 8 <= sum(kinds) <= 32
    assert all(aligned[0]["mel"].mean().item() > 50 for _ in range(5))
    mixed.random_start = False
    plain = SegmentDataset(items, segment_frames=8, audio=AUDIO, random_start=False)
    pairs = [(mixed[0], plain[0]) for _ in range(6)]
    assert all(torch.equal(a["audio"], b["audio"]) for a, b in pairs)
    for a, b in pairs:
        torch.testing.assert_close(a["mel"] - (100.0 if a["mel"].mean() > 50 else 0.0), b["mel"], atol=1e-4, rtol=0)


MANIFESTS = __import__("pathlib").Path(__file__).resolve().parent.parent / "data" / "manifests"


def test_teacher_held_out_manifest_is_the_plans_tail():
    rows = [parse_row(line) for line in (MANIFESTS / "teacher_test.txt").read_text(encoding="utf-8").splitlines()]
    ids = [uid for uid, _, _, _ in rows]
    assert len(ids) == 60 == len(set(ids)) and ids[0] == "slt12824" and ids[-1] == "slt12883"
    assert all(int(uid[3:]) >= 3000 for uid in ids)  # none among the 3,000 training items
    wordnet = __import__("pathlib").Path("/usr/share/wordnet/data.noun")
    if not wordnet.is_file():
        pytest.skip("WordNet (Debian wordnet-base) is not installed: the plan cannot be rebuilt")
    import hashlib
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_teacher_corpus",
                                                  MANIFESTS.parent.parent / "scripts" / "make_teacher_corpus.py")
    maker = importlib.util.module_from_spec(spec)
    import sys

    sys.modules[spec.name] = maker  # its dataclasses look their module up there
    try:
        spec.loader.exec_module(maker)
    finally:
        del sys.modules[spec.name]
    texts = maker.plan_items(maker.extract_sentences(), 1234, max_chars=130)
    # The plan of the default voice's corpus (its card's provenance.corpus.plan_sha256).
    assert hashlib.sha256("\n".join(texts).encode()).hexdigest().startswith("82f8c3ef353fc4c7")
    assert [(uid, text) for uid, _, _, text in rows] == [(maker.item_id(i), t) for i, t in enumerate(texts)][-60:]
