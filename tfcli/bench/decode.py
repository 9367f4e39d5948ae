"""Decode: one new token per sequence after ``context`` cached tokens, timed against the
memory-bound prediction.

The step runs the built layers (``--layers N``; ``all`` adds the token embedding, the final
norm and the LM head: a whole token) over a static cache: every layer's K/V (MLA: the latent
and the RoPE key) is allocated once for ``context + 1`` tokens, filled with random values,
and the new token's K/V are written in place into the last slot, as a serving engine writes
one slot of a preallocated cache. Repeated samples thus time the same step; nothing is
concatenated or copied.

Prediction (calibration only, ``predict_decode_seconds``):

    t = sum over weight matrices of bytes / GEMV bandwidth at its contracted dim K
        + KV bytes read / decode-attention bandwidth
        + state-mixer elementwise bytes / read bandwidth
        + MLA expansion FLOPs / matmul peak + operators x per-operator overhead

or the step's FLOPs / matmul peak when that is longer (large batches). The operators are
counted once on the step (``tfcli.bench.opcount``: a count, not a timing); their overhead is
calibrated on a tiny generic layer. The weight matrices and their K are recorded in the same
count (``tfcli.bench.opcount.count_step``: the parameter operands of every matrix product the
step dispatches, so a MoE step counts the experts its router picked, MLA its absorbed or
expanded projections). A GEMV's bandwidth depends on K (a narrow K streams well below a wide
one, and not smoothly: on this CPU K = 1,024 ran at 16-20 GB/s between runs, 896 at 16.7), so
each K the step uses is probed once per run (``calibrate.measure_gemv_rates``: synthetic 8 MiB
matrices of that K cycled over 256 MiB, none of the model's weights, no attention, norms or
cache). Before the step is counted, and for a point that does not fit, the planned weight
bytes are priced at K = hidden size on the calibration's generic curve.
A state mixer (Mamba, Gated DeltaNet, RWKV, lightning; Falcon-H1's parallel Mamba-2) keeps
no KV cache: its recurrent step streams its fixed state through elementwise passes, whose
bytes (inputs read, outputs written) are counted in the same count (``count_step``'s
``traffic_modules``) and priced at the read bandwidth; the state's size does not depend on
the context, so neither does that term.
On CUDA kernel launches overlap the GPU's work, so there
the overhead term is a floor (max) instead of a sum. Weight bytes are the
active parameters of the built layers (MoE: the experts one token uses), plus the LM head
matrix (the tied embedding matrix when tied) for a whole token. KV bytes read are what the
kernel streams: on the CPU a one-query step runs the grouped kernel (each KV head read once,
``tfcli.bench.attention.uses_grouped_decode``); MLA also writes and reads the per-head keys
and values it expands from the latent (``decode_executed_kv_bytes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from tfcli.bench.cache import KVCache, LayerCache
from tfcli.bench.calibrate import Calibration, measure_gemv_rates
from tfcli.bench.model import Transformer, main_plan
from tfcli.bench.opcount import count_step
from tfcli.bench.settings import BenchSettings, fit_problem
from tfcli.bench.timing import Probe, Samples, time_call
from tfcli.bench.work import layer_reach
from tfcli.flops import (
    attention_core_flops,
    attention_projection_flops,
    cross_attention_flops,
    forward_flops,
    indexer_score_flops,
    mlp_flops,
    moe_flops,
)
from tfcli.memory import state_bytes_per_layer
from tfcli.params import count_params
from tfcli.plan import STATE_MIXERS
from tfcli.spec import ModelSpec

DECODE_ENCODER_SEQ = 512
"""Encoder tokens whose cross-attention K/V an encoder-decoder's decode step attends."""


@dataclass
class DecodeResult:
    """One decode step (one token per sequence) after ``context`` cached tokens, through
    ``layers`` layers (``whole_model``: embedding, every layer, final norm and LM head)."""

    context: int
    layers: int = 1
    whole_model: bool = False
    batch: int = 1
    step: Samples | None = None
    kv_bytes: int = 0
    """Bytes of the cache the step attends (``context + 1`` tokens, windowed), all layers."""
    executed_kv_bytes: int = 0
    """KV bytes the kernel streams (MLA: + the expanded per-head keys and values)."""
    state_bytes: int = 0
    """Fixed per-sequence state of the built state-mixer layers (conv and recurrent states:
    ``tfcli.memory.state_bytes_per_layer``, transformers' convention), all layers."""
    state_traffic_bytes: int | None = None
    """Bytes the state mixers' elementwise operators move in one step (``count_step``; None
    until counted: 2 x ``state_bytes`` then, one read and one write)."""
    weight_bytes: int = 0
    flops: int = 0
    expansion_flops: int = 0
    """MLA: the kv_b expansion of the cached latents, a real matmul over every cached row."""
    operators: int = 0
    """Aten operators one step dispatches (0 until counted on the built model)."""
    weight_reads: dict[int, int] | None = None
    """Parameter bytes the step's matrix products read, by contracted dimension (None until
    counted on the built model)."""
    hidden_size: int = 0
    """K at which the planned weight bytes are priced before the step is counted."""
    gemv_rates: dict[int, float] | None = None
    """Bytes/s of a GEMV at each K of ``weight_reads``, probed (module docstring)."""
    predicted_seconds: float = 0.0
    skipped: str | None = None

    @property
    def error(self) -> float | None:
        """(predicted - measured) / measured of the median step time."""
        if self.step is None:
            return None
        return (self.predicted_seconds - self.step.median) / self.step.median

    @property
    def tokens_per_s(self) -> float | None:
        """Measured tokens per second (batch / median step time)."""
        return None if self.step is None else self.batch / self.step.median

    @property
    def predicted_tokens_per_s(self) -> float:
        return self.batch / self.predicted_seconds if self.predicted_seconds > 0 else 0.0


# ---- what one step reads and computes ------------------------------------------------------------


def cached_tokens(spec: ModelSpec, index: int, context: int) -> int:
    """Keys the new token attends in layer ``index``: context + 1, at most the window (or
    chunk: the cache keeps the last c tokens, the chunk mask picks among them)."""
    window = layer_reach(spec, index)
    return context + 1 if window is None else min(context + 1, window)


def cache_shapes(spec: ModelSpec, batch: int, tokens: int) -> list[tuple[int, ...]]:
    """The two cached tensors of one layer: K and V (B, KVH, T, D) / (B, KVH, T, Dv), or
    MLA's latent (B, T, kv_lora_rank) and RoPE key (B, T, qk_rope_head_dim)."""
    if spec.is_mla:
        return [
            (batch, tokens, int(spec.kv_lora_rank or 0)),
            (batch, tokens, int(spec.qk_rope_head_dim or 0)),
        ]
    return [
        (batch, spec.kv_heads, tokens, spec.resolved_head_dim),
        (batch, spec.kv_heads, tokens, spec.value_head_dim),
    ]


def decode_executed_kv_bytes(spec: ModelSpec, kv_bytes: int, backend: str = "grouped") -> int:
    """KV bytes a one-token step streams from memory, as the kernel executes it.

    The grouped kernel (CPU decode) reads each KV head once: ``kv_bytes``. SDPA with
    grouped-query attention on the CPU (``backend="sdpa"``, not what the step runs) streams
    each KV head once per query head: kv_bytes x H / KVH (DESIGN.md section 6). MLA expands
    the latent into per-head keys and values, written and read once each:
    2 x B x H x L x (d_qk + d_v) x bytes on top of the latent itself.
    """
    if spec.is_mla:
        latent_elements = int(spec.kv_lora_rank or 0) + int(spec.qk_rope_head_dim or 0)
        per_token_expanded = spec.num_heads * (spec.qk_head_dim + spec.value_head_dim)
        return kv_bytes + 2 * kv_bytes * per_token_expanded // max(latent_elements, 1)
    if backend == "sdpa":
        return kv_bytes * (spec.num_heads // spec.kv_heads)
    return kv_bytes


def layer_step_flops(spec: ModelSpec, index: int, batch: int, held: int) -> int:
    """Matmul FLOPs of one token through layer ``index``: projections, attention over
    ``held`` keys, MLA's latent expansion (kv_b over the ``held`` cached rows), cross-attention
    over DECODE_ENCODER_SEQ cached keys, MLP or MoE (``tfcli.flops``)."""
    flops = sum(attention_projection_flops(spec, batch).values())
    flops += sum(attention_core_flops(spec, batch, held))
    if spec.is_mla:
        flops += attention_projection_flops(spec, batch * held)["attention.kv_b_proj"]
    if spec.architecture == "encoder-decoder":
        cross = cross_attention_flops(spec, batch, 1, DECODE_ENCODER_SEQ, project_kv=False)
        flops += sum(cross.values())
    if spec.moe_layer_flags[index]:
        return flops + sum(moe_flops(spec, batch).values())
    return flops + mlp_flops(spec, batch, spec.intermediate_size)


def state_layer_step_flops(spec: ModelSpec, context: int, batch: int) -> dict[int, int]:
    """Matmul FLOPs of one token through each state-mixer layer of the main stack, by layer
    index: projections, one recurrent step of the scan and the MLP (``tfcli.flops``'s
    one-token forward after ``context`` tokens, the estimate ``tfcli flops --mode decode``
    prints)."""
    if not any(kind in STATE_MIXERS for kind in spec.layer_kinds):
        return {}
    count = forward_flops(spec, 1, batch=batch, logits="last", context=context)
    main = spec.main_stack_runs()[0].stack
    return {
        layer.index: layer.total
        for layer in count.layers
        if layer.stack == main and layer.kind in STATE_MIXERS
    }


def head_params(spec: ModelSpec) -> int:
    """The LM head matrix a whole token reads: V x h (the tied embedding matrix if tied)."""
    return spec.vocab_size * spec.hidden_size if spec.lm_head else 0


def plan_decode(settings: BenchSettings, cal: Calibration, context: int) -> DecodeResult:
    """Bytes, FLOPs and the predicted step time, before anything is allocated."""
    spec, batch, bits = settings.spec, settings.batch, torch.finfo(settings.dtype).bits
    layers = min(settings.layers, spec.num_layers)
    result = DecodeResult(
        context=context, layers=layers, whole_model=settings.whole_model, batch=batch
    )
    params = count_params(spec).layers
    decoder = [p for p in params if p.stack == params[-1].stack][:layers]
    weights = sum(p.active for p in decoder)
    flops = expansion = 0
    kv = 0
    step_flops = state_layer_step_flops(spec, context, batch)
    for i in range(layers):
        plan = main_plan(spec, i)
        per_sequence = state_bytes_per_layer(
            spec, plan, rule="transformers", dtype=settings.dtype_name
        )
        result.state_bytes += batch * sum(per_sequence.values())
        if plan.mixer in STATE_MIXERS:  # a recurrent step: no cache grows, no keys attended
            flops += step_flops[i]
            continue
        held = cached_tokens(spec, i, context)
        kv += sum(math.prod(shape) for shape in cache_shapes(spec, batch, held)) * bits // 8
        if spec.index_num_heads:  # DeepSeek-V3.2: the indexer keys, scored against the query
            kv += batch * held * int(spec.index_head_dim or 0) * bits // 8
            flops += indexer_score_flops(spec, batch, held)
        if spec.architecture == "encoder-decoder":
            cross_elements = 2 * batch * spec.kv_heads * DECODE_ENCODER_SEQ * spec.resolved_head_dim
            kv += cross_elements * bits // 8
        flops += layer_step_flops(spec, i, batch, held)
        if spec.is_mla:
            expansion += attention_projection_flops(spec, batch * held)["attention.kv_b_proj"]
    if result.whole_model:
        weights += head_params(spec)
        flops += 2 * batch * head_params(spec)
    result.kv_bytes = kv
    result.executed_kv_bytes = decode_executed_kv_bytes(spec, kv)
    result.weight_bytes = weights * bits // 8
    result.hidden_size = spec.hidden_size
    result.flops = flops
    result.expansion_flops = expansion
    result.predicted_seconds = predict_decode_seconds(result, cal)
    # the caches, and one layer's transient MLA expansion at a time
    expanded = (result.executed_kv_bytes - result.kv_bytes) // max(layers, 1)
    result.skipped = fit_problem(result.kv_bytes + expanded, settings)
    return result


def predict_decode_seconds(
    result: DecodeResult, cal: Calibration, *, device_type: str = "cpu"
) -> float:
    """The module docstring's formula: bytes over the calibrated GEMV (at each matrix's
    contracted dimension, once counted) and decode-attention bandwidths, MLA's expansion at
    the matmul peak, the operators' fixed cost; or FLOPs at the peak if longer."""
    if result.weight_reads is None:
        weight_seconds = result.weight_bytes / cal.gemv_rate(result.hidden_size)
    else:
        rates = result.gemv_rates or {}
        weight_seconds = sum(
            b / rates.get(k, cal.gemv_rate(k)) for k, b in result.weight_reads.items()
        )
    state_traffic = result.state_traffic_bytes
    if state_traffic is None:
        state_traffic = 2 * result.state_bytes
    memory_bound = (
        weight_seconds
        + result.executed_kv_bytes / cal.decode_kv_bytes_per_s
        + state_traffic / cal.read_bytes_per_s
        + result.expansion_flops / cal.matmul_flops_per_s
    )
    overhead = result.operators * cal.op_overhead_seconds
    work = max(memory_bound, result.flops / cal.matmul_flops_per_s)
    return max(work, overhead) if device_type == "cuda" else work + overhead


# ---- the static cache -------------------------------------------------------------------------


@dataclass
class StaticLayerCache(LayerCache):
    """A preallocated cache of ``slot + 1`` tokens; ``append`` writes the new token into slot
    ``slot`` in place and exposes the (windowed) keys as views: no copy, no growth, so
    repeated steps time the same work."""

    buffers: tuple[Tensor, Tensor] | None = None
    slot: int = 0
    window: int | None = None
    index_buffer: Tensor | None = None
    """DeepSeek-V3.2's indexer keys (B, slot + 1, index_head_dim)."""

    def append(self, first: Tensor, second: Tensor, *, seq_dim: int) -> None:
        """Write ``count`` new tokens at ``slot`` in place; the visible keys run from the
        first key the first new query may see (its window) to the last new token."""
        assert self.buffers is not None
        count = first.shape[seq_dim]
        end = self.slot + count
        begin = 0 if self.window is None else max(0, self.slot + 1 - self.window)
        for buffer, new in zip(self.buffers, (first, second), strict=True):
            buffer.narrow(seq_dim, self.slot, count).copy_(new)
        self.first = self.buffers[0].narrow(seq_dim, begin, end - begin)
        self.second = self.buffers[1].narrow(seq_dim, begin, end - begin)
        self.start = begin

    def append_indexer(self, keys: Tensor) -> Tensor:
        """Write the new indexer keys (B, S, D_I) at ``slot`` in place; all keys, as a view."""
        assert self.index_buffer is not None
        self.index_buffer.narrow(1, self.slot, keys.shape[1]).copy_(keys)
        self.indexer = self.index_buffer.narrow(1, 0, self.slot + keys.shape[1])
        return self.indexer

    def trim(self, *, seq_dim: int, window: int | None) -> None:
        """Nothing to drop: the window is a view (``append``)."""


def state_mixer_modules(model: Transformer) -> list[torch.nn.Module]:
    """The built layers' state mixers (and Falcon-H1's parallel Mamba-2): the modules whose
    elementwise traffic a decode step's prediction counts."""
    blocks = [model.block(i) for i in range(len(model.layers))]
    return [m for b in blocks for m in (b.mixer, b.ssm) if m is not None]


def build_static_cache(model: Transformer, settings: BenchSettings, context: int) -> KVCache:
    """Random K/V (or MLA latents) for ``context`` tokens plus one slot in every built
    attention layer, encoder K/V of DECODE_ENCODER_SEQ tokens for cross-attention layers, and
    the conv and recurrent states of the state mixers (Mamba, Gated DeltaNet, RWKV, lightning
    layers; Falcon-H1's parallel Mamba-2) left by one random token, so every step is a
    recurrent step (a state's size does not depend on the context)."""
    spec, batch = settings.spec, settings.batch
    device, dtype = settings.device, settings.dtype
    cache = KVCache(length=context)
    for i in range(len(model.layers)):
        if model.block(i).mixer is not None:  # a state mixer: one token leaves its states
            with torch.no_grad():
                model.block(i)(
                    torch.randn(batch, 1, spec.hidden_size, device=device, dtype=dtype),
                    torch.tensor([0], device=device),
                    cache=cache,
                )
            continue
        window = layer_reach(spec, i)
        first, second = (
            torch.randn(*shape, device=device, dtype=dtype)
            for shape in cache_shapes(spec, batch, context + 1)
        )
        index_buffer = None
        if spec.index_num_heads:  # DeepSeek-V3.2: the indexer keys of every cached token
            keys = (batch, context + 1, int(spec.index_head_dim or 0))
            index_buffer = torch.randn(*keys, device=device, dtype=dtype)
        cache.self_attention[i] = StaticLayerCache(
            buffers=(first, second), slot=context, window=window, index_buffer=index_buffer
        )
        ssm = model.block(i).ssm
        if ssm is not None:  # Falcon-H1: one token through the Mamba-2 leaves its state
            with torch.no_grad():
                ssm(
                    torch.randn(batch, 1, spec.hidden_size, device=device, dtype=dtype),
                    cache.state(i),
                )
        if model.block(i).cross_attention is not None:
            shape = (batch, spec.kv_heads, DECODE_ENCODER_SEQ, spec.resolved_head_dim)
            cache.cross_attention[i] = LayerCache(
                first=torch.randn(*shape, device=device, dtype=dtype),
                second=torch.randn(*shape, device=device, dtype=dtype),
            )
    return cache


def measure_decode(
    model: Transformer,
    settings: BenchSettings,
    cal: Calibration,
    context: int,
    probe: Probe,
    gemv_rates: dict[int, float] | None = None,
) -> DecodeResult:
    """Plan the step, then (if it fits) time it over a static cache (module docstring).
    ``gemv_rates`` (K -> bytes/s) holds the GEMV probes of earlier contexts of the run; the
    Ks this step adds are probed and added to it."""
    result = plan_decode(settings, cal, context)
    if result.skipped is not None:
        return result
    spec, device, batch = settings.spec, settings.device, settings.batch
    cache = build_static_cache(model, settings, context)
    stack = 1 if spec.architecture == "encoder-decoder" else 0
    positions = torch.tensor([context], device=device)
    tokens = torch.randint(0, spec.vocab_size, (batch, 1), device=device)
    hidden = torch.randn(batch, 1, spec.hidden_size, device=device, dtype=settings.dtype)
    with torch.no_grad():  # the bias of a timed step needs no autograd graph
        bias = model.position_bias(stack, 1, context + 1, context, device)

    def step() -> Tensor:
        x = model.embed_tokens(tokens, context, stack) if result.whole_model else hidden
        for index in range(len(model.layers)):  # a sliding layer slices the bias itself
            x = model.block(index)(x, positions, bias=bias, cache=cache, offset=context)
        if not result.whole_model:
            return x
        if model.final_norms:
            x = model.final_norms[-1](x)
        return model.logits(x)

    model.set_backend("sdpa" if "sdpa" in settings.backends else settings.backends[0])
    counted = count_step(step, model.parameters(), state_mixer_modules(model))
    result.operators = counted.operators
    result.state_traffic_bytes = counted.elementwise_bytes
    result.weight_reads = dict(counted.weight_reads)
    known = {} if gemv_rates is None else gemv_rates
    new = sorted(set(result.weight_reads) - set(known))
    if new:
        known.update(zip(new, measure_gemv_rates(device, settings.dtype, new), strict=True))
    result.gemv_rates = {k: known[k] for k in result.weight_reads}
    result.predicted_seconds = predict_decode_seconds(result, cal, device_type=device.type)
    with torch.no_grad():
        result.step = time_call(
            step, device=device, warmup=settings.warmup, repeats=settings.repeats, probe=probe
        )
    return result
