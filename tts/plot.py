"""Pictures of mel spectrograms and attention alignments, for `tts synth --save-mel/--save-alignment`
(PNG files) and the acoustic stage's TensorBoard images (RGB arrays).

Figures are drawn on matplotlib's Agg canvas directly, so pyplot's global state (and its choice of
an interactive backend) is never touched.
"""

from __future__ import annotations

import io
from typing import Any, Optional

import numpy as np


def figure(width: float, height: float, *, dpi: int) -> Any:
    """A matplotlib Figure of that size in inches, with an Agg canvas attached."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def draw_alignment(ax: Any, alignment: np.ndarray, title: str, *, fontsize: Optional[float] = None) -> Any:
    """One alignment (decoder steps, symbols) with weights in [0, 1]: decoder step across, symbol up.
    A clean diagonal is a healthy model; a smear or a line that stalls is where it mumbles or skips."""
    image = ax.imshow(alignment.T, aspect="auto", origin="lower", interpolation="none", vmin=0.0, vmax=1.0)
    ax.set_title(title, fontsize=fontsize)
    ax.set_xlabel("decoder step", fontsize=fontsize)
    ax.set_ylabel("symbol", fontsize=fontsize)
    return image


def draw_mel(ax: Any, mel: np.ndarray, title: str, *, seconds: Optional[float] = None) -> Any:
    """One log-mel (n_mels, frames): time across (in seconds when ``seconds`` is the duration,
    else frames), mel bin up."""
    extent = None if seconds is None else (0, seconds, 0, mel.shape[0])
    image = ax.imshow(mel, aspect="auto", origin="lower", interpolation="none", extent=extent)
    ax.set_title(title)
    if seconds is not None:
        ax.set_xlabel("seconds")
        ax.set_ylabel("mel bin")
    return image


def png_bytes(fig: Any) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def rgb_array(fig: Any) -> np.ndarray:
    """The figure as an (H, W, 3) uint8 image."""
    fig.tight_layout()
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[:, :, :3].copy()
