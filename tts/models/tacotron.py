"""Tacotron 2 acoustic model: symbol ids -> natural-log mel frames.

Plain nn.Modules; losses, optimiser and logging live in tts/train/acoustic.py.

Shape letters: B sentences, L symbols, T mel frames, r = config.reduction frames per decoder step,
T_dec = ceil(T / r) decoder steps.

Alignment robustness at inference (see docs/tacotron.md):
- location-sensitive attention over the previous and the cumulative attention weights;
- a window: step t may only attend to symbols in [p - 1, p + attention_window], p being the
  argmax of step t - 1 (p = 0 before the first step), so attention cannot skip ahead or jump back;
- a length bound per sentence, ceil(max_frames_per_symbol * L_i) + max_frames_margin frames (and
  ``max_frames`` when given), so a stop token that never fires cannot babble forever;
- every padded position (symbols past L_i, frames past T_i) is masked, so a sentence's output
  does not depend on the other sentences in its batch.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from tts.config import TacotronConfig

STOP = "stop"
LENGTH_BOUND = "length_bound"


def lengths_to_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """lengths (B,) -> (B, max_len) bool, True at valid positions."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _check_odd(name: str, value: int) -> None:
    if value < 1 or value % 2 == 0:
        raise ValueError(f"acoustic.{name} must be a positive odd number (for 'same' padding), got {value}")


class ConvBlock(nn.Module):
    """Conv1d + BatchNorm + activation + dropout; positions past each length are zeroed so that the
    next convolution sees the same zero padding as an unbatched sentence would.

    forward(x: (B, C_in, T), mask: (B, 1, T)) -> (B, C_out, T)
    """

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int, dropout: float, activation: str):
        super().__init__()
        if activation not in ("relu", "tanh", "none"):
            raise ValueError(f"unknown activation {activation!r}")
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.norm = nn.BatchNorm1d(out_channels)
        self.activation = activation
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.conv(x))
        if self.activation == "relu":
            x = F.relu(x)
        elif self.activation == "tanh":
            x = torch.tanh(x)
        return self.dropout(x) * mask


class Encoder(nn.Module):
    """Embedding, convolutions, BiLSTM.

    forward(text: (B, L) long, lengths: (B,)) -> memory (B, L, encoder_dim), zero past each length
    """

    def __init__(self, *, n_symbols: int, pad_id: int, embedding_dim: int, encoder_dim: int, conv_layers: int,
                 kernel_size: int, dropout: float):
        super().__init__()
        if encoder_dim % 2:
            raise ValueError(f"acoustic.encoder_dim must be even (two LSTM directions), got {encoder_dim}")
        self.embedding = nn.Embedding(n_symbols, embedding_dim, padding_idx=pad_id)
        # As in Tacotron 2: uniform, scaled to the fan-in and fan-out of the embedding.
        bound = math.sqrt(3.0) * math.sqrt(2.0 / (n_symbols + embedding_dim))
        with torch.no_grad():
            self.embedding.weight.uniform_(-bound, bound)
            self.embedding.weight[pad_id].zero_()
        self.convs = nn.ModuleList(
            ConvBlock(in_channels=embedding_dim if i == 0 else encoder_dim, out_channels=encoder_dim,
                      kernel_size=kernel_size, dropout=dropout, activation="relu")
            for i in range(conv_layers)
        )
        self.lstm = nn.LSTM(encoder_dim if conv_layers else embedding_dim, encoder_dim // 2, batch_first=True,
                            bidirectional=True)

    def forward(self, text: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = lengths_to_mask(lengths, text.shape[1])[:, None, :]
        x = self.embedding(text).transpose(1, 2) * mask  # (B, E, L)
        for conv in self.convs:
            x = conv(x, mask)
        # Packing keeps the backward direction from reading padding: sentences stay batch-independent.
        packed = nn.utils.rnn.pack_padded_sequence(x.transpose(1, 2), lengths.cpu(), batch_first=True,
                                                   enforce_sorted=False)
        self.lstm.flatten_parameters()
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=text.shape[1])
        return out


class Prenet(nn.Module):
    """Two ReLU layers whose dropout is on in training and at inference (Tacotron 2, section 2.3):
    the noise is what lets the autoregressive decoder recover from its own imperfect frames.

    forward(x: (..., n_mels), generator=None, enabled=True) -> (..., prenet_dim)
    """

    def __init__(self, *, in_dim: int, dim: int, dropout: float):
        super().__init__()
        self.layers = nn.ModuleList([nn.Linear(in_dim, dim), nn.Linear(dim, dim)])
        self.p = dropout

    def forward(self, x: torch.Tensor, *, generator: Optional[torch.Generator] = None,
                enabled: bool = True) -> torch.Tensor:
        for layer in self.layers:
            x = F.relu(layer(x))
            if not enabled or self.p == 0:
                continue
            if generator is None:
                x = F.dropout(x, self.p, training=True)
            else:
                keep = torch.rand(x.shape, generator=generator, device=x.device) >= self.p
                x = x * keep.to(x.dtype) / (1.0 - self.p)
        return x


class LocationSensitiveAttention(nn.Module):
    """Additive attention whose energies also see convolved previous and cumulative weights
    (Chorowski et al. 2015), which pushes the alignment forward instead of back to a seen symbol.

    forward(query: (B, Q), memory: (B, L, E), processed: (B, L, A), weights_cat: (B, 2, L),
            mask: (B, L) bool) -> context (B, E), weights (B, L) (zero where mask is False)
    """

    def __init__(self, *, query_dim: int, memory_dim: int, attention_dim: int, location_filters: int,
                 location_kernel_size: int):
        super().__init__()
        self.query = nn.Linear(query_dim, attention_dim, bias=False)
        self.memory = nn.Linear(memory_dim, attention_dim, bias=False)
        self.location_conv = nn.Conv1d(2, location_filters, location_kernel_size, padding=location_kernel_size // 2,
                                       bias=False)
        self.location = nn.Linear(location_filters, attention_dim, bias=False)
        self.v = nn.Linear(attention_dim, 1, bias=False)

    def process_memory(self, memory: torch.Tensor) -> torch.Tensor:
        """memory (B, L, E) -> (B, L, A), computed once per sentence."""
        return self.memory(memory)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, processed: torch.Tensor, weights_cat: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        location = self.location(self.location_conv(weights_cat).transpose(1, 2))  # (B, L, A)
        energies = self.v(torch.tanh(self.query(query)[:, None, :] + processed + location)).squeeze(-1)
        energies = energies.float().masked_fill(~mask, float("-inf"))
        weights = torch.softmax(energies, dim=-1).to(memory.dtype)
        context = torch.bmm(weights[:, None, :], memory).squeeze(1)
        return context, weights


class Decoder(nn.Module):
    """Prenet, attention LSTM, location-sensitive attention, decoder LSTM(s), frame and stop projections.

    One step emits r frames. ``layers`` counts LSTM cells: the attention LSTM plus layers - 1
    decoder LSTMs (2 = Tacotron 2).
    """

    def __init__(self, *, n_mels: int, reduction: int, encoder_dim: int, config: TacotronConfig):
        super().__init__()
        c = config
        self.n_mels, self.r, self.dim, self.dropout = n_mels, reduction, c.decoder_dim, c.decoder_dropout
        self.prenet = Prenet(in_dim=n_mels, dim=c.prenet_dim, dropout=c.prenet_dropout)
        self.attention_rnn = nn.LSTMCell(c.prenet_dim + encoder_dim, c.decoder_dim)
        self.attention = LocationSensitiveAttention(
            query_dim=c.decoder_dim, memory_dim=encoder_dim, attention_dim=c.attention_dim,
            location_filters=c.location_filters, location_kernel_size=c.location_kernel_size)
        self.decoder_rnns = nn.ModuleList(
            nn.LSTMCell(c.decoder_dim + encoder_dim if i == 0 else c.decoder_dim, c.decoder_dim)
            for i in range(c.decoder_layers - 1)
        )
        self.mel_proj = nn.Linear(c.decoder_dim + encoder_dim, n_mels * reduction)
        self.stop_proj = nn.Linear(c.decoder_dim + encoder_dim, reduction)

    def init_state(self, memory: torch.Tensor) -> dict:
        B, L, E = memory.shape
        zeros = memory.new_zeros
        return {
            "rnn": [(zeros(B, self.dim), zeros(B, self.dim)) for _ in range(1 + len(self.decoder_rnns))],
            "weights": zeros(B, L),
            "cumulative": zeros(B, L),
            "context": zeros(B, E),
        }

    def step(self, x: torch.Tensor, state: dict, memory: torch.Tensor, processed: torch.Tensor,
             mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """One decoder step. x: prenet output (B, P); mask: (B, L) symbols attention may look at.
        Returns features (B, decoder_dim + E) for the projections, weights (B, L) and the new state."""
        rnn = state["rnn"]
        h, c = self.attention_rnn(torch.cat([x, state["context"]], dim=-1), rnn[0])
        new_rnn = [(h, c)]
        query = F.dropout(h, self.dropout, training=self.training)
        weights_cat = torch.stack([state["weights"], state["cumulative"]], dim=1)
        context, weights = self.attention(query, memory, processed, weights_cat, mask)
        out = query
        for i, cell in enumerate(self.decoder_rnns):
            inp = torch.cat([out, context], dim=-1) if i == 0 else out
            h, c = cell(inp, rnn[i + 1])
            new_rnn.append((h, c))
            out = F.dropout(h, self.dropout, training=self.training)
        new_state = {"rnn": new_rnn, "weights": weights, "cumulative": state["cumulative"] + weights,
                     "context": context}
        return torch.cat([out, context], dim=-1), weights, new_state


class Postnet(nn.Module):
    """Residual convolutions refining the whole mel at once.

    forward(mel: (B, n_mels, T), mask: (B, 1, T)) -> residual (B, n_mels, T), zero past each length
    """

    def __init__(self, *, n_mels: int, dim: int, layers: int, kernel_size: int, dropout: float):
        super().__init__()
        if layers < 1:
            raise ValueError(f"acoustic.postnet_layers must be at least 1, got {layers}")
        self.convs = nn.ModuleList(
            ConvBlock(in_channels=n_mels if i == 0 else dim, out_channels=n_mels if i == layers - 1 else dim,
                      kernel_size=kernel_size, dropout=dropout, activation="none" if i == layers - 1 else "tanh")
            for i in range(layers)
        )

    def forward(self, mel: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = mel
        for conv in self.convs:
            x = conv(x, mask)
        return x


class Tacotron(nn.Module):
    """Tacotron 2 with a reduction factor and inference-time alignment constraints.

    >>> model = Tacotron(TacotronConfig(), n_symbols=len(symbols["symbols"]), n_mels=audio.n_mels,
    ...                  pad_id=symbols["pad_id"])
    """

    def __init__(self, config: TacotronConfig, *, n_symbols: int, n_mels: int, pad_id: int = 0):
        super().__init__()
        c = config
        if not 0 <= pad_id < n_symbols:
            raise ValueError(f"pad_id {pad_id} is not a symbol id (n_symbols={n_symbols})")
        if c.reduction < 1:
            raise ValueError(f"acoustic.reduction must be at least 1, got {c.reduction}")
        if c.decoder_layers < 1:
            raise ValueError(f"acoustic.decoder_layers must be at least 1 (the attention LSTM), got {c.decoder_layers}")
        for name in ("encoder_kernel_size", "location_kernel_size", "postnet_kernel_size"):
            _check_odd(name, getattr(c, name))
        if c.attention_window < 0 or c.max_frames_per_symbol <= 0 or c.max_frames_margin < 0:
            raise ValueError(f"need acoustic.attention_window >= 0, max_frames_per_symbol > 0 and "
                             f"max_frames_margin >= 0, got {c.attention_window}, {c.max_frames_per_symbol}, "
                             f"{c.max_frames_margin}")
        for name in ("dropout", "prenet_dropout", "decoder_dropout"):
            if not 0 <= getattr(c, name) < 1:
                raise ValueError(f"acoustic.{name} must be in [0, 1), got {getattr(c, name)}")
        self.config, self.n_symbols, self.n_mels, self.pad_id = c, n_symbols, n_mels, pad_id
        self.encoder = Encoder(n_symbols=n_symbols, pad_id=pad_id, embedding_dim=c.embedding_dim,
                               encoder_dim=c.encoder_dim, conv_layers=c.encoder_conv_layers,
                               kernel_size=c.encoder_kernel_size, dropout=c.dropout)
        self.decoder = Decoder(n_mels=n_mels, reduction=c.reduction, encoder_dim=c.encoder_dim, config=c)
        self.postnet = Postnet(n_mels=n_mels, dim=c.postnet_dim, layers=c.postnet_layers,
                               kernel_size=c.postnet_kernel_size, dropout=c.dropout)

    @property
    def reduction(self) -> int:
        return self.config.reduction

    def _encode(self, text: torch.Tensor, text_lengths: torch.Tensor):
        if text.dim() != 2 or text_lengths.shape != text.shape[:1]:
            raise ValueError(f"expected text (B, L) and text_lengths (B,), got {tuple(text.shape)} and "
                             f"{tuple(text_lengths.shape)}")
        if int(text_lengths.min()) < 1 or int(text_lengths.max()) > text.shape[1]:
            raise ValueError(f"text_lengths must lie in [1, {text.shape[1]}], got {text_lengths.tolist()}")
        memory = self.encoder(text, text_lengths)
        return memory, self.decoder.attention.process_memory(memory), lengths_to_mask(text_lengths, text.shape[1])

    def _postnet(self, mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero frames past each length (the postnet's convolutions then see what an unbatched
        sentence would), add the residual. Returns (mel, mel_post), both zero past each length."""
        mask = lengths_to_mask(lengths, mel.shape[2])[:, None, :]
        mel = mel * mask
        return mel, (mel + self.postnet(mel, mask)) * mask

    def forward(self, text: torch.Tensor, text_lengths: torch.Tensor, mel: torch.Tensor,
                mel_lengths: torch.Tensor) -> dict:
        """Teacher-forced pass.

        text: (B, L) long; text_lengths: (B,); mel: (B, n_mels, T) target log mels (any T);
        mel_lengths: (B,).
        Returns {"mel": (B, n_mels, T) before the postnet, "mel_post": (B, n_mels, T) after it
        (both zero past each mel length), "stop_logits": (B, T), "alignments": (B, T_dec, L)}.
        """
        if mel.dim() != 3 or mel.shape[1] != self.n_mels:
            raise ValueError(f"expected mel (B, {self.n_mels}, T), got {tuple(mel.shape)}")
        B, _, T = mel.shape
        r = self.config.reduction
        steps = -(-T // r)
        memory, processed, mask = self._encode(text, text_lengths)
        # Step t is fed the last frame of step t - 1 (a zero "go" frame first). The padding added to
        # reach a multiple of r only lands in the last step's group, which is never fed back.
        padded = F.pad(mel, (0, steps * r - T))
        inputs = torch.cat([mel.new_zeros(B, self.n_mels, 1), padded[:, :, r - 1::r][:, :, : steps - 1]], dim=2)
        prenet_out = self.decoder.prenet(inputs.permute(2, 0, 1))  # (T_dec, B, P)
        state = self.decoder.init_state(memory)
        features, alignments = [], []
        for t in range(steps):
            feats, weights, state = self.decoder.step(prenet_out[t], state, memory, processed, mask)
            features.append(feats)
            alignments.append(weights)
        feats = torch.stack(features, dim=1)  # (B, T_dec, D + E)
        mel_out = self.decoder.mel_proj(feats).reshape(B, steps * r, self.n_mels).transpose(1, 2)[:, :, :T]
        stop_logits = self.decoder.stop_proj(feats).reshape(B, steps * r)[:, :T]
        mel_out, mel_post = self._postnet(mel_out, mel_lengths)
        return {"mel": mel_out, "mel_post": mel_post, "stop_logits": stop_logits,
                "alignments": torch.stack(alignments, dim=1)}

    def length_bounds(self, text_lengths: torch.Tensor, max_frames: Optional[int] = None) -> torch.Tensor:
        """(B,) -> (B,) long: the most frames inference may emit per sentence,
        ceil(max_frames_per_symbol * L_i) + max_frames_margin, capped at ``max_frames``."""
        c = self.config
        bounds = torch.ceil(text_lengths.double() * c.max_frames_per_symbol).long() + c.max_frames_margin
        if max_frames is not None:
            if max_frames < 1:
                raise ValueError(f"max_frames must be at least 1, got {max_frames}")
            bounds = bounds.clamp(max=max_frames)
        return bounds.clamp(min=1)

    @torch.no_grad()
    def infer(self, text: torch.Tensor, text_lengths: torch.Tensor, *, generator: Optional[torch.Generator] = None,
              max_frames: Optional[int] = None, prenet_dropout: bool = True, pad_value: float = 0.0) -> dict:
        """Free-running synthesis of a batch; each sentence stops on its own.

        text: (B, L) long padded with pad_id; text_lengths: (B,). Call in eval mode.
        A sentence stops at the first frame whose stop probability exceeds config.stop_threshold
        (that frame is kept) or at its length bound (``length_bounds``), whichever comes first.
        ``generator`` drives the prenet dropout: the same seed gives the same output.
        ``prenet_dropout=False`` turns that dropout off (then a sentence's output does not depend on
        its batch at all; with it on, the noise drawn for a sentence depends on the batch size).
        Frames past a sentence's length hold ``pad_value`` (0.0 by default; pass
        math.log(audio.log_floor) for silence); alignment steps past it are zero.

        Returns {"mel_post": (B, n_mels, T_max), "mel": (B, n_mels, T_max) before the postnet,
        "mel_lengths": (B,) long, "alignments": (B, ceil(T_max / r), L),
        "stop_reason": list of "stop" | "length_bound"}, T_max = max(mel_lengths).
        """
        c = self.config
        r = c.reduction
        B, L = text.shape
        device = text.device
        memory, processed, mask = self._encode(text, text_lengths)
        bounds = self.length_bounds(text_lengths, max_frames).to(device)
        max_steps = -(-int(bounds.max()) // r)
        positions = torch.arange(L, device=device)[None, :]
        offsets = torch.arange(r, device=device)[None, :]
        state = self.decoder.init_state(memory)
        frame = memory.new_zeros(B, self.n_mels)
        peak = torch.zeros(B, dtype=torch.long, device=device)
        lengths = bounds.clone()
        stopped = torch.zeros(B, dtype=torch.bool, device=device)
        done = torch.zeros(B, dtype=torch.bool, device=device)
        # Each step's frames and attention go into buffers made once, not into lists of small
        # tensors: on the CPU those, kept while each step frees a (B, L, attention_dim) block,
        # fragmented glibc's heap by about that block per step (+170 MB for 8 chunks of 150
        # symbols; docs/synthesis.md, "Memory of tts synth for long texts").
        frames = alignments = None
        for step in range(max_steps):
            x = self.decoder.prenet(frame, generator=generator, enabled=prenet_dropout)
            window = (positions >= peak[:, None] - 1) & (positions <= peak[:, None] + c.attention_window)
            feats, weights, state = self.decoder.step(x, state, memory, processed, mask & window)
            peak = weights.argmax(dim=-1)
            group = self.decoder.mel_proj(feats).view(B, r, self.n_mels)
            if frames is None:
                frames = group.new_empty(B, max_steps, r, self.n_mels)
                alignments = weights.new_empty(B, max_steps, L)
            frames[:, step] = group
            alignments[:, step] = weights
            frame = group[:, -1]
            index = step * r + offsets  # (1, r) frame indices of this step
            fired = (torch.sigmoid(self.decoder.stop_proj(feats).float()) > c.stop_threshold) & (index < bounds[:, None])
            newly = fired.any(dim=1) & ~done
            first = step * r + fired.int().argmax(dim=1) + 1
            lengths = torch.where(newly, first, lengths)
            stopped |= newly
            done |= newly | ((step + 1) * r >= bounds)
            if bool(done.all()):
                break
        T_max = int(lengths.max())
        mel = frames[:, :step + 1].reshape(B, (step + 1) * r, self.n_mels).transpose(1, 2)[:, :, :T_max]
        mel, mel_post = self._postnet(mel, lengths)
        pad = ~lengths_to_mask(lengths, T_max)[:, None, :]
        steps = -(-T_max // r)
        step_mask = lengths_to_mask(-(-lengths // r), steps)[:, :, None]
        return {
            "mel_post": mel_post.masked_fill(pad, pad_value),
            "mel": mel.masked_fill(pad, pad_value),
            "mel_lengths": lengths,
            "alignments": alignments[:, :steps] * step_mask,
            "stop_reason": [STOP if s else LENGTH_BOUND for s in stopped.tolist()],
        }
