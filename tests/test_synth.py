"""The synthesis path (tts.synth) and the Python API (tts.api) on a tiny random voice."""

import subprocess
import sys

import numpy as np
import pytest

import tts
from tts.formats import FormatError
from tts.synth import (MAX_CHARS, SynthesisError, SynthesisSettings, change_speed, split_sentences, split_text,
                       stream_audio, synthesize_texts)
from tts.text import TextError
from tts.voice import Voice, VoiceError

HOP = 64  # the tiny voice's hop length (tests/conftest.py)


@pytest.fixture(scope="module")
def voice(tiny_voice):
    return Voice.load(tiny_voice, device="cpu")


def expected_samples(voice, sentence: str) -> int:
    """The tiny voice never stops: a sentence lasts its length bound, 1 frame per symbol + 4."""
    return (len(voice.encode(sentence)) + 4) * HOP


def test_split_sentences_keeps_abbreviations_and_initials():
    text = 'Dr. Smith met J. R. Jones at 5 p.m. on Main St. today. "Really?" she asked!  Yes.'
    assert split_sentences(text) == ["Dr. Smith met J. R. Jones at 5 p.m. on Main St. today.",
                                     '"Really?" she asked!', "Yes."]


def test_split_text_cuts_long_sentences_at_clauses_then_words():
    clause = "the quick brown fox jumps over the lazy dog"
    sentence = ", ".join([clause] * 12) + "."  # 550 characters, commas every 45
    chunks = split_text(sentence, max_chars=100)
    assert all(len(c) <= 100 for c in chunks) and len(chunks) == 6
    assert all(c.endswith(",") or c.endswith(".") for c in chunks)  # cut after a comma, not mid-clause
    assert " ".join(chunks).split() == sentence.split()  # nothing lost or repeated
    words = " ".join(["word"] * 100)  # no punctuation at all: cut between words
    chunks = split_text(words, max_chars=50)
    assert all(len(c) <= 50 for c in chunks) and " ".join(chunks) == words
    with pytest.raises(SynthesisError, match="max_chars"):
        split_text("Hello.", max_chars=5)
    with pytest.raises(SynthesisError, match="max_chars"):
        SynthesisSettings(max_chars=5)


def test_change_speed_stretches_time_only():
    mel = np.random.default_rng(0).standard_normal((20, 100)).astype(np.float32)
    import torch

    mel = torch.from_numpy(mel)
    assert change_speed(mel, 2.0).shape == (20, 50)
    assert change_speed(mel, 0.5).shape == (20, 200)
    assert change_speed(mel, 1.0) is mel
    with pytest.raises(SynthesisError, match="speed must be between 0.25 and 4.0"):
        change_speed(mel, 5.0)


def test_sentences_are_joined_with_the_configured_silence(voice):
    text = "Hello world. How are you today? Fine, thanks."
    sentences = split_sentences(text)
    (tight,) = synthesize_texts(voice, [text], sentence_silence=0.0, vocoder="griffinlim", seed=1)
    (loose,) = synthesize_texts(voice, [text], sentence_silence=0.5, vocoder="griffinlim", seed=1)
    assert tight.sentences == tuple(sentences)
    assert len(tight.wav) == sum(expected_samples(voice, s) for s in sentences)
    assert len(loose.wav) - len(tight.wav) == 2 * 4000  # two gaps of 0.5 s at 8 kHz
    gap = loose.wav[expected_samples(voice, sentences[0]):][:4000]
    assert not gap.any()
    assert tight.wav.dtype == np.float32 and np.abs(tight.wav).max() <= 1.0


@pytest.mark.parametrize("vocoder", ["griffinlim", "wavenet"])
def test_seed_makes_output_reproducible(voice, vocoder):
    texts = ["Hello world.", "A second, longer sentence to speak."]
    first = synthesize_texts(voice, texts, vocoder=vocoder, seed=3)
    again = synthesize_texts(voice, texts, vocoder=vocoder, seed=3)
    other = synthesize_texts(voice, texts, vocoder=vocoder, seed=4)
    for a, b, c in zip(first, again, other):
        np.testing.assert_array_equal(a.wav, b.wav)
        assert a.wav.shape == c.wav.shape and not np.array_equal(a.wav, c.wav)


def test_speed_changes_duration(voice):
    (normal,) = synthesize_texts(voice, ["Speak this sentence."], vocoder="griffinlim", speed=1.0)
    (fast,) = synthesize_texts(voice, ["Speak this sentence."], vocoder="griffinlim", speed=2.0)
    (slow,) = synthesize_texts(voice, ["Speak this sentence."], vocoder="griffinlim", speed=0.5)
    frames = len(normal.wav) // HOP
    assert len(fast.wav) == round(frames / 2) * HOP and len(slow.wav) == frames * 2 * HOP


def test_unspeakable_text_and_chunks(voice):
    (speech,) = synthesize_texts(voice, ["Hello. 🙂 🙂. Bye."], vocoder="griffinlim")
    assert speech.sentences == ("Hello.", "Bye.")  # the emoji-only sentence is left out
    with pytest.raises(TextError, match="nothing speakable"):
        synthesize_texts(voice, ["🙂"], vocoder="griffinlim")
    results = synthesize_texts(voice, ["Fine.", "🙂", ""], vocoder="griffinlim", errors="return")
    assert results[0].seconds > 0
    assert isinstance(results[1], TextError) and "nothing speakable" in str(results[1])
    assert isinstance(results[2], TextError) and "empty" in str(results[2])


def test_settings_out_of_range_are_refused(voice):
    for setting, message in [({"speed": 0.1}, "speed"), ({"sentence_silence": -1.0}, "silence"),
                             ({"batch_size": 0}, "batch size"), ({"vocoder": "hifigan"}, "unknown vocoder")]:
        with pytest.raises(SynthesisError, match=message):
            synthesize_texts(voice, ["Hello."], **setting)


def test_ten_thousand_characters_in_bounded_batches(voice, monkeypatch):
    """A long text is cut into chunks no longer than MAX_CHARS; the models only ever see
    batch_size of them at a time, and every chunk comes back in its place."""
    sentences = ["The quick brown fox jumps over the lazy dog near the river bank.",
                 "Numbers like 42 and dates like March 3, 1999 are read out in words.",
                 ", ".join(["and then the long list of clauses went on"] * 9) + ".",  # 400+ chars
                 " ".join(["unpunctuated"] * 40) + "."]  # 500+ chars without a clause boundary
    text = " ".join(sentences[i % len(sentences)] for i in range(80))
    text = text[: text.index(".", 10_000) + 1]
    assert 10_000 <= len(text) < 10_600
    calls = []
    real = Voice.mels_from_ids

    def spy(self, encoded, seed=None):
        calls.append([len(ids) for ids in encoded])
        return real(self, encoded, seed=seed)

    monkeypatch.setattr(Voice, "mels_from_ids", spy)
    (speech,) = synthesize_texts(voice, [text], vocoder="wavenet", batch_size=16, sentence_silence=0.1)
    chunks = split_text(text)
    assert speech.sentences == tuple(chunks)
    assert max(len(c) for c in chunks) <= MAX_CHARS
    assert all(len(batch) <= 16 for batch in calls) and sum(len(batch) for batch in calls) == len(chunks)
    longest = max(len(voice.encode(c)) for c in chunks)
    assert max(max(batch) for batch in calls) == longest < 2 * MAX_CHARS  # symbols per chunk stay bounded
    expected = sum(expected_samples(voice, c) for c in chunks) + (len(chunks) - 1) * 800
    assert len(speech.wav) == expected
    assert np.isfinite(speech.wav).all()


def test_details_keep_mels_and_alignments(voice):
    (speech,) = synthesize_texts(voice, ["One sentence. And another one."], vocoder="griffinlim", details=True)
    assert len(speech.mels) == len(speech.alignments) == len(speech.stop_reasons) == 2
    for sentence, mel, alignment in zip(speech.sentences, speech.mels, speech.alignments):
        symbols = len(voice.encode(sentence))
        assert mel.shape == (20, symbols + 4)
        assert alignment.shape == (-(-(symbols + 4) // 4), symbols)  # 4 frames per decoder step
    assert speech.stop_reasons == ("length_bound", "length_bound")
    (plain,) = synthesize_texts(voice, ["One sentence."], vocoder="griffinlim")
    assert plain.mels == () and plain.alignments == ()


def test_python_api(tiny_voice, tmp_path):
    speaker = tts.load(tiny_voice, device="cpu")
    assert speaker.sample_rate == 8000 and speaker.device == "cpu"
    speech = speaker.speak("Hello from Python.", seed=1)
    assert speech.sample_rate == 8000 and speech.wav.ndim == 1 and speech.seconds == len(speech.wav) / 8000
    again = speaker.speak("Hello from Python.", seed=1)
    np.testing.assert_array_equal(speech.wav, again.wav)
    many = speaker.speak_many(["One.", "Two words.", "🙂"], errors="return")
    assert [type(m).__name__ for m in many] == ["Speech", "Speech", "TextError"]
    path = tmp_path / "api.wav"
    saved = speaker.save("Hello from Python.", path, seed=1)
    import soundfile as sf

    data, rate = sf.read(path, dtype="float32")
    assert rate == 8000 and len(data) == saved.samples == len(speech.wav)
    np.testing.assert_allclose(data, speech.wav, atol=1 / 32767)
    speaker.save("Hello from Python.", tmp_path / "api.flac", seed=1)
    speech.save(tmp_path / "speech.flac")
    for name in ("api.flac", "speech.flac"):  # the extension names the format, through both
        flac, rate = sf.read(tmp_path / name, dtype="float32")
        assert sf.info(str(tmp_path / name)).format == "FLAC" and rate == 8000
        np.testing.assert_allclose(flac, speech.wav, atol=2 / 32767)
    with pytest.raises(FormatError, match="names no audio format"):
        speech.save(tmp_path / "speech.txt")
    assert not (tmp_path / "speech.txt").exists()
    assert speech._repr_html_().startswith('<audio controls src="data:audio/wav;base64,UklGR')  # "RIFF"
    with pytest.raises(TypeError, match="speak_many takes a list"):
        speaker.speak_many("one text")


def test_python_api_refuses_bad_choices(tiny_voice, tmp_path):
    with pytest.raises(SynthesisError, match="unknown vocoder"):
        tts.load(tiny_voice, device="cpu", vocoder="melgan")
    acoustic_only = tmp_path / "acoustic_only"
    acoustic_only.mkdir()
    import json
    import shutil

    shutil.copy(tiny_voice / "acoustic.safetensors", acoustic_only)
    card = json.loads((tiny_voice / "voice.json").read_text())
    del card["vocoder"]
    (acoustic_only / "voice.json").write_text(json.dumps(card))
    with pytest.raises(VoiceError, match="no trained vocoder"):
        tts.load(acoustic_only, device="cpu", vocoder="wavenet")
    assert tts.load(acoustic_only, device="cpu").speak("Still speaks.").seconds > 0  # auto: Griffin-Lim
    if not __import__("torch").cuda.is_available():
        with pytest.raises(VoiceError, match="no CUDA device"):
            tts.load(tiny_voice, device="cuda")


def test_import_tts_stays_light():
    code = "import sys, tts; tts.__version__; print([m for m in ('torch', 'lightning') if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


# --- streaming: plan -> render -> assemble ---------------------------------------------------------

def test_stream_gives_the_same_samples_as_speak(voice):
    settings = SynthesisSettings(vocoder="griffinlim", seed=2, sentence_silence=0.1)
    text = "One sentence here. And a second one. A third."
    (whole,) = synthesize_texts(voice, [text], settings)
    pieces = list(stream_audio(voice, text, settings))
    assert len(pieces) == 5  # three sentences and the two silences between them
    np.testing.assert_array_equal(np.concatenate(pieces), whole.wav)
    assert not pieces[1].any() and len(pieces[1]) == 800


def test_stream_hands_out_audio_window_by_window(voice, monkeypatch):
    """A text of three windows: the first audio comes after the first window's batches, not after
    the whole text, and no more than one window of waveforms is ever waiting."""
    import tts.synth as synth

    settings = SynthesisSettings(vocoder="griffinlim", seed=1, batch_size=2, sentence_silence=0.0)
    window = synth.window_chunks(settings)
    text = " ".join(f"Sentence number {n} is here." for n in range(3 * window))
    calls = []
    real = synth.render

    def spy(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "render", spy)
    seen_at_first = None
    count = 0
    for item in synth.stream(voice, [text], settings):
        if seen_at_first is None:
            seen_at_first = sum(calls)
        assert sum(calls) - count <= window  # rendered but not yet handed out
        count += 1
    assert seen_at_first == window and count == 3 * window and max(calls) == 2


def test_streaming_keeps_nothing_per_sentence(voice, monkeypatch):
    """Writing a long text holds at most one window of waveforms, keeps no audio, mel or alignment
    per sentence in what it records, and hands freed heap pages back after every batch (the RSS of
    a 100k-character `tts synth` grew 1.65x without it: docs/synthesis.md)."""
    import gc
    import weakref

    import tts.synth as synth

    settings = SynthesisSettings(vocoder="griffinlim", seed=2, batch_size=2, sentence_silence=0.0)
    window = synth.window_chunks(settings)
    text = " ".join(f"Sentence number {n} is here." for n in range(3 * window))
    made, trims = [], []
    real_vocode, real_release = voice.vocode, synth.release_freed_memory

    def vocode(*args, **kwargs):
        wavs = real_vocode(*args, **kwargs)
        made.extend(weakref.ref(wav) for wav in wavs)
        return wavs

    monkeypatch.setattr(voice, "vocode", vocode)
    monkeypatch.setattr(synth, "release_freed_memory", lambda: (trims.append(len(made)), real_release()))
    record: list = []
    alive = []
    for piece in synth.stream_audio(voice, text, settings, record=record):
        del piece
        gc.collect()
        alive.append(sum(ref() is not None for ref in made))
    gc.collect()
    assert len(made) == len(record) == 3 * window
    assert max(alive) <= window and sum(ref() is not None for ref in made) == 0
    assert all(len(r.wav) == 0 and r.mel is None and r.alignment is None for r in record)
    assert trims == list(range(settings.batch_size, 3 * window + 1, settings.batch_size))  # once per batch


def test_synthesize_to_file_streams_and_is_all_or_nothing(voice, tmp_path, monkeypatch):
    import soundfile as sf

    import tts.synth as synth

    settings = SynthesisSettings(vocoder="griffinlim", seed=4, batch_size=2)
    text = " ".join(f"Sentence number {n} is here." for n in range(20))  # 20 chunks, 3 windows of 8
    (whole,) = synthesize_texts(voice, [text], settings)
    out = tmp_path / "long.wav"
    info = synth.synthesize_to_file(voice, text, out, settings)
    data, rate = sf.read(out, dtype="float32")
    assert rate == 8000 and info.samples == len(data) == len(whole.wav) and len(info.sentences) == 20
    np.testing.assert_allclose(data, np.clip(whole.wav, -1, 1), atol=1 / 32767)
    assert oct(out.stat().st_mode & 0o777) != "0o600"  # the umask's mode, not mkstemp's
    before = out.read_bytes()
    real, calls = synth.render, []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 5:  # after the first window was written
            raise RuntimeError("boom")
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "render", failing)
    with pytest.raises(RuntimeError, match="boom"):
        synth.synthesize_to_file(voice, "Other words. " * 20, out, settings)
    assert out.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["long.wav"]


def test_settings_are_checked_once_with_clear_errors():
    with pytest.raises(SynthesisError, match="seed must be between"):
        SynthesisSettings(seed=99999999999999999999)
    with pytest.raises(SynthesisError, match="speed"):
        SynthesisSettings(speed=float("nan"))
    with pytest.raises(TypeError, match="speed must be a number"):
        SynthesisSettings(speed="fast")
    with pytest.raises(TypeError, match="seed must be an integer"):
        SynthesisSettings(seed=1.5)
    with pytest.raises(TypeError, match="either settings or its fields"):
        synthesize_texts(None, ["x"], SynthesisSettings(), seed=1)
