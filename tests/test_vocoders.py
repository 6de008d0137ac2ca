"""The vocoder interface (tts.vocoders): a voice's vocoders by name, and streaming: the pieces
``on_audio`` receives are exactly the waveforms ``vocode`` returns, the WaveNet's chunk by chunk."""

import numpy as np
import pytest
import torch

from tests.conftest import TINY_VOICE_SETTINGS
from tts.models.lpc import Deemphasis, deemphasis
from tts.voice import Voice, VoiceError


@pytest.fixture(scope="module", params=["none", "lpc"])
def voice(request, tmp_path_factory):
    from tts.config import load_recipe
    from tts.voice import write_untrained_voice

    recipe = load_recipe("tiny", TINY_VOICE_SETTINGS + [f"vocoder.excitation={request.param}"])
    return Voice.load(write_untrained_voice(tmp_path_factory.mktemp("voice") / request.param, recipe), device="cpu")


def mels(voice, frames=(600, 9)):
    generator = torch.Generator().manual_seed(1)
    return [torch.randn(voice.audio.n_mels, n, generator=generator) * 0.5 - 4 for n in frames]


def test_deemphasis_in_chunks_is_the_whole_signal_deemphasised():
    x = torch.randn(3, 1000, generator=torch.Generator().manual_seed(0)) * 0.3
    filtered = Deemphasis(0.85)
    pieces = [filtered(x[:, a:b]) for a, b in [(0, 1), (1, 18), (18, 18), (18, 318), (318, 1000)]]
    torch.testing.assert_close(torch.cat(pieces, dim=1), deemphasis(x, 0.85), atol=0, rtol=0)


def test_wavenet_streams_exactly_what_it_returns(voice):
    """Each sampler chunk of the 600-frame mel arrives as a piece (the 9-frame one's end in the
    first); joined, each is the returned waveform, which is what finishing the sampler's whole
    output in one call gives."""
    from tts.audio import mel_silence
    from tts.models.wavenet import sampler_class

    pieces: dict[int, list] = {0: [], 1: []}
    wavs = voice.vocode(mels(voice), vocoder="wavenet", seed=5, on_audio=lambda i, piece: pieces[i].append(piece))
    hop = voice.audio.hop_length
    assert [len(w) for w in wavs] == [600 * hop, 9 * hop]
    step = sampler_class("fast")(voice.vocoder, mels(voice)[0][None], torch.tensor([600])).chunk_frames
    assert step < 300 and [len(p) for p in pieces[0]] == [min(step, 600 - f) * hop for f in range(0, 600, step)]
    assert len(pieces[1]) == -(-9 // step)
    for i, wav in enumerate(wavs):
        np.testing.assert_array_equal(np.concatenate(pieces[i]), wav)
        assert np.abs(wav).max() <= 1.0 and np.abs(wav).max() > 0
    model, batch = voice.vocoder, torch.full((2, voice.audio.n_mels, 600), mel_silence(voice.audio))
    for i, mel in enumerate(mels(voice)):
        batch[i, :, : mel.shape[1]] = mel
    lengths = torch.tensor([600, 9])
    whole = model.finish(sampler_class("fast")(model, batch, lengths, seed=5).run(), lengths)
    np.testing.assert_array_equal(whole[0].numpy(), wavs[0])
    np.testing.assert_array_equal(whole[1, : 9 * hop].numpy(), wavs[1])


def test_the_wavenet_samples_at_the_cards_temperature(voice, tmp_path):
    """wavenet_temperature in voice.json is the temperature every caller's WaveNet audio is drawn at."""
    import json
    import shutil

    hotter = tmp_path / "hotter"
    shutil.copytree(voice.path, hotter)
    card = json.loads((hotter / "voice.json").read_text())
    card["wavenet_temperature"] = 1.5
    (hotter / "voice.json").write_text(json.dumps(card))
    warm = Voice.load(hotter, device="cpu")
    assert voice.vocoders["wavenet"].temperature == 1.0 and warm.vocoders["wavenet"].temperature == 1.5
    got = warm.vocode(mels(voice, (40,)), vocoder="wavenet", seed=3)[0]
    batch = mels(voice, (40,))[0][None]
    lengths = torch.tensor([40])
    for temperature, same in ((1.5, True), (1.0, False)):
        wav = voice.vocoder.generate(batch, lengths, temperature=temperature, seed=3)[0].numpy()
        assert np.array_equal(wav, got) == same


def test_a_card_with_an_unvoiced_temperature_samples_its_unvoiced_frames_at_it(voice, tmp_path):
    """wavenet_unvoiced_temperature: the frames whose spectral tilt is not voiced's are drawn at it,
    the voiced ones at wavenet_temperature."""
    import json
    import shutil

    from tts.vocoders import VOICED_TILT, voicing_temperatures

    split = tmp_path / "split"
    shutil.copytree(voice.path, split)
    card = json.loads((split / "voice.json").read_text())
    card.update(wavenet_temperature=1.1, wavenet_unvoiced_temperature=2.0)
    (split / "voice.json").write_text(json.dumps(card))
    warm = Voice.load(split, device="cpu")
    mel = torch.full((voice.audio.n_mels, 40), -4.0)  # flat: unvoiced
    mel[: voice.audio.n_mels // 4, :20] = 0.0  # frames 0-19 loud in the low bands only: voiced
    temps = voicing_temperatures(mel[None], voice.audio, 1.1, 2.0)
    expected = torch.tensor([1.1] * 20 + [2.0] * 20)[None]
    assert torch.equal(temps, expected)
    got = warm.vocode([mel], vocoder="wavenet", seed=3)[0]
    lengths = torch.tensor([40])
    assert np.array_equal(voice.vocoder.generate(mel[None], lengths, temperature=temps, seed=3)[0].numpy(), got)
    assert not np.array_equal(voice.vocoder.generate(mel[None], lengths, temperature=1.1, seed=3)[0].numpy(), got)
    assert VOICED_TILT > 0


def test_spectral_tilt_tells_a_vowel_from_a_fricative():
    """A 150 Hz harmonic tone with falling harmonics (a vowel's shape) stands well above
    VOICED_TILT; noise above 3 kHz (an /s/) and white noise well below it."""
    from tts.audio import MelSpectrogram, spectral_tilt
    from tts.config import AudioConfig
    from tts.vocoders import VOICED_TILT

    audio = AudioConfig()
    t = torch.arange(audio.sample_rate) / audio.sample_rate
    vowel = sum(torch.sin(2 * torch.pi * 150 * k * t) / k ** 2 for k in range(1, 40)) * 0.3
    noise = torch.randn(audio.sample_rate, generator=torch.Generator().manual_seed(0)) * 0.1
    spectrum = torch.fft.rfft(noise)
    spectrum[: int(3500 * len(noise) / audio.sample_rate)] = 0
    hiss = torch.fft.irfft(spectrum, n=len(noise))
    mel = MelSpectrogram(audio)
    tilts = {name: spectral_tilt(mel(wav), audio)[5:-5].median().item()
             for name, wav in (("vowel", vowel), ("hiss", hiss), ("noise", noise))}
    assert tilts["vowel"] > VOICED_TILT + 1.0, tilts
    assert tilts["hiss"] < -1.0 and abs(tilts["noise"]) < VOICED_TILT, tilts


def test_griffin_lim_hands_out_each_sentence_whole(voice):
    pieces = []
    wavs = voice.vocode(mels(voice), vocoder="griffinlim", seed=2, on_audio=lambda i, piece: pieces.append((i, piece)))
    assert [i for i, _ in pieces] == [0, 1]
    for (_, piece), wav in zip(pieces, wavs):
        np.testing.assert_array_equal(piece, wav)


def test_a_voice_names_its_vocoders_and_refuses_one_it_lacks(voice, tmp_path):
    assert sorted(voice.vocoders) == ["griffinlim", "wavenet"]
    assert voice.vocoder_named("auto").name == voice.card.default_vocoder == "wavenet"
    assert voice.vocoder_named("griffinlim").name == "griffinlim"
    with pytest.raises(VoiceError, match="unknown vocoder 'hifigan'"):
        voice.vocoder_named("hifigan")
    bare = Voice.load(voice.path, device="cpu", vocoder=False)
    assert sorted(bare.vocoders) == ["griffinlim"] and bare.vocoder_named("auto").name == "griffinlim"
    with pytest.raises(VoiceError, match="has no trained vocoder"):
        bare.vocode(mels(voice), vocoder="wavenet")
    assert voice.vocode([], vocoder="wavenet") == []
