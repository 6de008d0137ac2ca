"""The Python API: load a voice once, then speak as many texts as you like.

>>> import tts
>>> speaker = tts.load()                                # the default voice, on CUDA when there is one
>>> speaker = tts.load("runs/lj", device="cpu")         # a training run directory, on the CPU
>>> speech = speaker.speak("Hello world.", seed=1)      # speech.wav: (T,) float32, speech.sample_rate
>>> speech.save("hello.wav")                            # or speaker.save("Hello world.", "hello.wav")
>>> speeches = speaker.speak_many(["One.", "Two."])     # batched together
>>> for piece in speaker.stream("A long text. ..."):   # (T_i,) float32 pieces as sentences finish
...     play(piece)
>>> speech                                              # in a Jupyter notebook: an audio player

It runs the same code as `tts synth`, `tts batch` and `tts serve` (tts.synth).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from tts.synth import (MAX_CHARS, VOCODERS, Speech, SpeechInfo, SynthesisError, SynthesisSettings, stream_audio,
                       synthesize_texts, synthesize_to_file)
from tts.voice import Voice


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {type(text).__name__}")
    return text


class Synthesizer:
    """A loaded voice with synthesis settings that stay the same across calls (vocoder, batch
    size, chunk length); the per-call ones (seed, speed, silence) are arguments of each method."""

    def __init__(self, voice: Voice, *, vocoder: str = "auto", batch_size: int = 8, max_chars: int = MAX_CHARS):
        self.settings = SynthesisSettings(vocoder=vocoder, batch_size=batch_size, max_chars=max_chars)
        voice.vocoder_named(vocoder)  # VoiceError when the voice lacks it
        self.voice = voice

    @classmethod
    def load(cls, voice: Union[str, Path, None] = None, *, device: Optional[str] = None, vocoder: str = "auto",
             batch_size: int = 8, normalizer: str = "builtin") -> "Synthesizer":
        """Load a voice directory (None: the default voice) onto ``device`` ("cpu", "cuda", "cuda:1";
        None: CUDA when available). vocoder "griffinlim" skips loading the WaveNet. ``normalizer``
        "nemo" reads written forms with NeMo's grammars (the nemo extra; docs/frontend.md)."""
        from tts.text import Frontend

        if vocoder not in VOCODERS:
            raise SynthesisError(f"unknown vocoder {vocoder!r}; use {', '.join(VOCODERS)}")
        frontend = Frontend(normalizer=normalizer)
        frontend.normalize("Ready.")  # a missing extra fails here, and NeMo's grammars load now, not mid-speech
        loaded = Voice.load(voice, device=device, vocoder=vocoder != "griffinlim", frontend=frontend)
        return cls(loaded, vocoder=vocoder, batch_size=batch_size)

    @property
    def vocoder(self) -> str:
        return self.settings.vocoder

    @property
    def batch_size(self) -> int:
        return self.settings.batch_size

    @property
    def max_chars(self) -> int:
        return self.settings.max_chars

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    @property
    def device(self) -> str:
        return str(self.voice.device)

    def settings_for(self, *, seed: Optional[int] = None, speed: float = 1.0,
                     sentence_silence: float = 0.3) -> SynthesisSettings:
        """This synthesizer's settings with one call's seed, speed and silence."""
        return dataclasses.replace(self.settings, seed=seed, speed=speed, sentence_silence=sentence_silence)

    def speak(self, text: str, *, seed: Optional[int] = None, speed: float = 1.0, sentence_silence: float = 0.3,
              details: bool = False, progress: bool = False) -> Speech:
        """One text of any length -> Speech (wav (T,) float32 at sample_rate). ``speed`` 1.5 is
        faster, 0.8 slower (0.25 to 4); ``details`` keeps per-sentence mels and alignments for
        tts.synth.save_mel_plot / save_alignment_plot. Raises tts.text.TextError on text with
        nothing to speak."""
        return self.speak_many([_check_text(text)], seed=seed, speed=speed, sentence_silence=sentence_silence,
                               details=details, progress=progress)[0]

    def speak_many(self, texts: Sequence[str], *, seed: Optional[int] = None, speed: float = 1.0,
                   sentence_silence: float = 0.3, details: bool = False, progress: bool = False,
                   errors: str = "raise") -> list:
        """Texts -> one Speech each, synthesized in shared length-sorted batches. With
        errors="return" a text that cannot be spoken gives its exception in its place."""
        if isinstance(texts, str):
            raise TypeError("speak_many takes a list of texts; use speak() for one text")
        texts = [_check_text(text) for text in texts]
        return synthesize_texts(self.voice, texts, self.settings_for(seed=seed, speed=speed,
                                                                     sentence_silence=sentence_silence),
                                errors=errors, details=details, progress=progress)

    def stream(self, text: str, *, seed: Optional[int] = None, speed: float = 1.0,
               sentence_silence: float = 0.3) -> Iterator[np.ndarray]:
        """One text's audio as (T_i,) float32 pieces, sentence by sentence with the silences
        between them; the same samples as ``speak`` joined. Memory stays flat for any length."""
        return stream_audio(self.voice, _check_text(text),
                            self.settings_for(seed=seed, speed=speed, sentence_silence=sentence_silence))

    def save(self, text: str, path: Union[str, Path], *, seed: Optional[int] = None, speed: float = 1.0,
             sentence_silence: float = 0.3) -> SpeechInfo:
        """Speak ``text`` into ``path`` as it is made, in the format its extension names (.wav,
        .flac, .ogg, .mp3, .pcm; tts.formats); the file appears whole or not at all. Returns what
        was spoken, without the audio."""
        return synthesize_to_file(self.voice, _check_text(text), path,
                                  self.settings_for(seed=seed, speed=speed, sentence_silence=sentence_silence))

    def __repr__(self) -> str:
        return f"Synthesizer(voice={str(self.voice.path)!r}, device={self.device!r}, vocoder={self.vocoder!r})"


def load(voice: Union[str, Path, None] = None, *, device: Optional[str] = None, vocoder: str = "auto",
         batch_size: int = 8, normalizer: str = "builtin") -> Synthesizer:
    """``Synthesizer.load``: the default voice, or a voice / training run directory."""
    return Synthesizer.load(voice, device=device, vocoder=vocoder, batch_size=batch_size, normalizer=normalizer)
