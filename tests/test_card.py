"""The typed voice card and damaged voice files: one line naming the file and the field, at load."""

import json
import os
import shutil

import pytest

from tts.card import VoiceError, load_card
from tts.cli import main
from tts.voice import Voice


@pytest.fixture
def voice_copy(tiny_voice, tmp_path):
    target = tmp_path / "voice"
    shutil.copytree(tiny_voice, target)
    return target


def _edit_card(voice_dir, change):
    card = json.loads((voice_dir / "voice.json").read_text())
    change(card)
    (voice_dir / "voice.json").write_text(json.dumps(card))


def test_card_is_a_typed_view(tiny_voice):
    card = load_card(tiny_voice)
    assert card.acoustic.audio.hop_length == 64 and card.acoustic.config.reduction == 4
    assert card.vocoder.config.upsample_scales == (4, 4, 4)  # a list in JSON, a tuple here
    assert card.default_vocoder == "wavenet" and len(card.acoustic.sha256) == 64
    assert card.weights("vocoder") == tiny_voice / "vocoder.safetensors"
    assert card.vocoder_for("auto", ("griffinlim", "wavenet")) == "wavenet"
    assert card.vocoder_for("auto", ("griffinlim",)) == "griffinlim"


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("acoustic.config.stop_threshold", "0.5", "acoustic.config.stop_threshold must be a number, got '0.5' (str)"),
        ("acoustic.config.decoder_dim", "384", "acoustic.config.decoder_dim must be an integer, got '384' (str)"),
        ("acoustic.config.decoder_dim", 38.4, "acoustic.config.decoder_dim must be an integer, got 38.4"),
        ("acoustic.config.decoder_dim", True, "acoustic.config.decoder_dim must be an integer, got True"),
        ("vocoder.config.upsample_scales", [4, "4", 4], "vocoder.config.upsample_scales[1] must be an integer"),
        ("vocoder.config.output", "wav", "vocoder.config: vocoder.output must be 'mulaw' or 'mol'"),
        ("acoustic.audio.sample_rate", None, "acoustic.audio.sample_rate must be an integer, got None"),
        ("acoustic.audio.n_fft", 32, "acoustic.audio: audio.win_length (256) must not exceed audio.n_fft (32)"),
        ("acoustic.config.no_such", 1, "acoustic.config has unknown field(s) no_such"),
        ("acoustic.steps", "12", "acoustic.steps must be an integer"),
        ("acoustic.file", "../../etc/passwd", "acoustic.file must be a file name in the voice directory"),
        ("default_vocoder", "melgan", "default_vocoder must be one of wavenet, griffinlim"),
        ("wavenet_temperature", 0, "wavenet_temperature must be a number in (0, 4], got 0"),
        ("wavenet_temperature", "1.1", "wavenet_temperature must be a number in (0, 4], got '1.1' (str)"),
        ("wavenet_temperature", True, "wavenet_temperature must be a number in (0, 4], got True"),
        ("wavenet_temperature", None, "wavenet_temperature must be a number in (0, 4], got None"),
        ("wavenet_unvoiced_temperature", 5, "wavenet_unvoiced_temperature must be a number in (0, 4], got 5"),
        ("wavenet_unvoiced_temperature", "2", "wavenet_unvoiced_temperature must be a number in (0, 4], got '2' (str)"),
        ("symbols.pad_id", 3, "symbols: symbol table pad_id must be 0"),
    ],
)
def test_wrong_types_in_the_card_are_named_at_load(voice_copy, field, value, message):
    def change(card):
        *path, last = field.split(".")
        node = card
        for key in path:
            node = node[key]
        node[last] = value

    _edit_card(voice_copy, change)
    with pytest.raises(VoiceError) as err:
        Voice.load(voice_copy, device="cpu")
    text = str(err.value)
    assert text.startswith(f"{voice_copy / 'voice.json'}: ") and message in text, text
    assert len(text.splitlines()) == 1


def test_wrong_type_through_the_cli_is_one_line(voice_copy, tmp_path, capsys):
    _edit_card(voice_copy, lambda card: card["acoustic"]["config"].update(stop_threshold="0.5"))
    assert main(["synth", "Hello.", "-o", str(tmp_path / "a.wav"), "--voice", str(voice_copy), "-q"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "voice.json: acoustic.config.stop_threshold must be a number" in err
    assert not (tmp_path / "a.wav").exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "junk", "flipped"])
def test_damaged_weights_are_named_at_load(voice_copy, damage):
    path = voice_copy / "acoustic.safetensors"
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "junk":
        path.write_bytes(os.urandom(1000))
    else:  # one byte changed in the tensor data: the header still parses, the sha256 does not match
        path.write_bytes(data[:-10] + bytes([data[-10] ^ 0xFF]) + data[-9:])
    with pytest.raises(VoiceError) as err:
        Voice.load(voice_copy, device="cpu")
    text = str(err.value)
    assert text.startswith(f"{path} ") and len(text.splitlines()) == 1
    assert ("sha256 differs" in text) if damage == "flipped" else ("damaged" in text), text


def test_damaged_weights_without_a_hash_are_still_refused(voice_copy):
    # Cards written before the sha256 was recorded: the safetensors reader's own error, as one line.
    _edit_card(voice_copy, lambda card: card["acoustic"].pop("sha256"))
    path = voice_copy / "acoustic.safetensors"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(VoiceError, match=r"acoustic.safetensors is damaged or not a safetensors file \(Error"):
        Voice.load(voice_copy, device="cpu")


def test_missing_weights_and_unreadable_card(voice_copy):
    (voice_copy / "vocoder.safetensors").unlink()
    with pytest.raises(VoiceError, match="vocoder.safetensors is missing"):
        Voice.load(voice_copy, device="cpu")
    assert Voice.load(voice_copy, device="cpu", vocoder=False).vocoder is None  # Griffin-Lim still works
    (voice_copy / "voice.json").write_text("[1, 2]")
    with pytest.raises(VoiceError, match="must be a JSON object"):
        load_card(voice_copy)
    (voice_copy / "voice.json").write_text('{"format": 1, "acoustic": ')
    with pytest.raises(VoiceError, match="cannot read the voice card"):
        load_card(voice_copy)
