"""Audio encodings the server answers in (tts.formats): wav and raw pcm streamed as the audio is
made, and the compressed formats that the installed libsndfile can write, encoded once the whole
text is spoken."""

from __future__ import annotations

import io
import struct
from typing import Optional

import numpy as np

from tts.formats import ENCODINGS, available  # noqa: F401  (the server's formats are the package's)

# An unknown length: 0xFFFFFFFF in the RIFF and data sizes, as streaming servers send it; players
# and libsndfile read to the end of the stream.
UNKNOWN = 0xFFFFFFFF


def pcm16(wav: np.ndarray) -> bytes:
    """float32 (T,) in [-1, 1] -> little-endian signed 16-bit."""
    return (np.clip(wav, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def wav_header(sample_rate: int, samples: Optional[int] = None) -> bytes:
    """A 44-byte mono 16-bit PCM wav header; ``samples`` None: length unknown (streaming)."""
    data = UNKNOWN if samples is None else samples * 2
    riff = UNKNOWN if samples is None else 36 + data
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt "
            + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", data))


def encode_whole(wav: np.ndarray, sample_rate: int, name: str) -> bytes:
    """The whole utterance in a compressed (or complete wav) encoding."""
    if name == "wav":
        return wav_header(sample_rate, len(wav)) + pcm16(wav)
    import soundfile as sf

    fmt, subtype = ENCODINGS[name].sndfile
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(wav, -1.0, 1.0), sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()
