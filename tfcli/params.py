"""Parameter counts: named components summing to the total, per layer run, MoE active counts.

What is counted is what ``sum(p.numel() for p in model.parameters())`` counts for the
transformers model of the same config (DESIGN.md section 5, oracle 1): decoders as
``AutoModelForCausalLM``, encoder-only models as ``AutoModel`` (with the pooler, without an
MLM head), encoder-decoders as ``AutoModelForSeq2SeqLM``. Tied weights count once; buffers
(RoPE frequencies, ALiBi slopes, DeepSeek's ``e_score_correction_bias``) are not parameters.

Every tensor comes from ``tfcli.shapes`` (the same table the FLOPs use) for each layer of the
layer plan (``tfcli.plan``): a linear layer ``fan_in -> fan_out`` has ``fan_in x fan_out
(+ fan_out with a bias)`` parameters.

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from tfcli.plan import LayerPlan, Run, groups_by_value
from tfcli.shapes import (
    Shape,
    cross_attention_shapes,
    embedding_shapes,
    head_shapes,
    mixer_shapes,
    mlp_shapes,
    norm_shapes,
    norm_width_params,
)
from tfcli.spec import ModelSpec
from tfcli.terms import Term

__all__ = [
    "LayerParams",
    "ParamCount",
    "count_params",
    "linear_params",
    "norm_params",
    "shape_term",
]


@dataclass(frozen=True)
class LayerParams:
    """Parameters of one layer, and where the layers with these parameters sit: ``count`` of
    them from ``index`` (the first) every ``stride`` layers (1: consecutive; None: irregular,
    the first ``spans`` given).

    ``attention`` holds the token mixer's parameters, whatever the mixer (attention, MLA,
    Mamba, Gated DeltaNet, RWKV time mixing); ``kind`` names it (``LayerPlan.kind``).
    """

    index: int
    stack: str
    attention: int
    cross_attention: int
    mlp: int
    mlp_active: int
    norms: int
    kind: str = "full"
    count: int = 1
    stride: int | None = 1
    spans: tuple[tuple[int, int], ...] = ()
    more_spans: bool = False

    @property
    def total(self) -> int:
        return self.attention + self.cross_attention + self.mlp + self.norms

    @property
    def active(self) -> int:
        return self.attention + self.cross_attention + self.mlp_active + self.norms

    def value_key(self) -> tuple[object, ...]:
        """What makes two layers the same row: every count and the kind, not the position."""
        return (
            self.stack,
            self.kind,
            self.attention,
            self.cross_attention,
            self.mlp,
            self.mlp_active,
            self.norms,
        )


@dataclass(frozen=True)
class ParamCount:
    """Total and active parameters, by named component (summing exactly) and by layer group."""

    total: int
    active: int
    components: dict[str, int]
    active_components: dict[str, int]
    groups: tuple[LayerParams, ...]
    """One entry per distinct layer (its count and where those layers sit), in order of
    first appearance, encoder stack first: O(distinct layers), whatever the depth."""
    terms: tuple[Term, ...]
    """Each component as products of named factors (``--explain``); they sum to it."""
    spec: ModelSpec | None = field(default=None, repr=False, compare=False)
    """The spec counted: ``runs`` and ``layers`` read its layer plan only when asked."""
    per_plan: dict[LayerPlan, LayerParams] = field(default_factory=dict, repr=False, compare=False)

    @property
    def runs(self) -> tuple[LayerParams, ...]:
        """Runs of identical consecutive layers (O(runs): an alternating stack has one per
        layer; views use ``groups``)."""
        plan_runs = self.spec.layer_runs if self.spec is not None else ()
        return tuple(_consecutive(plan_runs, self.per_plan))

    @property
    def layers(self) -> tuple[LayerParams, ...]:
        """One entry per layer (O(layers): the runs expanded)."""
        return tuple(_expand(self.runs))


def _consecutive(
    runs: Iterable[Run], per_plan: dict[LayerPlan, LayerParams]
) -> Iterator[LayerParams]:
    current: LayerParams | None = None
    for run in runs:
        layer = per_plan[run.plan]
        if current is not None and current.value_key() == layer.value_key():
            current = replace(current, count=current.count + run.count)
            continue
        if current is not None:
            yield current
        current = replace(layer, index=run.start, count=run.count, spans=())
    if current is not None:
        yield current


def _expand(runs: Iterable[LayerParams]) -> Iterator[LayerParams]:
    for run in runs:
        for i in range(run.index, run.index + run.count):
            yield replace(run, index=i, count=1)


def linear_params(fan_in: int, fan_out: int, *, bias: bool) -> int:
    """nn.Linear(fan_in, fan_out): ``fan_in x fan_out`` weights ``+ fan_out`` bias."""
    return fan_in * fan_out + (fan_out if bias else 0)


def norm_params(spec: ModelSpec, width: int) -> int:
    """One norm over ``width`` features (see ``tfcli.shapes.norm_width_params``)."""
    return norm_width_params(spec, width)


def shape_term(shape: Shape, layers: int = 1) -> Term:
    """``layers x copies x (fan_in [+1 bias]) x fan_out``: a shape's parameters as a term."""
    factors: list[tuple[str, int]] = []
    if layers != 1:
        factors.append(("layers", layers))
    if shape.copies != 1:
        factors.append(("copies", shape.copies))
    fan_in_symbol, fan_out_symbol = shape.symbols
    if shape.fan_in != 1 or shape.bias:
        label = f"({fan_in_symbol} + 1 bias)" if shape.bias else fan_in_symbol
        factors.append((label, shape.fan_in + (1 if shape.bias else 0)))
    factors.append((fan_out_symbol, shape.fan_out))
    return Term(shape.component, tuple(factors))


def _add(target: dict[str, int], shapes: Iterable[Shape], times: int, *, active: bool) -> None:
    for shape in shapes:
        value = shape.active_params if active else shape.params
        if value:
            target[shape.component] = target.get(shape.component, 0) + times * value


def _layer(
    spec: ModelSpec, plan: LayerPlan, index: int, count: int
) -> tuple[LayerParams, list[Shape]]:
    mixer = mixer_shapes(spec, plan)
    cross = cross_attention_shapes(spec) if plan.cross else []
    mlp = mlp_shapes(spec, plan)
    norms = norm_shapes(spec, plan)
    layer = LayerParams(
        index=index,
        stack=plan.stack,
        attention=sum(s.params for s in mixer),
        cross_attention=sum(s.params for s in cross),
        mlp=sum(s.params for s in mlp),
        mlp_active=sum(s.active_params for s in mlp),
        norms=sum(s.params for s in norms),
        kind=plan.kind,
        count=count,
    )
    return layer, mixer + cross + mlp + norms


def count_params(spec: ModelSpec) -> ParamCount:
    """Every parameter of ``spec``: total, active per token, components, layer groups, terms.

    total = embeddings + sum over layers of (mixer + cross-attention + MLP + norms) + final
    norms, LM head and pooler. active counts the top-k routed experts of each MoE layer
    instead of all E (plus everything else): the parameters one token's forward pass uses.
    Each distinct layer plan is computed once; the layers of the plan only count them
    (O(runs) additions).
    """
    components: dict[str, int] = {}
    active: dict[str, int] = {}
    per_plan: dict[LayerPlan, LayerParams] = {}
    shapes_of: dict[LayerPlan, list[Shape]] = {}
    layers_of: dict[LayerPlan, int] = {}
    for group, plan in spec.layer_groups:
        per_plan[plan], shapes_of[plan] = _layer(spec, plan, 0, 1)
        layers_of[plan] = group.count
    grouped: dict[tuple[int, Shape], int] = {}
    for plan, shapes in shapes_of.items():
        _add(components, shapes, layers_of[plan], active=False)
        _add(active, shapes, layers_of[plan], active=True)
        for position, shape in enumerate(shapes):
            if shape.params:
                grouped[position, shape] = grouped.get((position, shape), 0) + layers_of[plan]
    outer = embedding_shapes(spec) + head_shapes(spec)
    _add(components, outer, 1, active=False)
    _add(active, outer, 1, active=True)
    terms = [shape_term(s) for s in embedding_shapes(spec) if s.params]
    terms += [shape_term(shape, layers) for (_, shape), layers in grouped.items()]
    terms += [shape_term(s) for s in head_shapes(spec) if s.params]
    by_value = groups_by_value(spec.layer_groups, lambda plan: per_plan[plan].value_key())
    representative = {layer.value_key(): layer for layer in per_plan.values()}
    groups = tuple(
        replace(
            representative[key],
            index=g.first,
            count=g.count,
            stride=g.stride,
            spans=g.spans,
            more_spans=g.more_spans,
        )
        for g, key in by_value
    )
    return ParamCount(
        total=sum(components.values()),
        active=sum(active.values()),
        components=components,
        active_components=active,
        groups=groups,
        terms=tuple(terms),
        spec=spec,
        per_plan=per_plan,
    )
