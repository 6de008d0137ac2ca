"""The voice shipped in the package: complete, within budget, loaded without pickle, and speaking."""

import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from tts.cli import main
from tts.voice import CARD, DEFAULT_VOICE, Voice, VoiceError, read_card

BUDGET = 25_000_000


def test_card_describes_the_voice():
    card = read_card(DEFAULT_VOICE)
    for part in ("acoustic", "vocoder"):
        assert card[part]["steps"] > 0 and card[part]["dtype"] == "float16"
        assert (DEFAULT_VOICE / card[part]["file"]).is_file()
    assert card["acoustic"]["audio"] == card["vocoder"]["audio"]
    assert card["acoustic"]["audio"]["sample_rate"] == 22050 and card["acoustic"]["audio"]["n_mels"] == 80
    assert card["vocoder"]["config"]["layers"] == 20
    for part in ("acoustic", "vocoder"):  # the models are the ones the recorded recipe describes
        assert card[part]["config"] == card["provenance"]["recipe"][part]
    assert "<pad>" in card["symbols"]["symbols"]
    provenance = card["provenance"]
    assert provenance["corpus"]["voice"] == "cmu_us_slt_arctic_hts" and provenance["recipe"]["name"] == "teacher"
    assert "EST" in (DEFAULT_VOICE / "LICENSES.txt").read_text(encoding="utf-8")
    metrics = card["metrics"]
    assert metrics["sentences"] >= 50
    words = metrics["teacher"]["words"]
    assert words >= 10 * metrics["sentences"]  # the rates are over whole held-out sentences
    for system in ("teacher", "wavenet", "griffinlim"):
        assert metrics[system]["words"] == words, "every system is scored on the same sentences"
        assert 0.0 < metrics[system]["wer"] < 1.5 and 0.0 < metrics[system]["cer"] <= metrics[system]["wer"]
    # The recognizer understands the teacher (else the measurement says nothing), our voice is
    # intelligible through its default vocoder, and no copy of the teacher beats the teacher.
    assert metrics["teacher"]["wer"] < 0.3
    assert metrics["teacher"]["wer"] <= min(metrics["griffinlim"]["wer"], metrics["wavenet"]["wer"])
    default = card.get("default_vocoder", "wavenet")
    assert metrics[default]["wer"] < 0.6
    # The WaveNet figures were measured at the temperature the card samples at.
    assert metrics.get("wavenet_temperature", 1.0) == card.get("wavenet_temperature", 1.0)
    assert metrics.get("wavenet_unvoiced_temperature") == card.get("wavenet_unvoiced_temperature")
    # auto picks the vocoder that measured clearer.
    assert metrics[default]["wer"] == min(metrics["griffinlim"]["wer"], metrics["wavenet"]["wer"])
    size = sum(p.stat().st_size for p in DEFAULT_VOICE.iterdir())
    assert size <= BUDGET, f"the default voice holds {size} bytes"


def test_loading_unpickles_nothing(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the voice loader unpickled something")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    voice = Voice.load(device="cpu")
    assert voice.vocoder is not None
    assert all(p.dtype == torch.float32 for p in voice.acoustic.parameters())


def test_hello_world_speaks_and_stops_by_itself():
    voice = Voice.load(device="cpu", vocoder=False)
    result = voice.mels(["Hello world."], seed=0)[0]
    assert result["stop_reason"] == "stop"
    seconds = result["mel"].shape[1] * voice.audio.hop_length / voice.sample_rate
    assert 0.5 < seconds < 2.5, seconds
    # The attention walks over the whole sentence: its peak ends on the last symbols.
    peaks = result["alignment"].argmax(dim=1)
    assert int(peaks[-1]) >= result["alignment"].shape[1] - 3
    assert bool((peaks[1:] >= peaks[:-1] - 1).all())


def test_synth_without_voice_uses_the_default(tmp_path):
    out = tmp_path / "hello.wav"
    assert main(["synth", "Hello world.", "-o", str(out), "-q", "--seed", "0"]) == 0
    import soundfile as sf

    wav, rate = sf.read(out)
    assert rate == 22050 and 0.5 < len(wav) / rate < 2.5
    assert np.abs(wav).max() > 0.05  # not silence


def test_voice_with_mismatched_parts_is_refused(tmp_path):
    voice_dir = tmp_path / "voice"
    shutil.copytree(DEFAULT_VOICE, voice_dir)
    card = json.loads((voice_dir / CARD).read_text())
    card["vocoder"]["audio"]["hop_length"] = 200
    card["vocoder"]["audio"]["f_max"] = 7600.0
    (voice_dir / CARD).write_text(json.dumps(card))
    with pytest.raises(VoiceError, match=r"f_max \(8000.0 vs 7600.0\), hop_length \(256 vs 200\)"):
        Voice.load(voice_dir, device="cpu")
