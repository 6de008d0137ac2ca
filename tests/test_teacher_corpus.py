"""scripts/make_teacher_corpus.py: text extraction and filtering, joining, Scheme escaping, output
checks and the render loop (with a stand-in for festival); one slow test renders with festival."""

import importlib.util
import json
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tts.config import AudioConfig
from tts.data import read_metadata

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_teacher_corpus.py"
_spec = importlib.util.spec_from_file_location("make_teacher_corpus", SCRIPT)
mtc = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = mtc  # dataclasses look their module up there
_spec.loader.exec_module(mtc)

AUDIO = AudioConfig()
HEADER = '  1 This software and database is provided "AS IS" by Princeton  \n  2 \n'


def write_wordnet(root: Path, n: int = 0) -> Path:
    """data.{noun,verb,adj,adv} in WordNet's format: a licence header, then `offset ... | gloss; "example"`."""
    root.mkdir(parents=True, exist_ok=True)
    lines = [
        '00001740 29 v 04 breathe 0 021 | draw air into the lungs; "I can breathe better when the air is clean"; "The patient is respiring"  \n',
        '00002724 29 v 01 choke 0 002 | breathe with difficulty; "She choked with emotion when she spoke about   her husband"  \n',
        '00002725 29 v 01 repeat 0 002 | again; "I can breathe better when the air is clean"  \n',
        "00002726 29 v 01 plain 0 002 | no example here  \n",
    ]
    lines += [f'0001{i:04d} 03 n 01 thing 0 000 | a gloss; "the {w} cat sat quietly on the warm mat"  \n'
              for i, w in enumerate(_words(n))]
    for name in mtc.WORDNET_FILES:
        (root / name).write_text(HEADER + ("".join(lines) if name == "data.verb" else ""), encoding="utf-8")
    return root


def _words(n: int) -> list[str]:
    letters = "abcdefghij"
    return ["".join(letters[int(d)] for d in f"{i:03d}") for i in range(n)]


def tone(seconds: float, sample_rate: int, amplitude: float = 0.3, pad: float = 0.0) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wav = amplitude * np.sin(2 * np.pi * 220 * t)
    silence = np.zeros(int(pad * sample_rate))
    return np.concatenate([silence, wav, silence]).astype(np.float32)


def test_extract_sentences_reads_examples_only(tmp_path):
    sentences = mtc.extract_sentences(write_wordnet(tmp_path / "wn"))
    assert sentences == [
        "I can breathe better when the air is clean",  # twice in the files, once here
        "She choked with emotion when she spoke about her husband",  # whitespace collapsed
        "The patient is respiring",
    ]


def test_extract_sentences_names_a_missing_file(tmp_path):
    with pytest.raises(mtc.SetupError, match="data.noun not found"):
        mtc.extract_sentences(tmp_path)


@pytest.mark.parametrize("raw, cleaned", [
    ("the accident blocked all traffic at the rotary", "The accident blocked all traffic at the rotary."),
    ("how could you do such a thing?", "How could you do such a thing?"),
    ("the boss's behavior demoralized everyone in the office", "The boss's behavior demoralized everyone in the office."),
    ("the porters carried the travellers' luggage up the mountain;", "The porters carried the travellers' luggage up the mountain."),
    ("this award-winning bridge spans a distance of five miles", "This award-winning bridge spans a distance of five miles."),
    ("After graduation, she stayed on in Cambridge as a student adviser", "After graduation, she stayed on in Cambridge as a student adviser."),
])
def test_clean_sentence_keeps_plain_sentences(raw, cleaned):
    assert mtc.clean_sentence(raw) == cleaned


@pytest.mark.parametrize("raw", [
    "the grim task of burying",  # five words
    "with an evening dress one wears 10 denier stockings",  # digits
    "`I can't wait,' she answered smolderingly today",  # WordNet's `quotes'
    "'mouse' has been verbified by computer users",  # quote outside a word
    "her tone was...conversational although her eyes were smoldering",  # ellipsis
    "meat and potatoes--I call that a real meal",
    "he repaired the TV set expertly this morning",  # acronym
    "behavior quite unrepresentative (or atypical) of the profession",
    "he called his neighbour a bastard in front of everyone",  # blocklist
    "the sentence goes on and on " * 8,  # too long
])
def test_clean_sentence_drops_unfit_lines(raw):
    assert mtc.clean_sentence(raw) is None


def test_join_keeps_every_sentence_in_order_and_spreads_lengths():
    sentences = [f"Sentence number {'x' * (i % 7)} goes here." for i in range(300)]
    items = mtc.join_sentences(sentences, random.Random(0), max_chars=120)
    assert " ".join(items) == " ".join(sentences)
    lengths = [len(item) for item in items]
    assert max(lengths) <= 120
    assert min(lengths) < 40 < 100 < max(lengths)  # singles and joined items both occur
    assert items == mtc.join_sentences(sentences, random.Random(0), max_chars=120)


def test_plan_depends_on_the_seed_only(tmp_path):
    sentences = mtc.extract_sentences(write_wordnet(tmp_path / "wn", n=60))
    plan = mtc.plan_items(sentences, seed=1)
    assert plan == mtc.plan_items(list(reversed(sentences)), seed=1)
    other = mtc.plan_items(sentences, seed=2)
    assert plan != other and sorted(" ".join(plan).split()) == sorted(" ".join(other).split())


def test_scheme_string_escapes_quotes_and_backslashes():
    assert mtc.scheme_string('He said "hi" \\ bye') == '"He said \\"hi\\" \\\\ bye"'
    assert mtc.scheme_string("two\nlines\t here") == '"two lines here"'
    script = mtc.festival_script([("One.", Path("/w/a.wav")), ('Say "x".', Path("/w/b.wav"))])
    assert script.splitlines()[0] == f"(voice_{mtc.VOICE})"
    assert "unwind-protect" in script  # one failing sentence must not abort the batch
    assert script.splitlines()[-1] == '(teacher_render "Say \\"x\\"." "/w/b.wav")'


def test_missing_packages_without_apt_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mtc.shutil, "which", lambda name: None)
    monkeypatch.setattr(mtc, "VOICE_DIR", tmp_path / "no-voice")
    with pytest.raises(mtc.SetupError, match="apt-get is not available: install festival festvox-us-slt-hts wordnet-base"):
        mtc.ensure_installed()


def test_check_render_reports_missing_empty_silent_and_short(tmp_path):
    assert mtc.check_render(tmp_path / "none.wav", AUDIO) == (None, "missing")
    (tmp_path / "empty.wav").write_bytes(b"")
    assert mtc.check_render(tmp_path / "empty.wav", AUDIO)[1].startswith("cannot read audio")
    sf.write(tmp_path / "silent.wav", np.zeros(32000, dtype=np.float32), 32000, subtype="PCM_16")
    assert mtc.check_render(tmp_path / "silent.wav", AUDIO) == (None, "silent")
    sf.write(tmp_path / "short.wav", tone(0.1, 32000), 32000, subtype="PCM_16")
    assert mtc.check_render(tmp_path / "short.wav", AUDIO)[1] == "only 0.10 s"
    sf.write(tmp_path / "good.wav", tone(1.0, 32000), 32000, subtype="PCM_16")
    wav, problem = mtc.check_render(tmp_path / "good.wav", AUDIO)
    assert problem == "" and abs(len(wav) - 22050) <= 1  # resampled from festival's 32 kHz


def test_trim_and_normalize_keeps_a_fixed_margin_and_level():
    sr = 22050
    for amplitude in (0.05, 0.5):
        out = mtc.trim_and_normalize(tone(1.0, sr, amplitude, pad=0.7), sr)
        assert abs(len(out) / sr - (1.0 + 2 * mtc.TRIM_MARGIN_S)) < 0.02
        level = 20 * np.log10(np.sqrt(np.mean(out[int(0.1 * sr):-int(0.1 * sr)] ** 2)))
        assert abs(level - mtc.TARGET_DBFS) < 0.5


def fake_festival(fail: set, calls: list):
    """Stands in for run_festival: writes a tone per job, nothing for texts in `fail`."""
    def run(jobs, script):
        calls.append([text for text, _ in jobs])
        for text, path in jobs:
            if text not in fail:
                sf.write(path, tone(0.5 + len(text) / 100, 32000, pad=0.3), 32000, subtype="PCM_16")
        return ""
    return run


def test_render_chunk_retries_once_then_drops(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(mtc, "run_festival", fake_festival({"Bad one."}, calls))
    items = [mtc.Item("a", "Good one."), mtc.Item("b", "Bad one."), mtc.Item("c", "Also good.")]
    (tmp_path / "wavs").mkdir()
    dropped, messages = mtc.render_chunk(items, tmp_path / "wavs", tmp_path / "work", AUDIO)
    assert dropped == [items[1]]
    assert calls == [["Good one.", "Bad one.", "Also good."], ["Bad one."]]
    assert messages == ["b: missing, rendering again", "b: missing (dropped)"]
    assert sorted(p.name for p in (tmp_path / "wavs").iterdir()) == ["a.wav", "c.wav"]
    assert sf.info(tmp_path / "wavs" / "a.wav").samplerate == 22050
    assert list((tmp_path / "work" / "raw").iterdir()) == []  # festival's files are removed


def test_render_chunk_stops_when_festival_renders_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(mtc, "run_festival", lambda jobs, script: "SIOD ERROR: unbound variable : voice_x\n")
    items = [mtc.Item("a", "Good one."), mtc.Item("b", "Also good.")]
    with pytest.raises(mtc.SetupError, match="rendered none of 2 sentences: SIOD ERROR"):
        mtc.render_chunk(items, tmp_path, tmp_path / "work", AUDIO)


def test_make_corpus_layout_reuse_and_refusal(tmp_path, monkeypatch):
    wordnet = write_wordnet(tmp_path / "wn", n=40)
    plan = mtc.plan_items(mtc.extract_sentences(wordnet), seed=5)
    calls = []
    monkeypatch.setattr(mtc, "run_festival", fake_festival({plan[1]}, calls))
    out = tmp_path / "corpus"
    summary = mtc.make_corpus(out, 4, 2, 5, chunk=3, wordnet_dir=wordnet)
    assert summary["count"] == 3 and summary["test_count"] == 2 and summary["dropped"] == 1
    assert summary["hours"] > 0
    rows = read_metadata(out)  # the project's own reader accepts the corpus
    assert [r.id for r in rows] == ["slt00000", "slt00002", "slt00003"]
    assert all(r.wav.is_file() for r in rows)
    test_rows = [line.split("|") for line in (out / "test.txt").read_text().splitlines()]
    assert {i for i, _ in test_rows}.isdisjoint(r.id for r in rows)
    assert all((out / "wavs" / f"{i}.wav").is_file() for i, _ in test_rows)
    assert json.loads((out / "corpus.json").read_text())["seed"] == 5
    assert "LICENSES.txt" in {p.name for p in out.iterdir()}

    calls.clear()  # a rerun renders only what is missing: the dropped item, twice
    assert mtc.make_corpus(out, 4, 2, 5, wordnet_dir=wordnet)["count"] == 3
    assert calls == [[plan[1]], [plan[1]]]
    with pytest.raises(mtc.SetupError, match="seed"):
        mtc.make_corpus(out, 4, 2, 6, wordnet_dir=wordnet)
    with pytest.raises(mtc.SetupError, match="exceeds"):
        mtc.make_corpus(tmp_path / "other", 10_000, 2, 5, wordnet_dir=wordnet)


def test_dev_items_follow_the_training_items(tmp_path, monkeypatch):
    """--dev-count K: dev.txt lists the K plan items after the training ones, apart from both other
    listings; test.txt is the same as without it."""
    wordnet = write_wordnet(tmp_path / "wn", n=40)
    plan = mtc.plan_items(mtc.extract_sentences(wordnet), seed=5)
    monkeypatch.setattr(mtc, "run_festival", fake_festival(set(), []))
    out = tmp_path / "corpus"
    summary = mtc.make_corpus(out, 3, 2, 5, wordnet_dir=wordnet, dev_count=2)
    assert (summary["count"], summary["test_count"], summary["dev_count"], summary["dropped"]) == (3, 2, 2, 0)
    dev = [line.split("|") for line in (out / "dev.txt").read_text().splitlines()]
    assert dev == [[mtc.item_id(i), plan[i]] for i in (3, 4)]
    test = [line.split("|")[0] for line in (out / "test.txt").read_text().splitlines()]
    assert test == [mtc.item_id(len(plan) - 2), mtc.item_id(len(plan) - 1)]
    assert [r.id for r in read_metadata(out, listing="dev.txt")] == [mtc.item_id(3), mtc.item_id(4)]
    with pytest.raises(mtc.SetupError, match="--dev-count 99 exceeds"):
        mtc.make_corpus(tmp_path / "other", 3, 2, 5, wordnet_dir=wordnet, dev_count=99)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("festival") is None or not mtc.VOICE_DIR.is_dir()
                    or not (mtc.WORDNET_DIR / "data.noun").is_file(),
                    reason="needs festival, festvox-us-slt-hts and wordnet-base")
def test_renders_three_sentences_with_festival(tmp_path, capsys):
    out = tmp_path / "teacher"
    assert mtc.main(["--out", str(out), "--count", "2", "--test-count", "1", "--no-install"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["count"] == 2 and summary["test_count"] == 1 and summary["dropped"] == 0
    for row in read_metadata(out):
        info = sf.info(row.wav)
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        assert 1.0 < info.duration < 15.0
    assert "Carnegie Mellon University" in (out / "LICENSES.txt").read_text()
    assert "Princeton University" in (out / "LICENSES.txt").read_text()
