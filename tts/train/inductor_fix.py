"""A workaround for one torch.compile code-generation bug on the CPU, applied before compiling.

Inductor's C++ backend (seen in torch 2.14.1, pytorch/pytorch#194706) writes one reduction into
several bf16 outputs as repeated ``auto at_BFloat16_tmp_acc0_vec = convert(...)`` declarations in
one scope, which g++ refuses ("conflicting declaration"). A compiled training step meets it when
several bf16 biases get the same gradient, as every WaveNet layer's skip bias does: on a
Sapphire Rapids Xeon (AMX) the 64-channel WaveNet's step failed to build. Each store of a
reduction is given its own block here, so the declarations no longer collide; the generated code
is otherwise unchanged. Nothing is done where inductor's code is not the one this was written
against (the method is looked up by name and kept if absent).
"""

from __future__ import annotations

def apply() -> None:
    """Patch inductor's vectorised C++ kernel once per process (idempotent)."""
    try:
        from torch._inductor.codegen.cpp import CppVecKernel
    except ImportError:  # an inductor without this kernel class: nothing to patch
        return
    original = getattr(CppVecKernel, "store_reduction", None)
    if original is None or getattr(original, "scoped_by_tts", False):
        return

    def store_reduction(self, name, index, value):
        lines = getattr(getattr(self, "reduction_suffix", None), "_lines", None)
        if lines is None:
            return original(self, name, index, value)
        start = len(lines)
        original(self, name, index, value)
        if len(lines) > start + 1:  # a declaration and its store: scope them together
            lines.insert(start, "{")
            lines.append("}")

    store_reduction.scoped_by_tts = True
    CppVecKernel.store_reduction = store_reduction
