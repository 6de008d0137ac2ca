"""The Python API: load a voice once, then speak as many texts as you like.

>>> import tts
>>> speaker = tts.load()                                # the default voice, on CUDA when there is one
>>> speaker = tts.load("runs/lj", device="cpu")         # a training run directory, on the CPU
>>> speech = speaker.speak("Hello world.", seed=1)      # speech.wav: (T,) float32, speech.sample_rate
>>> speech.save("hello.wav")                            # or speaker.save("Hello world.", "hello.wav")
>>> speeches = speaker.speak_many(["One.", "Two."])     # batched together
>>> speech                                              # in a Jupyter notebook: an audio player

It runs the same code as `tts synth` and `tts batch` (tts.synth.synthesize_texts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Union

from tts.synth import MAX_CHARS, VOCODERS, Speech, SynthesisError, synthesize_texts
from tts.voice import Voice, VoiceError


class Synthesizer:
    """A loaded voice with synthesis settings that stay the same across calls."""

    def __init__(self, voice: Voice, *, vocoder: str = "auto", batch_size: int = 8, max_chars: int = MAX_CHARS):
        if vocoder not in VOCODERS:
            raise SynthesisError(f"unknown vocoder {vocoder!r}; use {', '.join(VOCODERS)}")
        if vocoder == "wavenet" and voice.vocoder is None:
            raise VoiceError(f"{voice.path} has no trained vocoder; use --vocoder griffinlim")
        if batch_size < 1:
            raise SynthesisError(f"batch size must be at least 1, got {batch_size}")
        self.voice, self.vocoder, self.batch_size, self.max_chars = voice, vocoder, batch_size, max_chars

    @classmethod
    def load(cls, voice: Union[str, Path, None] = None, *, device: Optional[str] = None, vocoder: str = "auto",
             batch_size: int = 8) -> "Synthesizer":
        """Load a voice directory (None: the default voice) onto ``device`` ("cpu", "cuda", "cuda:1";
        None: CUDA when available). vocoder "griffinlim" skips loading the WaveNet."""
        if vocoder not in VOCODERS:
            raise SynthesisError(f"unknown vocoder {vocoder!r}; use {', '.join(VOCODERS)}")
        loaded = Voice.load(voice, device=device, vocoder=vocoder != "griffinlim")
        return cls(loaded, vocoder=vocoder, batch_size=batch_size)

    @property
    def sample_rate(self) -> int:
        return self.voice.sample_rate

    @property
    def device(self) -> str:
        return str(self.voice.device)

    def speak(self, text: str, *, seed: Optional[int] = None, speed: float = 1.0, sentence_silence: float = 0.3,
              details: bool = False, progress: bool = False) -> Speech:
        """One text of any length -> Speech (wav (T,) float32 at sample_rate). ``speed`` 1.5 is
        faster, 0.8 slower (0.25 to 4); ``details`` keeps per-sentence mels and alignments for
        tts.synth.save_mel_plot / save_alignment_plot. Raises tts.text.TextError on text with
        nothing to speak."""
        return self.speak_many([text], seed=seed, speed=speed, sentence_silence=sentence_silence, details=details,
                               progress=progress)[0]

    def speak_many(self, texts: Sequence[str], *, seed: Optional[int] = None, speed: float = 1.0,
                   sentence_silence: float = 0.3, details: bool = False, progress: bool = False,
                   errors: str = "raise") -> list:
        """Texts -> one Speech each, synthesized in shared length-sorted batches. With
        errors="return" a text that cannot be spoken gives its exception in its place."""
        if isinstance(texts, str):
            raise TypeError("speak_many takes a list of texts; use speak() for one text")
        return synthesize_texts(self.voice, texts, vocoder=self.vocoder, seed=seed, sentence_silence=sentence_silence,
                                speed=speed, batch_size=self.batch_size, max_chars=self.max_chars, errors=errors,
                                details=details, progress=progress)

    def save(self, text: str, path: Union[str, Path], *, seed: Optional[int] = None, speed: float = 1.0,
             sentence_silence: float = 0.3) -> Speech:
        """Speak ``text`` into a 16-bit wav file at ``path`` (written whole or not at all)."""
        speech = self.speak(text, seed=seed, speed=speed, sentence_silence=sentence_silence)
        speech.save(path)
        return speech

    def __repr__(self) -> str:
        return f"Synthesizer(voice={str(self.voice.path)!r}, device={self.device!r}, vocoder={self.vocoder!r})"


def load(voice: Union[str, Path, None] = None, *, device: Optional[str] = None, vocoder: str = "auto",
         batch_size: int = 8) -> Synthesizer:
    """``Synthesizer.load``: the default voice, or a voice / training run directory."""
    return Synthesizer.load(voice, device=device, vocoder=vocoder, batch_size=batch_size)
