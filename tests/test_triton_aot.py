"""The Triton WaveNet kernel compiled ahead of time for the H100/H200 (sm_90) on a machine without
a GPU: Triton compiles for a target it does not run on, so a kernel that would fail to compile on
the GPU fails here first. (tests/test_wavenet_triton.py checks what the kernel computes, in
Triton's CPU interpreter.)"""

import pytest

triton = pytest.importorskip("triton")
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from tts.config import load_recipe  # noqa: E402

# Pointer element types as TritonSampler launches the kernel: the weight matrices in the
# sampler's weight dtype, int32 indices, everything else fp32.
INT_POINTERS = {"forced_ptr", "prev_ptr", "dil_ptr"}
WEIGHT_POINTERS = {"emb_ptr", "wconv_ptr", "wres_ptr", "wskip_ptr", "wh1_ptr", "wh2_ptr", "embp_ptr", "embe_ptr"}
INT_SCALARS = {"n", "t0"}


def _signature(kernel, constants: dict, weight_type: str) -> dict:
    signature = {}
    for name in kernel.arg_names:
        if name in constants:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = "*i32" if name in INT_POINTERS else weight_type if name in WEIGHT_POINTERS else "*fp32"
        else:
            signature[name] = "i32" if name in INT_SCALARS else "fp32"
    return signature


@pytest.mark.parametrize("weights, precision, excitation", [("*fp16", "tf32", "none"), ("*fp32", "ieee", "none"),
                                                         ("*fp16", "tf32", "lpc")])
def test_kernel_compiles_for_hopper(weights, precision, excitation):
    from tts.models import wavenet_triton
    from tts.models.wavenet import WaveNet

    # the default voice's WaveNet sizes
    recipe = load_recipe("teacher", ["data.root=unused", f"vocoder.excitation={excitation}"])
    model = WaveNet(recipe.vocoder, n_mels=recipe.audio.n_mels, hop_length=recipe.audio.hop_length, audio=recipe.audio)
    assert wavenet_triton.unsupported(model) is None
    c = model.config
    lpc = excitation == "lpc"
    constants = dict(L=len(model.blocks), R=c.residual_channels, G2=c.gate_channels // 2, S=c.skip_channels,
                     Q=c.mulaw_channels, HS=max(model.dilations) + 1, BLOCK=wavenet_triton.BLOCK_B,
                     FORCED=False, RECORD=False, PRECISION=precision, LPC=lpc, ORDER=c.lpc_order if lpc else 1,
                     OP=c.lpc_order if lpc else 1, HOP=model.hop_length)
    kernel = wavenet_triton._wavenet_steps
    missing = set(constants) - set(kernel.arg_names)
    assert not missing, f"the kernel's constexpr arguments changed: {missing}"
    source = ASTSource(fn=kernel, signature=_signature(kernel, constants, weights),
                       constexprs={(kernel.arg_names.index(name),): value for name, value in constants.items()})
    compiled = triton.compile(source, target=GPUTarget("cuda", 90, 32))
    assert ".target sm_90" in compiled.asm["ptx"]
    assert len(compiled.asm["cubin"]) > 10_000  # ptxas produced machine code
    if precision == "tf32":  # the GPU default: the dots became tensor-core instructions
        assert "mma" in compiled.asm["ptx"]
