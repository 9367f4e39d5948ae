"""``tfcli bench --mixers``: the layer kinds, their one-layer specs and the work they execute.

torch is not imported here: the command parses ``--mixers`` and derives each kind's spec
before torch loads, so a bad value fails at once.

Kinds (``--mixers full,sliding:4096,chunked:8192,linear,mamba2,mamba1,lightning,rwkv``):

* ``full``: causal softmax attention over every earlier key;
* ``sliding:W``: causal attention over the last W keys (Mistral, Gemma local layers);
* ``chunked:C``: causal attention inside chunks of C tokens (Llama 4 local layers);
* ``linear``: Gated DeltaNet (Qwen3-Next's linear attention, transformers'
  ``Qwen3NextGatedDeltaNet``);
* ``mamba2``: the Mamba-2 mixer (transformers' ``Mamba2Mixer``); ``mamba1``: Mamba-1;
* ``lightning``: MiniMax's lightning attention (transformers' ``MiniMaxLightningAttention``:
  linear attention with a per-head decay, blocks of 256 tokens), at the model's heads;
* ``rwkv``: RWKV-4 time mixing (transformers' ``RwkvSelfAttention``: the WKV recurrence,
  token by token as the reference's CPU path runs it).

Every kind is one layer at the model's width: ``kind_spec`` replaces the layer plan of the
user's spec with one layer of that kind (``ModelSpec.replace``); a state mixer the model does
not have gets widths derived from the model's (``LINEAR_*`` / ``MAMBA*`` defaults below, the
choice stated in the output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfcli.errors import UsageError, shorten
from tfcli.flops import GATED_DELTANET_CHUNK, LIGHTNING_BLOCK, forward_flops
from tfcli.spec import MAX_POSITIONS, ModelSpec

ATTENTION_MIXERS = ("full", "sliding", "chunked")
STATE_MIXERS = ("linear", "mamba2", "mamba1", "lightning", "rwkv")
MIXER_NAMES = ATTENTION_MIXERS + STATE_MIXERS
WINDOWED = ("sliding", "chunked")
SPEC_KIND = {
    "full": "full",
    "sliding": "sliding",
    "chunked": "chunked",
    "linear": "gated_deltanet",
    "mamba2": "mamba2",
    "mamba1": "mamba",
    "lightning": "lightning",
    "rwkv": "rwkv",
}
"""The ``layer_types`` entry (``tfcli.spec.LAYER_KINDS``) of each ``--mixers`` kind."""
MIXERS_USAGE = "full, sliding:W, chunked:C, linear, mamba2, mamba1, lightning, rwkv"

LINEAR_HEAD_DIM = 128
"""Gated DeltaNet key/value head width when the model has none: Qwen3-Next's 128
(Qwen3NextConfig linear_key_head_dim / linear_value_head_dim)."""
LINEAR_VALUE_HEADS_PER_KEY_HEAD = 2
"""Qwen3-Next: 32 value heads over 16 key heads (linear_num_value_heads / _key_heads)."""
CONV_KERNEL = 4
"""Causal depthwise convolution width of Gated DeltaNet, Mamba and Mamba-2 (their configs)."""
MAMBA2_HEAD_DIM = 64
"""Mamba2Config.head_dim default."""
MAMBA2_STATE = 128
"""Mamba2Config.state_size default."""
MAMBA_EXPAND = 2
"""Mamba and Mamba-2 d_inner = expand x hidden (MambaConfig / Mamba2Config expand = 2)."""
MAMBA1_STATE = 16
"""MambaConfig.state_size default."""

SLIDING_BLOCK_RANGE = (64, 256)
"""Query block of the banded sliding-window core: the window, clamped to [64, 256]."""


@dataclass(frozen=True)
class MixerKind:
    """One ``--mixers`` entry: a kind name and, for sliding and chunked, its window."""

    name: str
    window: int | None = None

    @property
    def label(self) -> str:
        return self.name if self.window is None else f"{self.name}:{self.window}"

    @property
    def is_attention(self) -> bool:
        return self.name in ATTENTION_MIXERS


def parse_mixers(text: str) -> tuple[MixerKind, ...]:
    """``full,sliding:4096,chunked:8192,linear,mamba2`` -> kinds in the order given.

    sliding and chunked need a positive window (``sliding:4096``); the others take none; each
    kind at most once. UsageError (one line) otherwise."""
    kinds: list[MixerKind] = []
    for raw in text.split(","):
        item = raw.strip().lower()
        if not item:
            continue
        name, _, value = item.partition(":")
        name = name.strip()
        if name not in MIXER_NAMES:
            raise UsageError(f"--mixers: unknown kind {shorten(name)}; use {MIXERS_USAGE}")
        window: int | None = None
        if name in WINDOWED:
            value = value.strip()
            if not value:
                raise UsageError(f"--mixers: {name} needs a window in tokens, e.g. {name}:4096")
            digits = value[:-1] if value.endswith("k") else value
            if not digits.isdigit() or int(digits) < 1:
                raise UsageError(
                    f"--mixers: {name} window {shorten(value)} is not a positive integer"
                )
            window = int(digits) * (1024 if value.endswith("k") else 1)
            if window > MAX_POSITIONS:
                raise UsageError(f"--mixers: {name} window must be at most {MAX_POSITIONS:,}")
        elif value:
            raise UsageError(f"--mixers: {name} takes no window, got {shorten(item)}")
        if any(k.name == name for k in kinds):
            raise UsageError(f"--mixers: {name} is given twice; give each kind once")
        kinds.append(MixerKind(name, window))
    if not kinds:
        raise UsageError(f"--mixers: no kinds in {shorten(text)}; use {MIXERS_USAGE}")
    return tuple(kinds)


# ---- one-layer specs ---------------------------------------------------------------------------


def _one_layer(spec: ModelSpec, layer_type: str, **changes: object) -> ModelSpec:
    """``spec`` with one main-stack layer of ``layer_type`` and no per-layer tuples, no
    parallel Mamba mixer (each kind is timed alone) and a dense MLP."""
    return spec.replace(
        num_layers=1,
        layer_types=(layer_type,),
        layer_positions=None,
        mlp_layer_types=("dense",) if spec.is_moe else None,
        parallel_ssm=False,
        **changes,
    )


def linear_defaults(spec: ModelSpec) -> dict[str, int]:
    """Gated DeltaNet widths for a model without them, Qwen3-Next's proportions: key heads of
    d = min(128, h) with H_k d = h (Qwen3-Next-80B: 16 x 128 = 2048 = hidden), twice as many
    value heads, convolution 4."""
    h = spec.hidden_size
    d = min(LINEAR_HEAD_DIM, h)
    key_heads = max(1, h // d)
    return {
        "linear_num_key_heads": key_heads,
        "linear_num_value_heads": LINEAR_VALUE_HEADS_PER_KEY_HEAD * key_heads,
        "linear_key_head_dim": d,
        "linear_value_head_dim": d,
        "conv_kernel": CONV_KERNEL,
        "linear_chunk_size": GATED_DELTANET_CHUNK,
    }


def mamba2_defaults(spec: ModelSpec) -> dict[str, int]:
    """Mamba-2 widths from Mamba2Config's defaults: d_inner = 2 h, heads of 64 (fewer when
    2 h is not a multiple of 64: the largest divisor), state 128, one group, convolution 4."""
    inner = int(spec.ssm_inner_size or MAMBA_EXPAND * spec.hidden_size)
    head_dim = math.gcd(inner, MAMBA2_HEAD_DIM)
    return {
        "ssm_inner_size": inner,
        "ssm_num_heads": inner // head_dim,
        "ssm_state_size": MAMBA2_STATE,
        "ssm_groups": 1,
        "conv_kernel": CONV_KERNEL,
    }


def mamba1_defaults(spec: ModelSpec) -> dict[str, int]:
    """Mamba-1 widths from MambaConfig's defaults: d_inner = 2 h, state 16,
    dt rank ceil(h / 16), convolution 4."""
    return {
        "ssm_inner_size": MAMBA_EXPAND * spec.hidden_size,
        "ssm_state_size": MAMBA1_STATE,
        "ssm_dt_rank": math.ceil(spec.hidden_size / 16),
        "conv_kernel": CONV_KERNEL,
    }


def lightning_defaults(spec: ModelSpec) -> dict[str, int]:
    """Lightning attention runs at the model's own heads (H x d, as MiniMax's lightning and
    softmax layers share num_attention_heads and head_dim) in blocks of LIGHTNING_BLOCK
    tokens (MiniMaxConfig.block_size; not a Gated DeltaNet model's chunk length)."""
    return {"linear_chunk_size": LIGHTNING_BLOCK}


def rwkv_defaults(spec: ModelSpec) -> dict[str, int]:
    """RWKV-4's attention width is the hidden size (RwkvConfig.attention_hidden_size)."""
    return {"rwkv_attention_size": int(spec.rwkv_attention_size or spec.hidden_size)}


_DEFAULTS = {
    "linear": linear_defaults,
    "mamba2": mamba2_defaults,
    "mamba1": mamba1_defaults,
    "lightning": lightning_defaults,
    "rwkv": rwkv_defaults,
}


def _has_kind(spec: ModelSpec, layer_type: str) -> bool:
    return layer_type in spec.layer_kinds or (layer_type == "mamba2" and spec.parallel_ssm)


def kind_spec(spec: ModelSpec, kind: MixerKind) -> tuple[ModelSpec, str | None]:
    """(one-layer spec of ``kind`` at ``spec``'s width, a note saying which widths were
    chosen when the model has no layer of that kind, else None)."""
    layer_type = SPEC_KIND[kind.name]
    if kind.is_attention:
        changes: dict[str, object] = {}
        left_out = []
        if spec.attention_output_gate:  # Qwen3-Next: the built-in attention has no gate yet
            changes["attention_output_gate"] = False
            left_out.append("attention output gate (q_proj half as wide, no sigmoid gate)")
        if spec.position_type in ("alibi", "relative"):
            left_out.append(f"{spec.position_type} position bias")
        if spec.attn_logit_softcap is not None:
            left_out.append("logit soft-capping (SDPA cannot express it)")
        if not spec.is_causal:
            left_out.append("bidirectional mask (every kind is timed causal)")
        note = None
        if left_out:
            note = f"{kind.label}: timed without {spec.name}'s " + "; ".join(left_out)
        if kind.name == "sliding":
            changes["sliding_window"] = kind.window
        if kind.name == "chunked":
            changes["attention_chunk_size"] = kind.window
        return _one_layer(spec, layer_type, **changes), note
    if _has_kind(spec, layer_type):
        return _one_layer(spec, layer_type), None
    chosen = _DEFAULTS[kind.name](spec)
    widths = ", ".join(f"{k}={v}" for k, v in chosen.items())
    note = (
        f"{kind.name}: {spec.name} has no {layer_type} layers; built one at its width "
        f"(hidden {spec.hidden_size:,}) with {widths}"
    )
    return _one_layer(spec, layer_type, **chosen), note


# ---- what each kind executes (pairs, FLOPs) ----------------------------------------------------


def sliding_block(window: int) -> int:
    """Query rows per call of the banded sliding-window core (``SLIDING_BLOCK_RANGE``)."""
    low, high = SLIDING_BLOCK_RANGE
    return max(low, min(high, window))


def sliding_key_range(start: int, end: int, window: int) -> tuple[int, int]:
    """Keys [first, end) that query rows [start, end) can see under a causal window w:
    row i sees keys i - w < j <= i, so the block needs keys from max(0, start - w + 1)."""
    return max(0, start - window + 1), end


def sliding_executed_pairs(seq: int, window: int) -> int:
    """(query, key) pairs the banded core computes per head: each query block [s, e) of
    b = ``sliding_block(w)`` rows against its key range (``sliding_key_range``), masked
    inside:

        sum over blocks (e - s) x (e - max(0, s - w + 1))

    which tends to s (w + b - 1) for s >> w against the s w pairs the window lets through
    (``tfcli.flops.attended_pairs``): the block's own rows are the waste. The blocks that
    start at or after w - 1 are summed in closed form."""
    block = sliding_block(window)
    pairs = 0
    start = 0
    while start < seq and start - window + 1 <= 0:  # blocks whose keys start at 0
        end = min(seq, start + block)
        pairs += (end - start) * end
        start = end
    if start >= seq:
        return pairs
    full, rest = divmod(seq - start, block)
    pairs += full * block * (block + window - 1)
    if rest:
        pairs += rest * (rest + window - 1)
    return pairs


def chunk_lengths(seq: int, chunk: int) -> list[int]:
    """Lengths of the chunks a sequence splits into (the last may be shorter)."""
    return [min(chunk, seq - start) for start in range(0, seq, chunk)]


@dataclass(frozen=True)
class MixerFlops:
    """tfcli's estimate for one mixer layer (``tfcli.flops.forward_flops``): the mixer's
    projections, its attention core (the causal-convention pairs of its pattern) or scan."""

    projections: int
    attention: int
    scan: int

    @property
    def total(self) -> int:
        return self.projections + self.attention + self.scan


def mixer_flops(layer_spec: ModelSpec, seq: int, batch: int) -> MixerFlops:
    """The one layer of ``layer_spec`` (``kind_spec``) from ``forward_flops``, MLP excluded."""
    layer = forward_flops(layer_spec, seq, batch=batch).groups[0]
    return MixerFlops(layer.projections, layer.attention, layer.scan)
