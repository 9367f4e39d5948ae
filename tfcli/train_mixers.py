"""Activations saved for backward by the token mixers that are not softmax attention: Gated
DeltaNet (Qwen3-Next), Mamba-1 (Mamba, Jamba) and Mamba-2 (Mamba-2, Falcon-H1, Granite-4.0-H),
as transformers runs them without the CUDA kernels (its reference PyTorch scans, which is
what a CPU run and the oracle execute: ``torch_chunk_gated_delta_rule``,
``MambaMixer.slow_forward``, ``Mamba2Mixer.torch_forward``).

Each formula lists the tensors autograd keeps, read from the transformers code and checked
tensor by tensor (their shapes and dtypes, through ``torch.autograd.graph.saved_tensors_hooks``
under FakeTensorMode) and in total against MemTracker (tests/test_train_hybrid.py). The
reference scans keep much more than the fused kernels would: per chunk or per token states.

The mixer's input (the block's norm output, or its autocast copy) is counted by the block;
everything after it up to and including the output projection's input is counted here. t =
B x S tokens; a = the dtype of the projections' outputs (compute bytes); 4 = fp32.

Only the standard library and other tfcli domain modules are imported here.
"""

from __future__ import annotations

from dataclasses import dataclass

from tfcli.shapes import gated_deltanet_widths
from tfcli.spec import ModelSpec

FP32 = 4
BF16 = 2

DELTANET_CHUNK = 64
"""``torch_chunk_gated_delta_rule``'s ``chunk_size`` default (transformers 5 Qwen3-Next)."""


@dataclass(frozen=True)
class Saved:
    """One named amount of bytes and how it was computed (``tfcli.train.Part``'s fields)."""

    name: str
    bytes: int
    formula: str


def _dtype_bytes(precision: str) -> int:
    return FP32 if precision == "fp32" else BF16


def deltanet_saved(spec: ModelSpec, *, batch: int, seq: int, precision: str) -> list[Saved]:
    """What one Gated DeltaNet mixer (``Qwen3NextGatedDeltaNet``) saves, by stage.

    Widths: Hv value heads (q and k are repeated to Hv heads), dk, dv, conv = 2 Hk dk + Hv dv
    channels, kernel K; the scan pads S to P = ceil(S / C) C with C = 64 and runs N = P / C
    chunks. B x Hv rows throughout ("r" below).

    * causal conv: its input ``B conv S a`` and the SiLU's input, the unsliced conv output
      ``B conv (S + K - 1) a`` (under autocast both bf16; the weight copy is counted with the
      block's autocast weight copies);
    * gates: ``beta = sigmoid(b)`` ``t Hv a``; ``g = -exp(A_log) softplus(a + dt_bias)``:
      ``2 Hv 4 + 2 t Hv 4``;
    * the fp32 l2-norms of q and k: ``2 r S (dk + 1) 4``; padded beta, v, k: ``r P (1 + dv +
      dk) 4``; the causal chunk mask ``C^2`` bools;
    * fp32: ``5 r P C 4`` (pairwise decay, k_beta k^T, q k^T, the UT system, intra-chunk
      attention), ``5 r P dk 4`` (k_beta, q, k_cumdecay, decayed q and k), ``r P dv 4`` (the
      new values), ``3 r P 4`` decay exponentials, ``r N 4``; per chunk the state ``r dk dv
      4`` and v_new ``r C dv 4``; in fp32 with S a multiple of C (nothing padded, nothing
      cast) the matmuls copy their strided q and k operands: ``4 r P dk 4`` more, less ``r C
      dk 4`` when B > 1 (measured);
    * under autocast (bf16-mixed) the matmuls keep bf16 casts instead: ``4 r P dk 2`` and
      their outputs ``2 r P C 2``; fp32 pairwise decay and UT system ``2 r P C 4``, k_beta, q,
      k_cumdecay ``3 r P dk 4``; per chunk two casts of the state, the fp32 state, the
      intra-chunk cast, two casts of v_new and the key cast (``r (2 dk dv 2 + dk dv 4 + C^2 2
      + 2 C dv 2 + C dk 2)``), and from the second chunk on the casts of q and k_cumdecay
      (``2 r C dk 2``: the first chunk's zero state needs no gradient), less what only the
      last chunk's discarded state update kept (``r (dk dv 4 + C dk 2 + C dv 2)``);
    * the gated RMSNorm over ``t Hv`` rows of dv: fp32 ``5 x 4`` bytes per element (its input,
      ``x rsqrt``, the weighted product, the gate and its SiLU), bf16 ``4 + 2 + 4 + 4 + 2``,
      bf16-mixed ``4 + 2 + 4 + 4 + 4``, plus ``t Hv 4`` for rsqrt;
    * the output projection's input ``t Hv dv a``.
    """
    hv = int(spec.linear_num_value_heads or 0)
    dk = int(spec.linear_key_head_dim or 0)
    dv = int(spec.linear_value_head_dim or 0)
    _, value_dim, conv = gated_deltanet_widths(spec)
    k = int(spec.conv_kernel or 0)
    c = DELTANET_CHUNK
    chunks = -(-seq // c)
    p = chunks * c
    r = batch * hv
    t = batch * seq
    a = _dtype_bytes(precision)
    mixed = precision == "bf16-mixed"
    parts = [
        Saved(
            "conv",
            batch * conv * seq * a + batch * conv * (seq + k - 1) * a,
            f"B conv (2 S + K - 1) a = {batch} x {conv} x {2 * seq + k - 1} x {a}",
        ),
        Saved("gates", t * hv * a + 2 * hv * FP32 + 2 * t * hv * FP32, "t Hv (a + 8) + 8 Hv"),
        Saved(
            "l2norm, padding, mask",
            2 * r * seq * (dk + 1) * FP32 + r * p * (1 + dv + dk) * FP32 + c * c,
            f"2 r S (dk + 1) 4 + r P (1 + dv + dk) 4 + C^2, r = {r}, P = {p}",
        ),
    ]
    if not mixed:
        chunk = (
            5 * r * p * c * FP32
            + 5 * r * p * dk * FP32
            + r * p * dv * FP32
            + 3 * r * p * FP32
            + r * chunks * FP32
        )
        loop = chunks * r * (dk * dv + c * dv) * FP32
        if seq % c == 0 and precision == "fp32":
            # fp32 without padding: neither ``.to(float32)`` nor F.pad copies, and the strided
            # q and k make the matmuls copy their operands (measured: 4 r P dk 4 more, r C dk 4
            # less when B > 1); bf16 inputs are copied to fp32 first and keep the padded layout
            loop += 4 * r * p * dk * FP32 - (r * c * dk * FP32 if batch > 1 else 0)
        chunk_formula = "r P (5 C + 5 dk + dv + 3) 4 + r N 4"
        loop_formula = f"N r (dk dv + C dv) 4, N = {chunks}"
        norm_bytes = 5 * FP32 if precision == "fp32" else 4 + 2 + 4 + 4 + 2
    else:
        chunk = (
            4 * r * p * dk * BF16
            + 2 * r * p * c * BF16
            + 2 * r * p * c * FP32
            + 3 * r * p * dk * FP32
            + r * p * dv * FP32
            + 3 * r * p * FP32
            + r * chunks * FP32
        )
        per_chunk = 2 * dk * dv * BF16 + dk * dv * FP32 + c * c * BF16 + 2 * c * dv * BF16
        per_chunk += c * dk * BF16
        loop = chunks * r * per_chunk + (chunks - 1) * r * 2 * c * dk * BF16
        # the last chunk's state update feeds nothing (no final state is returned): autograd
        # frees what only it kept, the fp32 state and the casts of k and v_new
        loop -= r * (dk * dv * FP32 + c * dk * BF16 + c * dv * BF16)
        chunk_formula = "r P (8 dk + 4 C + 8 C + 12 dk + 4 dv + 12) + r N 4 (autocast casts)"
        loop_formula = f"N r (8 dk dv + 2 C^2 + 4 C dv + 2 C dk) + (N - 1) r 4 C dk, N = {chunks}"
        norm_bytes = 4 + 2 + 4 + 4 + 4
    parts += [
        Saved("chunked scan", chunk, chunk_formula),
        Saved("scan loop", loop, loop_formula),
        Saved(
            "gated norm",
            t * hv * dv * norm_bytes + t * hv * FP32,
            f"t Hv dv x {norm_bytes} + t Hv 4",
        ),
        Saved("out_proj input", t * value_dim * a, f"t x Hv dv x a = {t:,} x {value_dim} x {a}"),
    ]
    return parts


MIXER_SAVED = {"gated_deltanet": deltanet_saved}
"""The mixers whose saved activations are modelled here, by ``LayerPlan.mixer``."""


def mixer_input_casts(mixer: str) -> int:
    """Linears that read the mixer's input (autocast keeps one bf16 copy each): Gated
    DeltaNet's in_proj_qkvz and in_proj_ba: 2; Mamba's in_proj: 1."""
    return 2 if mixer == "gated_deltanet" else 1
