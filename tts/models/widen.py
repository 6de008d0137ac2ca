"""Grow a trained WaveNet wider without changing what it computes (Net2Net-style widening).

A wider network started from scratch has to relearn what the narrow one knows; started from the
narrow one, it begins where that one stopped and spends its training on what the extra width can
add. ``widen(narrow, wide)`` copies every trained weight into the wide model and arranges the new
units so that they cannot reach the output yet:

- every weight from a new unit into an old one is zero, so the old units, and the logits, compute
  exactly what they did;
- a new unit's own incoming weights keep the wide model's fresh initialisation, so its activations
  are not zero and the zeroed weights leaving it get gradients from the first step.

The units that can grow are the residual channels, the gate channels (each half, tanh and sigmoid,
keeps its old units first), and the skip channels with the head's hidden layer; layers, stacks,
kernel size, mels and output classes must stay as they were.
"""

from __future__ import annotations

import torch

from tts.models.wavenet import WaveNet

# What each axis of a parameter indexes: "res" residual channels, "gate" gate channels (two halves),
# "h" gated units (half the gate), "resskip" the out conv's residual-then-skip rows, "skip" skip
# channels (also the head's hidden layer), None an axis that cannot grow. The first kind listed is
# the axis the parameter writes to (its output), the second the one it reads.
_BLOCK_AXES = {
    "conv.weight": ("gate", "res"), "conv.bias": ("gate", None),
    "cond.weight": ("gate", None),
    "out.weight": ("resskip", "h"), "out.bias": ("resskip", None),
}
_TOP_AXES = {
    "head.1.weight": ("skip", "skip"), "head.1.bias": ("skip", None),
    "head.3.weight": (None, "skip"), "head.3.bias": (None, None),
    "input.bias": ("res", None),
    "input_lpc.weight": ("res", None),
}
_EMBEDDINGS = ("input.weight", "input_pred.weight", "input_exc.weight")  # (classes, R) when mu-law


def _sizes(model: WaveNet) -> dict[str, int]:
    c = model.config
    return {"res": c.residual_channels, "gate": c.gate_channels, "h": c.gate_channels // 2,
            "skip": c.skip_channels, "resskip": c.residual_channels + c.skip_channels}


def _old_positions(kind: str | None, old: dict, new: dict, length: int) -> torch.Tensor:
    """Where each of the narrow model's units sits along an axis of the wide model."""
    if kind is None:
        return torch.arange(length)
    if kind == "gate":  # [tanh half | sigmoid half]: each half keeps its old units first
        half_old, half_new = old["h"], new["h"]
        return torch.cat([torch.arange(half_old), half_new + torch.arange(half_old)])
    if kind == "resskip":  # [residual rows | skip rows]
        return torch.cat([torch.arange(old["res"]), new["res"] + torch.arange(old["skip"])])
    return torch.arange(old[kind])


def _axes(name: str, model: WaveNet) -> tuple[str | None, str | None, int]:
    """(output kind, input kind, the axis of the output) of one state-dict entry."""
    if name.startswith("blocks."):
        return (*_BLOCK_AXES[name.split(".", 2)[2]], 0)
    if name in _EMBEDDINGS:  # an embedding's table is (classes, R); a linear input's weight (R, in)
        return "res", None, 1 if isinstance(model.input, torch.nn.Embedding) else 0
    if name in _TOP_AXES:
        return (*_TOP_AXES[name], 0)
    return None, None, 0  # the upsampler and the LPC analysis: nothing there depends on the widths


@torch.no_grad()
def widen(narrow: WaveNet, wide: WaveNet) -> WaveNet:
    """Load ``narrow``'s weights into ``wide`` (freshly initialised, same layers and outputs, each
    width at least as large) so that ``wide`` computes what ``narrow`` does. Returns ``wide``."""
    a, b = narrow.config, wide.config
    fixed = ("layers", "stacks", "kernel_size", "output", "mulaw_channels", "mixtures", "excitation",
             "lpc_order", "preemphasis", "upsample_scales", "cond_kernel_size")
    differ = [f"{key} ({getattr(a, key)!r} -> {getattr(b, key)!r})" for key in fixed
              if getattr(a, key) != getattr(b, key)]
    if differ or (narrow.n_mels, narrow.hop_length) != (wide.n_mels, wide.hop_length):
        raise ValueError(f"only the widths can grow; these differ: {', '.join(differ) or 'n_mels or hop_length'}")
    old, new = _sizes(narrow), _sizes(wide)
    smaller = [kind for kind in ("res", "gate", "skip") if new[kind] < old[kind]]
    if smaller:
        raise ValueError(f"widen cannot shrink: {', '.join(f'{k} {old[k]} -> {new[k]}' for k in smaller)}")
    theirs = narrow.state_dict()
    state = wide.state_dict()
    for name, target in state.items():
        source = theirs[name]
        if target.shape == source.shape and _axes(name, wide)[:2] == (None, None):
            target.copy_(source)
            continue
        out_kind, in_kind, out_axis = _axes(name, wide)
        t = target.movedim(out_axis, 0) if out_axis else target
        s = source.movedim(out_axis, 0) if out_axis else source
        rows = _old_positions(out_kind, old, new, t.shape[0])
        if t.dim() == 1:
            t[rows] = s
            continue
        cols = _old_positions(in_kind, old, new, t.shape[1])
        t[rows] = 0.0  # an old unit reads nothing new ...
        t[rows[:, None], cols[None, :]] = s  # ... and everything it read before
    wide.load_state_dict(state)
    return wide
