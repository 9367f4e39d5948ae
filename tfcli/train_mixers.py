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


def mamba_saved(spec: ModelSpec, *, batch: int, seq: int, precision: str) -> list[Saved]:
    """What one Mamba-1 mixer (``MambaMixer``, transformers 5: ``mamba_selective_scan``'s
    token-by-token recurrence, the path that runs without the ``mamba_ssm`` kernels) saves.

    Widths: I = d_inner, N = state size, R = dt rank, K = conv kernel; t = B x S tokens.

    * in_proj output ``2 t I a`` (the conv reads x, the gate's SiLU reads z: both views);
      under autocast the conv input is first cast back to fp32 (``.to(weight.dtype)``) and
      autocast keeps its bf16 copy: ``t I 2``;
    * the conv's unsliced output (the SiLU's input) ``B I (S + K - 1) a``, the SiLU output
      ``t I a``, and with B > 1 x_proj's contiguous copy of its transposed input ``t I a``
      (with B = 1 the transposed view feeds the matmul as it is);
    * x_proj output ``t (R + 2 N) a`` (dt, B and C are views of it); the dt projection's
      output (softplus input) and the softplus ``2 t I a``;
    * ``A = -exp(A_log.float())``: the exp and A, ``2 I N 4``; ``exp(A dt)`` and ``dt B``
      ``2 t I N 4`` (fp32: A is fp32); with a 2-byte compute dtype the fp32 copies of B
      ``t N 4`` and of x ``t I 4``; in a bf16 model ``D.float()`` ``I 4``;
    * the recurrence keeps every state: fp32 ``(S + 1) B I N 4`` (the zero state and the S
      states the mul and the matmul read); a = 2: the zero state ``B I N 2``, the states the
      next step's mul reads ``(S - 1) B I N 4`` and the matmul's bf16 casts ``S B I N 2``;
    * the output gate: the scan output (fp32: D is fp32) ``t I 4`` and ``silu(z)`` ``t I a``;
      out_proj's input ``t I a``;
    * Jamba (``JambaMambaMixer``) normalises dt, B and C (RMSNorms over W = R + 2 N
      channels) before the scan: fp32 ``3 t 4 + 2 t W 4`` (rsqrt, ``x rsqrt``, the normed
      outputs); a = 2: ``3 t 4 + t W 4 + t (R + N) 2`` (their fp32 copies and rsqrt, the
      normed dt and C in the compute dtype; B's fp32 copy is the one counted above).
    """
    inner = int(spec.ssm_inner_size or 0)
    n = int(spec.ssm_state_size or 0)
    rank = int(spec.ssm_dt_rank or 0)
    k = int(spec.conv_kernel or 0)
    b, s = batch, seq
    t = b * s
    a = _dtype_bytes(precision)
    mixed = precision == "bf16-mixed"
    copy = t * inner * a if b > 1 else 0
    conv = 2 * t * inner * a + (t * inner * BF16 if mixed else 0)
    conv += b * inner * (s + k - 1) * a + t * inner * a + copy
    dt = t * (rank + 2 * n) * a + 2 * t * inner * a
    disc = 2 * inner * n * FP32 + 2 * t * inner * n * FP32
    if a != FP32:
        disc += t * n * FP32 + t * inner * FP32
    if precision == "bf16":
        disc += inner * FP32
    if a == FP32:
        states = (s + 1) * b * inner * n * FP32
        states_formula = "(S + 1) B I N 4"
    else:
        states = b * inner * n * a + (s - 1) * b * inner * n * FP32 + s * b * inner * n * a
        states_formula = "B I N 2 + (S - 1) B I N 4 + S B I N 2"
    gate = t * inner * FP32 + 2 * t * inner * a
    norms: list[Saved] = []
    if spec.ssm_dt_norms:
        w = rank + 2 * n
        if a == FP32:
            normed = 3 * t * FP32 + 2 * t * w * FP32
            norm_formula = "3 t 4 + 2 t W 4"
        else:
            normed = 3 * t * FP32 + t * w * FP32 + t * (rank + n) * a
            norm_formula = "3 t 4 + t W 4 + t (R + N) 2"
        norms.append(Saved("dt, B, C norms", normed, f"{norm_formula}, W = {w}"))
    return [
        Saved(
            "in_proj, conv",
            conv,
            f"2 t I a + B I (S + K - 1) a + t I a{' + t I a (B > 1)' if copy else ''}"
            f"{' + t I 2 (autocast)' if mixed else ''}, I = {inner}, a = {a}",
        ),
        Saved("x_proj, dt", dt, f"t (R + 2 N) a + 2 t I a, R = {rank}, N = {n}"),
        Saved("discretisation", disc, "2 I N 4 + 2 t I N 4 (+ fp32 copies of B and x)"),
        Saved("scan states", states, f"{states_formula}, S = {s}"),
        Saved("gate, out_proj input", gate, "t I 4 + 2 t I a"),
        *norms,
    ]


MUP_VECTOR_FAMILIES = ("falcon_h1",)
"""transformers families whose Mamba-2 mixer multiplies the in_proj output by a per-channel
``mup_vector`` buffer (``FalconH1Mixer``): part of the implementation profile."""

MAMBA2_CHUNK = 256
"""``Mamba2Config.chunk_size``'s default, used when a spec does not record it."""


def mamba2_saved(spec: ModelSpec, *, batch: int, seq: int, precision: str) -> list[Saved]:
    """What one Mamba-2 mixer (``Mamba2Mixer``; Falcon-H1's and Granite-4.0-H's mixers run
    the same code) saves, as transformers 5 runs it without kernels: ``mamba2_chunk_scan``,
    the chunked SSD scan in fp32 einsums, then the gated RMSNorm.

    Widths: I = d_inner = H P (H heads of P), G groups of state N, conv = I + 2 G N channels,
    kernel K, in_proj width W = 2 I + 2 G N + H. The scan pads S to Sp = c C (chunks of C),
    r = B Sp rows. e = the einsums' operand bytes: 4, 2 under autocast (which casts them).

    * in_proj output ``t W a`` (gate, conv input and dt are views); under autocast instead
      the bf16 cast of the conv input's fp32 copy, ``B conv S 2``; the conv's unsliced
      output (the SiLU's input) ``B conv (S + K - 1) a``;
    * dt: fp32 ``3 t H 4`` (dt + bias, softplus, clamp); a = 2: ``2 t H 2`` and two fp32
      copies ``2 t H 4``; x: fp32 the SiLU output (a view) ``B conv S 4``, else its fp32
      copy ``t I 4``; A ``2 H 4``; the padded x of the D skip ``r I 4``;
    * intra-chunk: ``L = exp(segsum(A))`` ``r H C 4`` and two C x C masks, ``G = C^T B``
      ``r C H e``, the einsum copies of M, C, B and x (``r H C e + 2 r H N e + r I e``);
    * chunk states: decay ``r H 4``, the repeated B ``r H N 4``, copies of B_decay and x
      (``r H N e + r I e``), the chunk decay ``B H (c + 1)^2 4`` (+ its bf16 copy under
      autocast) and two masks, the states' copy ``B (c + 1) I N e``;
    * state output: ``exp(A_cumsum)`` ``r H 4``, copies of C and of the states (``r H N e +
      B c I N e``), ``C_times_states`` ``r I e``;
    * with one chunk (S <= C) the kept states are a view of the recurrence's output, ``B 2 I
      N e``, and in fp32 x is copied once; with B = 1 as well the second C and the fp32 B
      are read in place (measured: an einsum copies an operand whose batch dims b, c, h do
      not merge);
    * the gated RMSNorm (fp32: the scan output is fp32): with a = 2 the gate's fp32 copy ``t
      I 4``; ``silu(gate)``, the scan output (``r I 4``), their product, ``x rsqrt`` (``3 t I
      4``), rsqrt ``t G 4``; out_proj's input ``t I a``;
    * Falcon-H1 (``FalconH1Mixer``): ``in_proj(x) * mup_vector`` replaces the in_proj output
      (under autocast it is fp32: ``t W 4`` more, the gate needs no fp32 copy and x is an
      fp32 view of the conv output cast back, ``B conv S 4``); without
      ``mamba_rms_norm`` the gate is ``scan * silu(gate)``: ``r I 4 + t I g + t I a``
      (g = the gate's bytes).
    """
    inner = int(spec.ssm_inner_size or 0)
    n = int(spec.ssm_state_size or 0)
    heads = int(spec.ssm_num_heads or 0)
    g = spec.ssm_groups
    k = int(spec.conv_kernel or 0)
    c_len = int(spec.ssm_chunk_size or MAMBA2_CHUNK)
    conv = inner + 2 * g * n
    width = 2 * inner + 2 * g * n + heads
    b, s = batch, seq
    t = b * s
    chunks = -(-s // c_len)
    r = b * chunks * c_len
    a = _dtype_bytes(precision)
    mixed = precision == "bf16-mixed"
    e = BF16 if mixed else FP32
    # under autocast nothing keeps the bf16 in_proj output: the conv reads an fp32 copy
    # (then autocast's bf16 cast of it), the gated norm an fp32 copy of the gate
    front = b * conv * s * BF16 if mixed else t * width * a
    front += b * conv * (s + k - 1) * a
    dt = 3 * t * heads * FP32 if a == FP32 else 2 * t * heads * a + 2 * t * heads * FP32
    mup = spec.family in MUP_VECTOR_FAMILIES
    # the conv's output is cast back to its input's dtype: fp32 in fp32, and under autocast
    # when the mup vector made the in_proj output fp32; x, B and C are then fp32 views of it
    x = b * conv * s * FP32 if a == FP32 or (mup and mixed) else t * inner * FP32
    x += 2 * heads * FP32 + r * inner * FP32
    # in fp32 an einsum reads an operand in place when its batch dims (b, c, h) merge: with
    # B = 1 and one chunk, C and B are read in place by the second einsum that needs them;
    # with one chunk, x is copied once, and the chunk states are a view of the recurrence's
    # output (measured)
    views = e == FP32 and b == 1 and chunks == 1
    x_copies = 1 if chunks == 1 and e == FP32 else 2
    intra = r * heads * c_len * FP32 + 2 * c_len * c_len + r * c_len * heads * e
    intra += r * heads * c_len * e + 2 * r * heads * n * e + x_copies * r * inner * e
    decay = b * heads * (chunks + 1) ** 2
    states = r * heads * FP32 + r * heads * n * e + (0 if views else r * heads * n * FP32)
    states += decay * FP32 + (decay * BF16 if mixed else 0) + 2 * (chunks + 1) ** 2
    states += b * (chunks + 1) * inner * n * e
    kept_states = (chunks + 1 if chunks == 1 else chunks) * b * inner * n * e
    out = r * heads * FP32 + (0 if views else r * heads * n * e) + kept_states + r * inner * e
    if mup and mixed:
        # Falcon-H1: ``in_proj(x) * mup_vector`` (an fp32 buffer) is fp32 under autocast,
        # kept through the gate's view
        front += t * width * FP32
    if spec.ssm_gated_norm:
        norm = (t * inner * FP32 if a != FP32 and not (mup and mixed) else 0) + r * inner * FP32
        norm += 3 * t * inner * FP32 + t * g * FP32 + t * inner * a
        norm_formula = "(t I 4) + 3 t I 4 + r I 4 + t G 4 + t I a"
    else:
        # Falcon-H1 without mamba_rms_norm: ``scan_output * silu(gate)``: the fp32 scan output,
        # silu(gate) in the gate's dtype, out_proj's input
        gate = FP32 if (a == FP32 or (mup and mixed)) else a
        norm = r * inner * FP32 + t * inner * gate + t * inner * a
        norm_formula = f"r I 4 + t I {gate} + t I a (no norm: scan x silu(gate))"
    return [
        Saved("in_proj, conv", front, f"t W a + B conv (S + K - 1) a, W = {width}"),
        Saved("dt, x, D skip", dt + x, f"dt, x and the padded x r I 4, r = {r}"),
        Saved("intra-chunk", intra, f"r H C 4 + r C H e + r H C e + 2 r H N e + r I e, e = {e}"),
        Saved(
            "chunk states", states, f"r H (4 + 4 N + e N) + r I e + B (c + 1) I N e, c = {chunks}"
        ),
        Saved("state output", out, "r H 4 + r H N e + B c I N e + r I e"),
        Saved("gated norm, out_proj input", norm, norm_formula),
    ]


def mamba_scan_backward(spec: ModelSpec, *, batch: int, seq: int, precision: str) -> int:
    """Bytes the backward of one Mamba-1 reference scan allocates at its peak, beyond what
    is held: fp32, about what the mixer saved (``mamba_saved``); with a 2-byte compute dtype
    the fp32 gradients of ``exp(A dt)`` and ``dt B x``, of the states ``(S + 1) B I N 4``
    and of the fp32 copies (``discretisation``). Fitted to MemTracker on MambaForCausalLM
    (within 1% of the peak at N = 16, fp32 and bf16-mixed)."""
    parts = mamba_saved(spec, batch=batch, seq=seq, precision=precision)
    if _dtype_bytes(precision) == FP32:
        return sum(p.bytes for p in parts)
    inner = int(spec.ssm_inner_size or 0)
    n = int(spec.ssm_state_size or 0)
    disc = next(p.bytes for p in parts if p.name == "discretisation")
    return disc + (seq + 1) * batch * inner * n * FP32


MIXER_SAVED = {"gated_deltanet": deltanet_saved, "mamba": mamba_saved, "mamba2": mamba2_saved}
"""The mixers whose saved activations are modelled here, by ``LayerPlan.mixer``."""


def mamba2_scan_backward(spec: ModelSpec, *, batch: int, seq: int, precision: str) -> int:
    """Bytes the backward of one Mamba-2 chunked scan allocates at its peak beyond what is
    held and the gradients written: about none. Unlike Mamba-1's token loop, the einsums'
    gradients are freed about as fast as the saved operands they replace (MemTracker on
    Mamba2ForCausalLM: the measured peak exceeds held + gradients by -2% to +9% of what the
    mixer saved, fp32 and bf16-mixed)."""
    del spec, batch, seq, precision
    return 0


SCAN_BACKWARD = {"mamba": mamba_scan_backward, "mamba2": mamba2_scan_backward}
"""The state-space mixers whose scan backward is a peak phase of its own (tfcli.train)."""


def mixer_input_casts(mixer: str) -> int:
    """Linears that read the mixer's input (autocast keeps one bf16 copy each): Gated
    DeltaNet's in_proj_qkvz and in_proj_ba: 2; Mamba's in_proj: 1."""
    return 2 if mixer == "gated_deltanet" else 1
