import subprocess
import sys

import pytest

from tts.cli import main


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "tts.cli", *args], capture_output=True, text=True, input=stdin,
                          timeout=300)


def test_help_lists_each_subcommand_on_one_line():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("synth", "phonemize", "train", "batch", "eval"):
        lines = [line for line in result.stdout.splitlines() if line.strip().startswith(command + " ")]
        assert len(lines) == 1, result.stdout


def test_help_and_phonemize_start_without_lightning_or_models():
    code = ("import sys; from tts.cli import main; main(['phonemize', 'Hello there.']);"
            "heavy = [m for m in ('lightning', 'torch', 'tts.models.tacotron') if m in sys.modules];"
            "print('HEAVY', heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    assert "HH" in result.stdout  # 'hello' was phonemized


def test_phonemize_reads_stdin_line_by_line():
    result = run_cli("phonemize", stdin="Dr. Smith\n\n42 cats\n")
    assert result.returncode == 0, result.stderr
    words = [line for line in result.stdout.splitlines() if line.startswith("words:")]
    assert len(words) == 2 and "doctor smith" in words[0] and "forty" in words[1]


def _one_line_error(capsys, argv, code=1):
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["synth", "", "-o", "{tmp}/a.wav"], "empty"),
        (["synth", "   ", "-o", "{tmp}/a.wav"], "empty"),
        (["synth", "🙂 🙂", "-o", "{tmp}/a.wav"], "nothing speakable"),
        (["synth", "Hello.", "-o", "{tmp}/missing/a.wav"], "output directory"),
        (["synth", "Hello.", "-o", "{tmp}"], "is a directory"),
        (["synth", "Hello.", "-o", "{tmp}/a.wav", "--voice", "{tmp}/novoice"], "does not exist"),
        (["synth", "Hello.", "-o", "{tmp}/a.wav", "--voice", "{tmp}"], "is not a voice"),
        (["synth", "--text-file", "{tmp}/nofile.txt", "-o", "{tmp}/a.wav"], "cannot read --text-file"),
        (["train"], "choose a recipe"),
        (["train", "recipe=nosuch"], "unknown recipe"),
        (["train", "recipe=tiny", "data.root={tmp}", "trainer.maxsteps=3"], "unknown key 'trainer.maxsteps'"),
        (["train", "recipe=tiny", "data.root={tmp}/nowhere"], "not a directory"),
        (["train", "recipe=tiny", "data.root={tmp}"], "metadata.csv not found"),
        (["train", "recipe=tiny", "data.root={tmp}", "data.batch_size=four"], "data.batch_size"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_1(capsys, tmp_path, argv, message):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    err = _one_line_error(capsys, argv)
    assert message in err
    assert not (tmp_path / "a.wav").exists()


def test_a_run_dir_that_cannot_be_one_is_one_line(capsys, tmp_path, corpus):
    (tmp_path / "file").write_text("not a directory")
    for run_dir, message in ((tmp_path / "file", "is a file"), (tmp_path / "file" / "run", "which is a file")):
        err = _one_line_error(capsys, ["train", "recipe=tiny", f"data.root={corpus}", f"run_dir={run_dir}"])
        assert f"run_dir={run_dir} " in err and message in err


def test_malformed_command_line_exits_2_with_one_line():
    result = run_cli("synth", "hello")  # no -o
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "-o/--output" in result.stderr


def test_unwritable_output(capsys):
    # /proc/1 is a directory nobody, root included, may create files in.
    err = _one_line_error(capsys, ["synth", "Hello.", "-o", "/proc/1/a.wav"])
    assert "cannot write to /proc/1" in err


# --- tts synth on a tiny random voice (tests/conftest.py) ------------------------------------------

import io  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402


def synth(tiny_voice, *args):
    return main(["synth", *args, "--voice", str(tiny_voice), "--device", "cpu"])


def test_synth_text_file_and_stdin_give_the_same_audio(tiny_voice, tmp_path, monkeypatch, capsys):
    text = "Hello there. This comes from a file."
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    assert synth(tiny_voice, text, "-o", str(tmp_path / "arg.wav"), "--seed", "5", "-q") == 0
    assert synth(tiny_voice, "--text-file", str(tmp_path / "in.txt"), "-o", str(tmp_path / "file.wav"),
                 "--seed", "5", "-q") == 0
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    assert synth(tiny_voice, "-o", str(tmp_path / "stdin.wav"), "--seed", "5", "-q") == 0
    arg, rate = sf.read(tmp_path / "arg.wav", dtype="int16")
    assert rate == 8000 and len(arg) > 0
    for name in ("file.wav", "stdin.wav"):
        np.testing.assert_array_equal(sf.read(tmp_path / name, dtype="int16")[0], arg)
    assert capsys.readouterr().err == ""  # -q: no bar, no summary


def test_synth_warns_once_about_what_it_reads_or_drops(tiny_voice, tmp_path, caplog):
    # The text is checked before the model loads and read again as it is spoken: the check is quiet.
    with caplog.at_level("WARNING", logger="tts.text.normalize"):
        assert synth(tiny_voice, "Москва 🙂 is far.", "-o", str(tmp_path / "a.wav"), "-q") == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("read letters of other scripts: 'Москва' as 'Moskva'" in m for m in messages) == 1, messages
    assert sum("dropped unspeakable characters 🙂" in m for m in messages) == 1, messages


def test_synth_writes_wav_to_stdout(tiny_voice, capfdbinary):
    assert synth(tiny_voice, "Hello.", "-o", "-", "-q", "--vocoder", "griffinlim") == 0
    out = capfdbinary.readouterr().out
    assert out[:4] == b"RIFF" and out[8:12] == b"WAVE"
    wav, rate = sf.read(io.BytesIO(out))
    assert rate == 8000 and len(wav) > 0


def test_synth_writes_the_format_the_extension_names(tiny_voice, tmp_path, capfdbinary):
    from tts.formats import available

    def write(name, *options):
        path = tmp_path / name
        assert synth(tiny_voice, "Hello there.", "-o", str(path), "--seed", "3", "-q", *options) == 0
        return path

    wav, rate = sf.read(write("a.wav"), dtype="int16")
    expected = {"flac": "FLAC", "ogg": "OGG", "mp3": "MP3", "opus": "OGG"}  # the tiny voice's 8 kHz suits opus
    for ext, container in expected.items():
        if ext not in available(rate):
            continue
        path = write(f"a.{ext}")
        info = sf.info(str(path))
        assert (info.format, info.samplerate) == (container, rate), (ext, info)
        if ext == "flac":  # lossless: libsndfile rounds floats to 16 bits a little differently for FLAC
            assert np.abs(sf.read(path, dtype="int16")[0].astype(int) - wav).max() <= 1
        elif ext != "mp3":  # an mp3 decoder adds its own delay
            assert info.frames == len(wav), (ext, info.frames, len(wav))
    raw = np.frombuffer(write("a.pcm").read_bytes(), dtype="<i2")
    np.testing.assert_array_equal(raw, wav)
    # --format wins over the extension, and picks what goes to stdout
    assert sf.info(str(write("a.audio", "--format", "flac"))).format == "FLAC"
    capfdbinary.readouterr()
    assert synth(tiny_voice, "Hello there.", "-o", "-", "--format", "flac", "-q") == 0
    assert capfdbinary.readouterr().out[:4] == b"fLaC"


@pytest.mark.parametrize("name, message", [
    ("a.xyz", "its extension '.xyz' names no audio format; end it in .wav, .pcm, .flac"),
    ("noext", "it has no extension to name its format"),
])
def test_synth_refuses_an_output_that_names_no_format(capsys, tmp_path, name, message):
    # before any model loads: the voice named does not even exist
    err = _one_line_error(capsys, ["synth", "Hello.", "-o", str(tmp_path / name), "--voice", str(tmp_path / "none")])
    assert message in err and "(or give --format)" in err
    assert list(tmp_path.iterdir()) == []


def test_synth_speaks_inline_pronunciations_and_refuses_misspelled_ones(tiny_voice, tmp_path, capsys):
    assert synth(tiny_voice, "Say {T AH0 M EY1 T OW2}.", "-o", str(tmp_path / "a.wav"), "-q") == 0
    assert sf.info(str(tmp_path / "a.wav")).frames > 0
    err = _one_line_error(capsys, ["synth", "Say {T AH0 M EY1 T OX2}.", "-o", str(tmp_path / "b.wav"),
                                   "--voice", str(tmp_path / "none")])  # refused before any voice loads
    assert "'OX2' is not an ARPAbet phoneme" in err and not (tmp_path / "b.wav").exists()


def test_opus_needs_a_rate_it_encodes():
    from tts.formats import FormatError, available, format_for_path

    if "opus" not in available(None):
        pytest.skip("this libsndfile writes no opus")
    assert format_for_path("a.OPUS", sample_rate=48000) == "opus"
    with pytest.raises(FormatError, match="opus encodes only 8000, .* Hz audio and this voice speaks at 22050 Hz; use one of wav"):
        format_for_path("a.opus", sample_rate=22050)
    assert "opus" not in available(22050) and "wav" in available(22050)


def test_synth_options_change_the_audio(tiny_voice, tmp_path, capsys):
    def seconds(*options):
        path = tmp_path / "o.wav"
        assert synth(tiny_voice, "One sentence here. And a second one.", "-o", str(path), "-q", *options) == 0
        return sf.info(str(path)).duration

    base = seconds("--sentence-silence", "0")
    assert seconds("--sentence-silence", "1.5") == pytest.approx(base + 1.5, abs=1e-3)
    assert seconds("--sentence-silence", "0", "--speed", "2") == pytest.approx(base / 2, abs=0.02)
    assert seconds("--sentence-silence", "0", "--vocoder", "griffinlim") == pytest.approx(base, abs=1e-3)

    def samples(*options):
        path = tmp_path / "s.wav"
        assert synth(tiny_voice, "Seeded speech.", "-o", str(path), "-q", *options) == 0
        return sf.read(path, dtype="int16")[0]

    np.testing.assert_array_equal(samples("--seed", "1"), samples("--seed", "1"))
    assert not np.array_equal(samples("--seed", "1"), samples("--seed", "2"))


def test_synth_plots_progress_and_summary(tiny_voice, tmp_path, capsys, caplog):
    text = " ".join(f"Sentence number {n} is here." for n in range(1, 7))
    out, mel, alignment = tmp_path / "long.wav", tmp_path / "mel.png", tmp_path / "align.png"
    assert synth(tiny_voice, text, "-o", str(out), "--batch-size", "2", "--save-mel", str(mel),
                 "--save-alignment", str(alignment)) == 0
    for plot in (mel, alignment):
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    err = capsys.readouterr().err
    assert "0/6 [" in err and "sentence/s" in err  # the progress bar over sentences (its first frame)
    assert "6 of 6 sentence(s) ran to the length bound" in caplog.text  # a random voice never stops
    last = err.strip().splitlines()[-1]
    seconds = sf.info(str(out)).duration
    assert last.startswith(f"wrote {out}: {seconds:.2f} s of audio (6 sentence(s)) in ") and "real-time factor" in last


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--speed", "0"], "--speed: must be between 0.25 and 4.0"),
        (["--speed", "fast"], "--speed: expected a number"),
        (["--sentence-silence", "-1"], "--sentence-silence: must be between 0.0 and 10.0"),
        (["--batch-size", "0"], "--batch-size: must be at least 1"),
        (["--vocoder", "melgan"], "invalid choice: 'melgan'"),
        (["--seed", "x"], "--seed: expected an integer, got 'x'"),
        (["--seed", "99999999999999999999"], "--seed: must be between 0 and 9223372036854775807"),
        (["--seed", "-1"], "--seed: must be between 0 and"),
        (["--speed", "nan"], "--speed: expected a finite number, got nan"),
        (["--speed", "inf"], "--speed: expected a finite number, got inf"),
        (["--sentence-silence", "nan"], "--sentence-silence: expected a finite number"),
    ],
)
def test_synth_bad_option_values_exit_2(capsys, tmp_path, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["synth", "Hello.", "-o", str(tmp_path / "a.wav"), *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--save-mel", "{tmp}/mel.jpg"], "--save-mel {tmp}/mel.jpg: the plot is a PNG image"),
        (["--save-alignment", "{tmp}/nodir/a.png"], "output directory {tmp}/nodir does not exist"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "cuda:0"], "no CUDA device is visible"),
        (["--vocoder", "wavenet", "--voice", "{acoustic_only}"], "has no trained vocoder"),
    ],
)
def test_synth_bad_choices_exit_1_and_write_nothing(capsys, tmp_path, tiny_voice, argv, message):
    import json
    import shutil

    import torch

    if "cuda:0" in argv and torch.cuda.is_available():
        pytest.skip("CUDA is visible")
    acoustic_only = tmp_path / "acoustic_only"
    acoustic_only.mkdir()
    shutil.copy(tiny_voice / "acoustic.safetensors", acoustic_only)
    card = json.loads((tiny_voice / "voice.json").read_text())
    del card["vocoder"]
    (acoustic_only / "voice.json").write_text(json.dumps(card))
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{acoustic_only}", str(acoustic_only)) for a in argv]
    if "--voice" not in argv:
        argv += ["--voice", str(tiny_voice)]
    err = _one_line_error(capsys, ["synth", "Hello.", "-o", str(tmp_path / "a.wav"), *argv])
    assert message.replace("{tmp}", str(tmp_path)) in err
    assert not (tmp_path / "a.wav").exists()


def test_failed_synth_keeps_the_old_output(tiny_voice, tmp_path, capsys):
    out = tmp_path / "keep.wav"
    out.write_bytes(b"old contents")
    assert synth(tiny_voice, "🙂", "-o", str(out)) == 1
    assert out.read_bytes() == b"old contents"
    assert "nothing speakable" in capsys.readouterr().err


def test_bad_numbers_are_refused_before_a_model_loads(tmp_path):
    # At parse time: the voice is never read, so even a missing voice directory is not reached.
    for option in (["--seed", "99999999999999999999"], ["--speed", "nan"]):
        code = ("import sys; from tts.cli import main\n"
                "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    print('EXIT', e.code)\n"
                "print('LOADED', [m for m in ('torch', 'tts.voice', 'tts.models.tacotron') if m in sys.modules])")
        result = subprocess.run([sys.executable, "-c", code, "synth", "Hello.", "-o", str(tmp_path / "a.wav"),
                                 "--voice", str(tmp_path / "novoice"), *option], capture_output=True, text=True,
                                timeout=120)
        assert "EXIT 2" in result.stdout and "LOADED []" in result.stdout, result.stdout + result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_synth_help_says_what_auto_means():
    import json

    from tts.voice import DEFAULT_VOICE

    result = run_cli("synth", "--help")
    help_text = " ".join(result.stdout.split())
    shipped = json.loads((DEFAULT_VOICE / "voice.json").read_text()).get("default_vocoder", "wavenet")
    assert f"auto (default): the vocoder the voice's card names as its default (the shipped voice names {shipped})" \
        in help_text
    assert "wavenet when the voice has one, else" not in help_text


def test_auto_follows_the_card(tiny_voice, tmp_path):
    # The card's default_vocoder decides what auto means, as the help says.
    import json
    import shutil

    voice = tmp_path / "voice"
    shutil.copytree(tiny_voice, voice)

    def samples(*options):
        assert synth(voice, "Card decides.", "-o", str(tmp_path / "o.wav"), "-q", "--seed", "3", *options) == 0
        return sf.read(tmp_path / "o.wav", dtype="int16")[0]

    np.testing.assert_array_equal(samples(), samples("--vocoder", "wavenet"))
    card = json.loads((voice / "voice.json").read_text())
    card["default_vocoder"] = "griffinlim"
    (voice / "voice.json").write_text(json.dumps(card))
    np.testing.assert_array_equal(samples(), samples("--vocoder", "griffinlim"))
    assert not np.array_equal(samples(), samples("--vocoder", "wavenet"))


def test_speak_with_a_wrong_type_is_a_type_error(tiny_voice):
    import tts

    speaker = tts.load(str(tiny_voice), device="cpu")
    for wrong in (123, None, b"bytes"):
        with pytest.raises(TypeError, match="text must be a string"):
            speaker.speak(wrong)
    with pytest.raises(TypeError):
        speaker.speak_many("one string")


def test_training_logs_are_said_once(capsys, caplog):
    # Lightning's INFO lines went out twice (its handler and ours), with an advert and a notice.
    import logging

    from tts.cli import _configure_training_logs

    import lightning.pytorch  # noqa: F401  (adds Lightning's handlers)

    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    level = root.level
    try:
        assert _configure_training_logs() is True
        log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
        log.setLevel(logging.INFO)
        root.setLevel(logging.INFO)
        log.info("GPU available: False, used: False")
        log.info("💡 Tip: For seamless cloud logging, try installing [litlogger](https://pypi.org/project/litlogger/)")
        log.info("`weights_only` was not set, defaulting to `False`.")
        assert not logging.getLogger("lightning.pytorch").handlers
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    err = capsys.readouterr().err
    assert err.count("GPU available") == 1 and "Tip" not in err and "weights_only" not in err
    import warnings

    from lightning.pytorch.utilities._pytree import _tree_flatten

    with warnings.catch_warnings(record=True) as caught:  # the filters set above stay in force
        _tree_flatten({"loss": 1.0})  # builds torch's deprecated LeafSpec
    assert not [w for w in caught if "LeafSpec" in str(w.message)], [str(w.message) for w in caught]


def test_other_ddp_ranks_log_warnings_only(monkeypatch):
    import logging

    from tts.cli import _configure_training_logs

    level = logging.getLogger().level
    try:
        monkeypatch.setenv("LOCAL_RANK", "1")
        assert _configure_training_logs() is False
        assert logging.getLogger().level == logging.WARNING
    finally:
        logging.getLogger().setLevel(level)
