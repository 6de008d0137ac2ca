"""Handing freed heap memory back to the system while a long text is synthesized.

Why: every batch, and every Griffin-Lim call within it, allocates blocks of new sizes (the
decoder's steps and postnet scale with the batch's longest chunk, Griffin-Lim's STFTs with each
chunk's length), interleaved with blocks that live on (each chunk's waveform, kept until its window
is written). glibc serves such blocks from its heap, and the pages of the freed ones stay resident:
the RSS of `tts synth` grew about 0.45 MB per chunk, 1.65x from 1k to 100k characters.
malloc_trim(0) returns every whole free page in every arena (madvise), so calling it after each
batch and each Griffin-Lim chunk keeps the RSS at one batch's working set
(docs/synthesis.md, "Memory of tts synth for long texts", has the figures and what else was tried).
"""

from __future__ import annotations

import ctypes
import sys


def release_freed_memory() -> None:
    """glibc's malloc_trim(0); nothing where there is no glibc (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)
