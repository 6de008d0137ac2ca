"""The nemo normalizer backend (tts/text/nemo.py): the error without the extra everywhere a user can
choose it, and, where nemo-text-processing is installed, a few of its readings.

The reading tests use the user's grammar cache ($XDG_CACHE_HOME/tts/nemo); the first run compiles
it (about half a minute).
"""

import importlib.util

import pytest

from tts.cli import main
from tts.text import Frontend, TextError
from tts.text.nemo import NemoUnavailableError, cache_dir
from tts.text.normalize import Normalizer

HAS_NEMO = importlib.util.find_spec("nemo_text_processing") is not None
without_nemo = pytest.mark.skipif(HAS_NEMO, reason="nemo-text-processing is installed")
with_nemo = pytest.mark.skipif(not HAS_NEMO, reason="needs the nemo extra (nemo-text-processing)")


def test_normalizer_name_is_checked():
    with pytest.raises(TextError, match="builtin, nemo"):
        Frontend(normalizer="wfst")


def test_cache_lives_in_the_users_cache_per_version(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir("1.2.0") == tmp_path / "tts" / "nemo" / "1.2.0"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert cache_dir("1.2.0") == tmp_path / ".cache" / "tts" / "nemo" / "1.2.0"


def test_builtin_without_rules_only_tokenizes():
    normalizer = Normalizer()
    assert normalizer("Dr. Smith, 5 pm.") == "doctor smith , five P M ."
    assert [token for token, _, _ in normalizer.annotate("Dr. Smith, 5 pm.", rules=False)] == \
        ["dr", ".", "smith", ",", "five", "pm", "."]
    assert [token for token, _, _ in normalizer.annotate("seven AM, A underscore B", rules=False,
                                                         spell={"AM", "A"})] == \
        ["seven", "A", "M", ",", "A", "underscore", "B"]


@without_nemo
def test_missing_extra_is_a_tts_error_naming_the_extra():
    with pytest.raises(NemoUnavailableError, match=r"pip install \"tts\[nemo\]\""):
        Frontend(normalizer="nemo").normalize("Hello.")


@without_nemo
@pytest.mark.parametrize("argv", [["phonemize", "--normalizer", "nemo", "Hello."],
                                  ["synth", "Hello.", "-o", "out.wav", "--normalizer", "nemo"],
                                  ["batch", "in.txt", "-o", "out", "--normalizer", "nemo"],
                                  ["serve", "--port", "0", "--normalizer", "nemo"]])
def test_missing_extra_is_one_line_and_exit_1(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("Hello.\n")
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip().count("\n") == 0 and "Traceback" not in captured.err
    assert 'needs nemo-text-processing: pip install "tts[nemo]"' in captured.err
    assert not (tmp_path / "out.wav").exists()


@without_nemo
def test_missing_extra_fails_when_the_api_loads():
    import tts

    with pytest.raises(NemoUnavailableError):
        tts.load(normalizer="nemo")


@pytest.fixture(scope="module")
def nemo():
    return Frontend(normalizer="nemo")


@with_nemo
@pytest.mark.parametrize("written, spoken", [
    ("555-123-4567", "five five five , one two three , four five six seven"),
    ("Jan. 3rd", "january third"),
    ("1-2=5", "one minus two equals five"),
    ("1:01:01", "one hour one minute and one second"),
    # The abbreviation's dot NeMo consumes still ends the sentence.
    ("He lives at 42 Elm St.", "he lives at forty two elm street ."),
    ("See you at 5 p.m. Then we leave.", "see you at five P M . then we leave ."),
    # Letters NeMo writes in capitals are spelled: "am" would be the verb.
    ("Wake at 7 am.", "wake at seven A M ."),
])
def test_nemo_readings(nemo, written, spoken):
    assert nemo.normalize(written) == spoken


@with_nemo
def test_nemo_tokens_carry_their_class(nemo):
    tokens = nemo.explain("Dr. Smith called at 5 pm.")["tokens"]
    classes = {t["token"]: t["class"] for t in tokens}
    assert classes["doctor"] == "nemo" and classes["five"] == "nemo"
    assert classes["smith"] == "word" and classes["."] == "punctuation"
