"""The parameter tensors of a model, by name and shape, as transformers lays them out.

Training memory needs more than a parameter count: PyTorch's AdamW keeps one ``step`` scalar
per parameter tensor, the optimizer step allocates temporaries the size of one tensor, and
FSDP2 (``fully_shard``) shards each tensor along dim 0, padding dim 0 to a multiple of the
world size. So this module lists the tensors, derived from ``tfcli.shapes`` (the table the
parameter counts and FLOPs read: one home for each shape): each ``Shape`` names the modules
it is stored in and their layout (``tfcli.shapes.LAYOUTS``): ``nn.Linear(fan_in, fan_out)``
holds a weight ``(fan_out, fan_in)`` and a bias ``(fan_out,)``; shapes naming the same module
are fused into it by rows (GPT-NeoX's ``query_key_value``); transformers 5 stores the routed
experts of a MoE layer as ``(E, 2 f_e, h)`` and ``(E, h, f_e)``.

The oracle is transformers itself: the shapes of ``model.parameters()`` on the meta device,
as a multiset, for every model type (tests/test_tensors_oracle.py). The element counts sum to
``tfcli.params.count_params(spec).total`` (they are the same shapes).

Only the standard library is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tfcli.errors import UsageError
from tfcli.plan import LayerPlan, expand
from tfcli.shapes import Shape, embedding_shapes, head_shapes, layer_shapes
from tfcli.spec import ModelSpec


@dataclass(frozen=True)
class ParamTensor:
    """One parameter tensor: dotted name (transformers-like) and shape."""

    name: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def shard_numel(self, world: int) -> int:
        """Elements one rank holds when FSDP2 shards dim 0 over ``world`` ranks:
        ``ceil(dim0 / world) x prod(other dims)`` (``torch.chunk`` with padding, as
        ``fully_shard`` allocates its padded sharded parameter)."""
        if world <= 1:
            return self.numel
        rest = math.prod(self.shape[1:])
        return -(-self.shape[0] // world) * rest


Piece = tuple[str, tuple[int, ...], int]


def _pieces(shape: Shape) -> list[Piece]:
    """(name, dims, fusing axis) of each tensor piece ``shape`` stores; pieces of one name
    are concatenated along the axis (q, k and v rows into one ``qkv`` weight)."""
    if shape.tied:
        return []
    if shape.layout == "explicit":
        return [(name, dims, 0) for name, dims in zip(shape.names, shape.dims, strict=True)]
    if shape.layout == "table":
        return [(name, (shape.fan_in, shape.fan_out), 0) for name in shape.names]
    if shape.layout == "conv":
        (name,) = shape.names
        out: list[Piece] = [(f"{name}.weight", (shape.fan_out, 1, shape.fan_in), 0)]
        return out + ([(f"{name}.bias", (shape.fan_out,), 0)] if shape.bias else [])
    if shape.layout in ("stacked", "stacked_t"):
        (name,) = shape.names
        experts = shape.stacked
        rows = shape.copies // experts * shape.fan_out
        dims = (experts, shape.fan_in, rows) if shape.layout == "stacked_t" else None
        stacked: list[Piece] = [(name, dims or (experts, rows, shape.fan_in), 0)]
        return stacked + ([(f"{name}_bias", (experts, rows), 0)] if shape.bias else [])
    # linear / linear_t: one module per copy, or every copy fused into one module
    per_module = shape.copies // len(shape.names)
    if per_module * len(shape.names) != shape.copies:
        raise ValueError(f"{shape.component}: {shape.copies} copies in {shape.names}")
    rows = per_module * shape.fan_out
    linears: list[Piece] = []
    for name in shape.names:
        if shape.layout == "linear_t":
            linears.append((f"{name}.weight", (shape.fan_in, rows), 1))
        else:
            linears.append((f"{name}.weight", (rows, shape.fan_in), 0))
        if shape.bias:
            linears.append((f"{name}.bias", (rows,), 0))
    return linears


def shapes_tensors(shapes: list[Shape], prefix: str = "") -> list[ParamTensor]:
    """The tensors of ``shapes`` (one layer's, or the embeddings' or head's), named under
    ``prefix``; pieces naming the same tensor are fused along their axis."""
    fused: dict[str, tuple[list[int], int]] = {}
    for shape in shapes:
        for name, dims, axis in _pieces(shape):
            key = prefix + name
            if key in fused:
                held, _ = fused[key]
                held[axis] += dims[axis]
            else:
                fused[key] = (list(dims), axis)
    return [ParamTensor(name, tuple(dims)) for name, (dims, _) in fused.items()]


def unmodelled_features(spec: ModelSpec) -> list[str]:
    """Shapes with parameters whose storage ``tfcli.shapes`` does not name (none today: a
    new shape without ``names`` shows here, and ``parameter_tensors`` refuses it)."""
    shapes = embedding_shapes(spec) + head_shapes(spec)
    for _, plan in spec.layer_groups:  # each distinct layer plan once
        shapes += layer_shapes(spec, plan)
    return sorted({s.component for s in shapes if s.params and not s.names})


def layer_tensors(spec: ModelSpec, stack: str, index: int) -> list[ParamTensor]:
    """The tensors of layer ``index`` of ``stack`` (``encoder`` or ``decoder``)."""
    for i, plan in expand(spec.layer_runs):
        if plan.stack == stack and i == index:
            return shapes_tensors(layer_shapes(spec, plan), f"{stack}.layers.{index}.")
    raise IndexError(f"{stack} layer {index}")


def embedding_tensors(spec: ModelSpec) -> list[ParamTensor]:
    """Token embeddings (shared by both stacks of an encoder-decoder), learned positions and
    T5 relative bias per stack, token types, embedding norms."""
    return shapes_tensors(embedding_shapes(spec))


def head_tensors(spec: ModelSpec) -> list[ParamTensor]:
    """Final norm per stack, an untied LM head ``(V, h)`` (+ bias), BERT's pooler."""
    return shapes_tensors(head_shapes(spec))


def parameter_tensors(spec: ModelSpec) -> list[ParamTensor]:
    """Every parameter tensor of the model, embeddings first, then each block, then the head.

    ``UsageError`` for a spec with a shape whose storage is not named
    (``unmodelled_features``)."""
    missing = unmodelled_features(spec)
    if missing:
        raise UsageError(
            f"tfcli train does not lay out the parameter tensors of {', '.join(missing)} yet "
            f"({spec.name}); tfcli params counts them"
        )
    out = embedding_tensors(spec)
    per_plan: dict[LayerPlan, list[ParamTensor]] = {}  # one layer's tensors, unprefixed
    for i, plan in expand(spec.layer_runs):
        tensors = per_plan.get(plan)
        if tensors is None:
            tensors = per_plan[plan] = shapes_tensors(layer_shapes(spec, plan))
        prefix = f"{plan.stack}.layers.{i}."
        out += [ParamTensor(prefix + t.name, t.shape) for t in tensors]
    out += head_tensors(spec)
    return out
