"""The layer plan: what each layer of each stack is. The one place that decides it.

``layer_plan(spec)`` reads the spec's layout fields (``architecture``, ``layer_types``,
``mixer``, ``mlp_layer_types`` / ``first_dense_layers`` / ``moe_layer_step``,
``layer_positions``, ``parallel_ssm``, ``sparse_attention``) and returns runs of identical
layers: ``Run(plan, stack, start, count)``. Parameters, FLOPs, memory and the bench model
dispatch on ``LayerPlan.mixer``; none of them re-derives the layout (vLLM's per-layer
``KVCacheSpec`` and torchtitan's per-mixer FLOP functions are the models).

Runs keep the work O(distinct runs) rather than O(layers): a uniform 1,000,000-layer stack is
one run. The plan is built in O(layers) at worst (explicit per-layer tuples, or a MoE step
other than 1), never quadratically.

Only the standard library is imported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from tfcli.spec import ModelSpec

T = TypeVar("T")

ATTENTION_MIXERS = ("attention", "mla")
"""Mixers with a softmax over cached keys (a KV cache that grows with the sequence)."""
STATE_MIXERS = ("gated_deltanet", "lightning", "mamba", "mamba2", "rwkv")
"""Mixers with a fixed per-sequence state instead of a KV cache."""


@dataclass(frozen=True)
class LayerPlan:
    """What one layer is. Equal plans mean identical layers (same parameters and costs).

    * ``mixer``: ``attention`` (MHA/GQA/MQA), ``mla`` (latent attention), ``gated_deltanet``,
      ``lightning``, ``mamba``, ``mamba2`` or ``rwkv``.
    * ``pattern`` (attention mixers): ``full``, ``sliding`` (``window`` keys), ``chunked``
      (``window`` = chunk size), ``longformer`` (``window`` + global tokens), ``bigbird``;
      ``None`` for the other mixers.
    * ``rope``: ``rope`` (the model's RoPE base), ``rope_local`` (the local base of sliding
      layers, Gemma-3), ``none`` (NoPE, or a model without rotary positions).
    * ``mlp``: ``dense``, ``moe`` or ``none`` (pure Mamba blocks).
    * ``cross``: cross-attention to the encoder output (encoder-decoder decoders).
    * ``causal``: decoders attend earlier tokens only; encoders attend both ways.
    * ``parallel_ssm``: a Mamba-2 mixer runs beside the attention (Falcon-H1).
    * ``first``: the first layer of its stack (ModernBERT has no attention norm there).
    """

    stack: str
    mixer: str
    pattern: str | None
    window: int | None
    rope: str
    mlp: str
    cross: bool
    causal: bool
    parallel_ssm: bool = False
    first: bool = False

    @property
    def kind(self) -> str:
        """A short name: the attention pattern for attention layers, else the mixer."""
        if self.mixer in ATTENTION_MIXERS:
            base = self.pattern or "full"
            return f"{base}+mamba2" if self.parallel_ssm else base
        return self.mixer

    @property
    def has_kv_cache(self) -> bool:
        """Self-attention keys/values are cached (decoders only: an encoder keeps nothing)."""
        return self.mixer in ATTENTION_MIXERS and self.causal

    @property
    def has_state(self) -> bool:
        """A fixed-size per-sequence state (linear attention, SSM, RWKV, Falcon-H1's Mamba)."""
        return self.mixer in STATE_MIXERS or self.parallel_ssm


@dataclass(slots=True)
class Run:
    """``count`` consecutive identical layers of ``stack`` starting at layer ``start`` (slots,
    not frozen: a 1,000,000-layer alternating stack makes a million of them; treat as
    read-only)."""

    plan: LayerPlan
    start: int
    count: int

    @property
    def stack(self) -> str:
        return self.plan.stack

    @property
    def stop(self) -> int:
        return self.start + self.count


# ---- run-length helpers ----------------------------------------------------------------------


def rle(values: Iterable[T]) -> list[tuple[T, int]]:
    """Run-length encoding: ``[a, a, b] -> [(a, 2), (b, 1)]``."""
    out: list[tuple[T, int]] = []
    last: object = _NOTHING
    count = 0
    for value in values:
        if value == last:
            count += 1
            continue
        if count:
            out.append((last, count))  # type: ignore[arg-type]
        last, count = value, 1
    if count:
        out.append((last, count))  # type: ignore[arg-type]
    return out


_NOTHING = object()


def _uniform(value: T, n: int) -> list[tuple[T, int]]:
    return [(value, n)] if n > 0 else []


def merge_runs(*sequences: Sequence[tuple[T, int]]) -> Iterator[tuple[tuple[T, ...], int]]:
    """Zip run-length sequences of the same total length into runs of value tuples, in
    O(total runs); a single varying sequence beside constant ones takes a fast path."""
    varying = [k for k, seq in enumerate(sequences) if len(seq) > 1]
    if len(varying) <= 1 and all(sequences):
        constant = [seq[0][0] for seq in sequences]
        if not varying:
            yield tuple(constant), sequences[0][0][1]
            return
        k = varying[0]
        for value, count in sequences[k]:
            constant[k] = value
            yield tuple(constant), count
        return
    positions = [0] * len(sequences)
    remaining = [seq[0][1] if seq else 0 for seq in sequences]
    while all(i < len(seq) for i, seq in zip(positions, sequences, strict=True)):
        step = min(remaining)
        yield tuple(seq[i][0] for i, seq in zip(positions, sequences, strict=True)), step
        for k, seq in enumerate(sequences):
            remaining[k] -= step
            if remaining[k] == 0:
                positions[k] += 1
                if positions[k] < len(seq):
                    remaining[k] = seq[positions[k]][1]


# ---- per-layer attributes of the main stack, run-length encoded ----------------------------


def main_stack_kinds(spec: ModelSpec) -> list[tuple[str, int]]:
    """The layer kind of each layer of the main stack (``spec.LAYER_KINDS``), encoded."""
    if spec.layer_types is not None:
        return rle(spec.layer_types)
    if spec.mixer != "attention":
        return _uniform(spec.mixer, spec.num_layers)
    if spec.sliding_window is not None:
        return _uniform("sliding", spec.num_layers)
    return _uniform("full", spec.num_layers)


def main_stack_mlps(spec: ModelSpec) -> list[tuple[str, int]]:
    """``dense``, ``moe`` or ``none`` per layer of the main stack, encoded.

    MoE layer ``i``: ``i >= first_dense_layers`` and ``(i + 1) % moe_layer_step == 0``
    (DeepSeek's first_k_dense_replace, Qwen-MoE's decoder_sparse_step, Llama 4's
    interleave_moe_layer_step), unless ``mlp_layer_types`` lists every layer.
    """
    n = spec.num_layers
    if spec.mlp_layer_types is not None:
        return rle(spec.mlp_layer_types)
    if spec.mixer in ("mamba", "mamba2") and spec.layer_types is None:
        return _uniform("none", n)
    if not spec.is_moe:
        return _uniform("dense", n)
    first = min(spec.first_dense_layers, n)
    step = spec.moe_layer_step
    if step == 1:
        return _uniform("dense", first) + _uniform("moe", n - first)
    return _uniform("dense", first) + rle(
        "moe" if (i + 1) % step == 0 else "dense" for i in range(first, n)
    )


def main_stack_positions(spec: ModelSpec, kinds: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """``rope``, ``rope_local`` or ``none`` per layer, encoded: ``layer_positions`` (NoPE
    layers) over a model with RoPE; sliding layers use the local base when the spec has one."""
    n = spec.num_layers
    if spec.position_type != "rope":
        return _uniform("none", n)
    base = rle(spec.layer_positions) if spec.layer_positions is not None else _uniform("rope", n)
    if spec.rope_local_theta is None:
        return base
    out: list[tuple[str, int]] = []
    for (position, kind), count in merge_runs(base, kinds):
        value = "rope_local" if position == "rope" and kind == "sliding" else position
        if out and out[-1][0] == value:
            out[-1] = (value, out[-1][1] + count)
        else:
            out.append((value, count))
    return out


# ---- the plan ------------------------------------------------------------------------------


def _attention_layer(spec: ModelSpec, kind: str, *, causal: bool) -> tuple[str, str, int | None]:
    """(mixer, pattern, window) of an attention layer of kind full/sliding/chunked."""
    mixer = "mla" if spec.is_mla else "attention"
    if not causal and spec.sparse_attention != "none":
        window = spec.sparse_block_size if spec.sparse_attention == "bigbird" else None
        return mixer, spec.sparse_attention, window or spec.sliding_window
    if kind == "sliding":
        return mixer, "sliding", spec.sliding_window
    if kind == "chunked":
        return mixer, "chunked", spec.attention_chunk_size
    return mixer, "full", None


def _stack_runs(spec: ModelSpec, stack: str, *, causal: bool, cross: bool) -> list[Run]:
    """Runs of one stack. Encoders of encoder-decoder models share the decoder's widths and
    are uniform full attention with dense MLPs (T5, BART)."""
    if stack == "encoder" and spec.architecture == "encoder-decoder":
        n = int(spec.num_encoder_layers or 0)
        rope = "rope" if spec.position_type == "rope" else "none"
        kinds, mlps, positions = _uniform("full", n), _uniform("dense", n), _uniform(rope, n)
    else:
        kinds = main_stack_kinds(spec)
        mlps = main_stack_mlps(spec)
        positions = main_stack_positions(spec, kinds)
    runs: list[Run] = []
    start = 0
    interned: dict[tuple[str, ...], LayerPlan] = {}
    for key, count in merge_runs(kinds, mlps, positions):
        plan = interned.get(key)
        if plan is None:
            plan = interned[key] = _layer(spec, stack, key, causal=causal, cross=cross)
        if start == 0:
            runs.append(Run(_first(plan), 0, 1))
            if count > 1:
                runs.append(Run(plan, 1, count - 1))
        else:
            runs.append(Run(plan, start, count))
        start += count
    return runs


def _layer(
    spec: ModelSpec, stack: str, key: tuple[str, ...], *, causal: bool, cross: bool
) -> LayerPlan:
    """The plan of a layer of ``kind`` with ``mlp`` and ``rope`` (built once per distinct key:
    an alternating 1,000,000-layer stack has two)."""
    kind, mlp, rope = key
    if kind in ("full", "sliding", "chunked"):
        mixer, pattern, window = _attention_layer(spec, kind, causal=causal)
    else:
        mixer, pattern, window = kind, None, None
    return LayerPlan(
        stack=stack,
        mixer=mixer,
        pattern=pattern,
        window=window,
        rope=rope if mixer in ATTENTION_MIXERS else "none",
        mlp=mlp,
        cross=cross,
        causal=causal,
        parallel_ssm=spec.parallel_ssm and mixer in ATTENTION_MIXERS,
    )


def _first(plan: LayerPlan) -> LayerPlan:
    return LayerPlan(**{**plan.__dict__, "first": True})


def layer_plan(spec: ModelSpec) -> tuple[Run, ...]:
    """Every layer of every stack as runs of identical layers, encoder stack first.

    decoder-only: one causal ``decoder`` stack; encoder-only: one bidirectional ``encoder``
    stack; encoder-decoder: a bidirectional encoder of ``num_encoder_layers`` and a causal
    decoder of ``num_layers`` whose layers add cross-attention.
    """
    if spec.architecture == "encoder":
        return tuple(_stack_runs(spec, "encoder", causal=False, cross=False))
    runs: list[Run] = []
    if spec.architecture == "encoder-decoder":
        runs += _stack_runs(spec, "encoder", causal=False, cross=False)
    runs += _stack_runs(spec, "decoder", causal=True, cross=spec.architecture == "encoder-decoder")
    return tuple(runs)


@dataclass(frozen=True)
class Group:
    """Every layer of one stack whose value ``key`` is the same, wherever they sit: ``count``
    layers from ``first`` to ``last``; ``stride`` is their regular spacing (1 = consecutive,
    2 = every other layer) or None when irregular; ``spans`` lists the first few ranges."""

    stack: str
    first: int
    last: int
    count: int
    stride: int | None
    spans: tuple[tuple[int, int], ...]
    more_spans: bool


def group_runs(runs: Iterable[tuple[str, int, int, T]]) -> list[tuple[Group, T]]:
    """Group ``(stack, start, count, key)`` runs by (stack, key), in order of first appearance,
    in O(runs). Each group keeps its index pattern for the views: contiguous (stride 1),
    every k-th layer (stride k, single layers at a constant gap), or irregular (None)."""
    groups: _Groups[tuple[str, T]] = _Groups()
    for stack, start, count, key in runs:
        groups.add((stack, start, count), (stack, key))
    return [(state.group(slot[0]), slot[1]) for slot, state in groups.items()]


K = TypeVar("K", bound=Hashable)


class _Groups(Generic[K]):
    """Group states by key, in order of first appearance (dicts keep insertion order)."""

    def __init__(self) -> None:
        self.state: dict[K, _GroupState] = {}

    def add(self, where: tuple[str, int, int], key: K) -> None:
        """Add ``count`` layers from ``start`` (``where = (stack, start, count)``) to ``key``."""
        _, start, count = where
        entry = self.state.get(key)
        if entry is None:
            self.state[key] = _GroupState(start, count)
        else:
            entry.add(start, count)

    def items(self) -> list[tuple[K, _GroupState]]:
        return list(self.state.items())


class _GroupState:
    """Running state of one group while ``group_runs`` walks the runs."""

    def __init__(self, start: int, count: int) -> None:
        self.first, self.last, self.count = start, start + count - 1, count
        self.stride: int | None = 1 if count > 1 else 0  # 0: one single layer so far
        self.spans = [(start, start + count - 1)]
        self.more = False

    def add(self, start: int, count: int) -> None:
        contiguous = start == self.last + 1
        if contiguous and self.stride in (0, 1):
            self.stride = 1
        elif count == 1 and self.stride == 0:
            self.stride = start - self.last
        elif not (count == 1 and self.stride is not None and start - self.last == self.stride > 1):
            self.stride = None
        if contiguous and self.spans[-1][1] == self.last:
            self.spans[-1] = (self.spans[-1][0], start + count - 1)
        elif len(self.spans) < 3:
            self.spans.append((start, start + count - 1))
        else:
            self.more = True
        self.last = start + count - 1
        self.count += count

    def group(self, stack: str) -> Group:
        stride = 1 if self.stride == 0 else self.stride
        return Group(stack, self.first, self.last, self.count, stride, tuple(self.spans), self.more)


def groups_by_value(
    groups: Iterable[tuple[Group, LayerPlan]], value: Callable[[LayerPlan], T]
) -> list[tuple[Group, T]]:
    """Merge the plan groups whose ``value`` is equal (layer 0's plan usually equals the
    next ones'), in order of first appearance: O(distinct plans)."""
    merged: dict[T, Group] = {}
    for group, plan in groups:
        key = value(plan)
        merged[key] = merge_groups(merged[key], group) if key in merged else group
    return [(group, key) for key, group in merged.items()]


def plan_groups(runs: Iterable[Run]) -> list[tuple[Group, LayerPlan]]:
    """The layers of each distinct plan and where they sit (``ModelSpec.layer_groups`` caches
    it): every count, FLOP and byte computation then costs O(distinct plans)."""
    return group_runs((run.stack, run.start, run.count, run.plan) for run in runs)


def merge_groups(a: Group, b: Group) -> Group:
    """One group for the disjoint layers of ``a`` and ``b`` (same stack): an arithmetic
    progression (contiguous, or every k-th layer) when their union is one, else irregular with
    the first three spans kept."""
    first_start = min(a.first, b.first)
    last = max(a.last, b.last)
    count = a.count + b.count
    for step in sorted({1, *(g.stride for g in (a, b) if g.stride), abs(b.first - a.first)}):
        if step < 1 or (last - first_start) % step or count != (last - first_start) // step + 1:
            continue
        if all(_on_progression(g, first_start, step) for g in (a, b)):
            contiguous: tuple[tuple[int, int], ...] = ((first_start, last),) if step == 1 else ()
            return Group(a.stack, first_start, last, count, step, contiguous, False)
    spans = tuple(sorted(a.spans + b.spans))
    more = a.more_spans or b.more_spans or len(spans) > 3
    return Group(a.stack, first_start, last, count, None, spans[:3], more)


def _on_progression(group: Group, start: int, step: int) -> bool:
    """Every layer of ``group`` lies on ``start, start + step, ...``."""
    if group.stride is None:
        return False
    return (group.first - start) % step == 0 and (group.count == 1 or group.stride % step == 0)


# ---- periodic stacks: groups in O(period), whatever the depth ------------------------------

PERIOD_LIMIT = 4096
"""The longest repeating block looked for in a per-layer sequence (Gemma-3's is 6, Jamba's 8,
Llama 4's MoE-and-NoPE pattern 4); longer patterns take the O(layers) path."""


def shortest_period(values: Sequence[T], limit: int = PERIOD_LIMIT) -> int | None:
    """The smallest ``p <= min(len / 2, limit)`` with ``values[i] == values[i mod p]`` for
    every ``i``, or None. Each candidate is one C-level slice comparison that stops at the
    first mismatch, so a million entries take milliseconds."""
    seq = tuple(values)
    n = len(seq)
    for p in range(1, min(n // 2, limit) + 1):
        if seq[p] == seq[0] and seq[p:] == seq[: n - p]:
            return p
    return None


@dataclass(frozen=True)
class Periodic:
    """A per-layer sequence of ``n`` entries: ``prefix``, then ``block`` repeated."""

    prefix: tuple[str, ...]
    block: tuple[str, ...]
    n: int

    def at(self, i: int) -> str:
        if i < len(self.prefix):
            return self.prefix[i]
        return self.block[(i - len(self.prefix)) % len(self.block)]


def _periodic(values: tuple[str, ...] | None, default: str, n: int) -> Periodic | None:
    if values is None:
        return Periodic((), (default,), n)
    period = shortest_period(values)
    return None if period is None else Periodic((), values[:period], n)


def _periodic_mlps(spec: ModelSpec) -> Periodic | None:
    """``main_stack_mlps`` as a prefix (DeepSeek's dense first layers) and a block (the MoE
    step)."""
    n = spec.num_layers
    if spec.mlp_layer_types is not None:
        return _periodic(spec.mlp_layer_types, "dense", n)
    if spec.mixer in ("mamba", "mamba2") and spec.layer_types is None:
        return Periodic((), ("none",), n)
    if not spec.is_moe:
        return Periodic((), ("dense",), n)
    first, step = min(spec.first_dense_layers, n), spec.moe_layer_step
    block = tuple("moe" if (first + j + 1) % step == 0 else "dense" for j in range(step))
    return Periodic(("dense",) * first, block, n)


def _periodic_keys(spec: ModelSpec) -> tuple[Callable[[int], tuple[str, str, str]], int, int]:
    """(key of layer i, prefix length, period) of the main stack's (kind, mlp, rope) keys, or
    raise LookupError when a sequence has no short period."""
    n = spec.num_layers
    if spec.layer_types is not None:
        kinds = _periodic(spec.layer_types, "full", n)
    else:
        kinds = Periodic((), (main_stack_kinds(spec)[0][0],), n)
    mlps = _periodic_mlps(spec)
    rope = spec.position_type == "rope"
    positions = _periodic(spec.layer_positions if rope else None, "rope" if rope else "none", n)
    if kinds is None or mlps is None or positions is None:
        raise LookupError("no short period")
    local = spec.rope_local_theta is not None

    def key(i: int) -> tuple[str, str, str]:
        kind, position = kinds.at(i), positions.at(i)
        if local and position == "rope" and kind == "sliding":
            position = "rope_local"
        return kind, mlps.at(i), position

    sequences = (kinds, mlps, positions)
    prefix = max(len(seq.prefix) for seq in sequences)
    period = math.lcm(*(len(seq.block) for seq in sequences))
    return key, prefix, period


def periodic_plan_groups(spec: ModelSpec) -> list[tuple[Group, LayerPlan]] | None:
    """``plan_groups(layer_plan(spec))`` without building a run per layer, for a main stack
    that is a short prefix and a repeated block (exactly equal; None when the stack is not
    such, or too short to gain anything).

    The block is rotated to start at a change of key, so its runs repeat unchanged; the groups
    are followed through a few blocks until each group's stride and spans stop changing, and
    the remaining whole blocks only add ``count`` and move ``last``, in O(1) per group.
    """
    n = spec.num_layers
    if n < 4 * PERIOD_LIMIT:
        return None  # the run path is fast enough
    try:
        key, prefix, period = _periodic_keys(spec)
    except LookupError:
        return None
    warm = 5
    if period > PERIOD_LIMIT or prefix + (warm + 2) * period > n:
        return None
    start = next(
        (i for i in range(max(prefix, 1), prefix + period + 1) if key(i) != key(i - 1)), None
    )
    if start is None:
        return None  # one key throughout: the run path already has a few runs
    blocks = (n - start) // period
    stack = "encoder" if spec.architecture == "encoder" else "decoder"
    causal = spec.architecture != "encoder"
    cross = spec.architecture == "encoder-decoder"
    interned: dict[tuple[str, ...], LayerPlan] = {}

    def plan_of(k: tuple[str, str, str]) -> LayerPlan:
        plan = interned.get(k)
        if plan is None:
            plan = interned[k] = _layer(spec, stack, k, causal=causal, cross=cross)
        return plan

    def runs_of(lo: int, hi: int) -> list[tuple[int, int, LayerPlan]]:
        out = [(lo + i, c, plan_of(k)) for k, c, i in _rle_spans(key, lo, hi)]
        if out and out[0][0] == 0:  # layer 0 is a plan of its own
            _, count, plan = out[0]
            out[0:1] = [(0, 1, _first(plan))] + ([(1, count - 1, plan)] if count > 1 else [])
        return out

    accumulated: _Groups[LayerPlan] = _Groups()
    state = accumulated.state

    def feed(runs: list[tuple[int, int, LayerPlan]]) -> None:
        for first_layer, count, plan in runs:
            accumulated.add((stack, first_layer, count), plan)

    feed(runs_of(0, start + warm * period))
    before = {
        plan: (g.count, g.last, g.stride, tuple(g.spans), g.more) for plan, g in state.items()
    }
    feed(runs_of(start + warm * period, start + (warm + 1) * period))
    grows: dict[LayerPlan, int] = {}
    for plan, g in state.items():
        old = before.get(plan)
        if old is None or (g.stride, tuple(g.spans), g.more) != old[2:]:
            return None  # not settled after the warm-up blocks: take the run path
        if g.count != old[0]:
            if g.last != old[1] + period:
                return None
            grows[plan] = g.count - old[0]
    skipped = blocks - (warm + 1)
    for plan, per_block in grows.items():
        state[plan].count += per_block * skipped
        state[plan].last += period * skipped
    feed(runs_of(start + blocks * period, n))
    groups = [(g.group(stack), plan) for plan, g in accumulated.items()]
    if spec.architecture == "encoder-decoder":
        encoder = _stack_runs(spec, "encoder", causal=False, cross=False)
        groups = plan_groups(encoder) + groups
    return groups


def _rle_spans(
    key: Callable[[int], tuple[str, str, str]], lo: int, hi: int
) -> Iterator[tuple[tuple[str, str, str], int, int]]:
    """(key, count, offset from ``lo``) runs of ``key(i)`` over ``lo <= i < hi``."""
    run_start = lo
    current = key(lo) if lo < hi else None
    for i in range(lo + 1, hi):
        k = key(i)
        if k != current:
            assert current is not None
            yield current, i - run_start, run_start - lo
            run_start, current = i, k
    if current is not None:
        yield current, hi - run_start, run_start - lo


def expand(runs: Iterable[Run]) -> Iterator[tuple[int, LayerPlan]]:
    """(index in stack, plan) for every layer: O(layers); for views that list each layer."""
    for run in runs:
        for i in range(run.start, run.stop):
            yield i, run.plan


def stack_depth(runs: Iterable[Run], stack: str) -> int:
    return sum(run.count for run in runs if run.stack == stack)
