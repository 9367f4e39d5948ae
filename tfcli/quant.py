"""Weights as served: the bytes of a quantized checkpoint, from its ``quantization_config``.

A plain checkpoint stores ``params x dtype width`` bytes (``tfcli.memory.weight_bytes``). A
quantized one replaces (some of) its linear weights by packed low-bit values plus the scales,
zero points and indices the kernels need. This module reads the ``quantization_config`` of a
config.json (kept as data on ``tfcli.loaders.LoadedModel.quantization``) and counts, for each
linear module of the parameter layout (``tfcli.shapes``: the table the counts read), the
bytes of every tensor the format stores for it. Everything not quantized (embeddings, norms,
routers, biases, an untied LM head unless the format quantizes it, modules in a skip list)
stays in the checkpoint dtype (``spec.dtype``, from ``torch_dtype``).

Per linear module ``in -> out`` (weight ``out x in``), ``g`` the group size (``-1``: one group
of ``in``), ``n = in x out``. Sources are the module classes that allocate the tensors:

* GPTQ (AutoGPTQ / GPTQModel ``QuantLinear``, the ``gptq`` checkpoint format):
  ``qweight`` int32 ``[in // 32 x bits, out]``, ``qzeros`` int32 ``[ceil(in / g),
  out // 32 x bits]``, ``scales`` fp16 ``[ceil(in / g), out]``, ``g_idx`` int32 ``[in]``
  (stored whether or not ``desc_act``; ``sym`` changes values, not shapes).
* AWQ (AutoAWQ ``WQLinear_GEMM``, ``version: gemm``): ``qweight`` int32 ``[in, out // (32 /
  bits)]``, ``qzeros`` int32 ``[in // g, out // (32 / bits)]``, ``scales`` fp16 ``[in // g,
  out]``. Other layouts (GEMV) are not modelled.
* bitsandbytes 4-bit (``Params4bit`` / ``QuantState``, blocksize 64): packed uint8
  ``ceil(n / 2)`` (two nf4/fp4 values a byte), ``absmax`` fp32 per block of 64
  (``b = ceil(n / 64)``), the 16-entry fp32 code table of the quant type; with
  ``bnb_4bit_use_double_quant`` the absmax is itself quantized blockwise (256): ``b`` uint8
  + fp32 ``ceil(b / 256)`` + an fp32 offset (the nested 256-entry code table is one cached
  tensor shared by every layer and is not counted). 8-bit (``Int8Params``): int8 ``n`` and an
  fp32 ``SCB`` per output row. Routed experts are counted quantized, one module per expert
  projection, as vLLM's bitsandbytes MoE method and per-expert checkpoints hold them
  (transformers 5's ``replace_with_bnb_linear`` swaps only ``nn.Linear`` / ``Conv1D``, so
  its fused expert tensors would stay in the compute dtype).
* fp8 (transformers ``FineGrainedFP8Config`` / ``FP8Linear``, ``quant_method: fp8``): fp8
  ``n`` and fp32 ``weight_scale_inv`` ``[ceil(out / b0), ceil(in / b1)]`` for
  ``weight_block_size [b0, b1]`` (one fp32 scalar without blocks; 1-byte ue8m0 scales with
  ``scale_fmt: ue8m0``); ``activation_scheme: static`` adds an fp32 ``activation_scale``.
  Routed experts are counted per projection as the checkpoint stores them (gate and up
  separately, each with its own block grid).
* compressed-tensors (``initialize_qparams`` and the compressors): ``float-quantized`` fp8
  ``n``; ``int-quantized`` / ``naive-quantized`` int8 ``n``; ``pack-quantized`` int32
  ``[out, ceil(in / (32 / bits))]`` plus an int64 ``weight_shape [2]``. Scales: tensor
  ``[1]``, channel ``[out, 1]``, group ``[out, ceil(in / g)]``,
  block ``[ceil(out / b0), ceil(in / b1)]``; zero points of that shape when asymmetric (int8;
  pack-quantized packs group/channel zero points to int32 ``[ceil(out / (32 / bits)),
  groups]``); a static input activation adds an ``input_scale [1]`` (and zero point).
  Scales of the int formats are in the checkpoint dtype (``initialize_qparams``: the
  observed weight's dtype; vLLM's WNA16 kernels hold them so); fp8 scales are fp32 as served
  (transformers' ``CompressedTensorsFP8Linear`` and vLLM's ``CompressedTensorsW8A8Fp8``
  allocate fp32 scales, whatever dtype the checkpoint stores them in).
* mxfp4 (gpt-oss, transformers ``Mxfp4GptOssExperts``; the checkpoint's ``*_blocks`` /
  ``*_scales``): routed experts only, ``blocks`` uint8 ``[E, out, ceil(in / 32), 16]`` (two
  fp4 values a byte) and ``scales`` uint8 (e8m0) ``[E, out, ceil(in / 32)]``.

Which modules are quantized: the transformers quantizers' rules. GPTQ and AWQ quantize the
linears inside the decoder blocks (AWQ minus ``modules_to_not_convert``; GPTQ restricted to
``modules_in_block_to_quantize`` when given; the LM head only with GPTQ's ``lm_head: true``);
bitsandbytes and fp8 every linear minus the skip list (``llm_int8_skip_modules`` /
``modules_to_not_convert``; when the list is absent, transformers' default skips the LM head:
``quantizers/base.py: get_keys_to_not_convert``); compressed-tensors the ``targets`` of each
config group minus ``ignore`` (``re:`` regexes or names); mxfp4 the routed experts. Routers
stay unquantized for every method. Module names are tfcli's transformers-like names with
transformers' ``model.`` prefix (``model.layers.3.self_attn.q_proj``, ``lm_head``); skip
patterns match as transformers' ``should_convert_module`` does (prefix at a module boundary,
regex, or suffix).

Only the standard library is imported here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from tfcli.errors import SpecError
from tfcli.params import count_params
from tfcli.plan import LayerPlan
from tfcli.shapes import Shape, head_shapes, layer_shapes
from tfcli.spec import ModelSpec
from tfcli.units import bytes_for

__all__ = [
    "KNOWN_METHODS",
    "QuantLinear",
    "ServedWeights",
    "UnknownQuantization",
    "linear_modules",
    "served_weights",
]

KNOWN_METHODS = ("gptq", "awq", "bitsandbytes", "fp8", "compressed-tensors", "mxfp4")
"""``quant_method`` values tfcli counts; anything else falls back to the unquantized count."""

_LINEAR_LAYOUTS = ("linear", "linear_t", "stacked", "stacked_t")
_ROUTER = "moe.router"
_EXPERTS = "moe.routed_experts"
_CODE_4BIT_BYTES = 16 * 4
"""bitsandbytes' nf4/fp4 code table of one QuantState: 16 fp32 values."""


class UnknownQuantization(Exception):
    """A ``quantization_config`` whose method or layout tfcli does not model (a warning, then
    the unquantized count)."""


@dataclass(frozen=True)
class QuantLinear:
    """``count`` identical linear modules ``fan_in -> fan_out`` named ``name`` (the first of
    them), stored as ``parts`` projections fused by rows (experts' gate_up: 2)."""

    name: str
    component: str
    fan_in: int
    fan_out: int
    count: int
    parts: int = 1
    experts: bool = False


@dataclass(frozen=True)
class ServedWeights:
    """Bytes of the weights as a quantized checkpoint stores them.

    ``packed_bytes`` are the quantized weight values alone; ``overhead_bytes`` the scales, zero
    points, indices and tables stored beside them (``parts`` names each); ``rest_bytes`` every
    other parameter in ``rest_dtype``. ``total_bytes = packed + overhead + rest``.
    """

    method: str
    label: str
    quantized_params: int
    quantized_modules: int
    packed_bytes: int
    overhead_bytes: int
    rest_params: int
    rest_dtype: str
    rest_bytes: int
    parts: dict[str, int] = field(default_factory=dict)
    formulas: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    """Linear modules left unquantized by the config's rules (one name per kind)."""

    @property
    def total_bytes(self) -> int:
        return self.packed_bytes + self.overhead_bytes + self.rest_bytes

    @property
    def overhead_fraction(self) -> float:
        """Overhead as a share of the packed weights alone."""
        return self.overhead_bytes / self.packed_bytes if self.packed_bytes else 0.0


# ---- the linear modules of a spec -----------------------------------------------------------


def _module_prefix(plan: LayerPlan, index: int, spec: ModelSpec) -> str:
    """transformers' module path of a layer: ``model.layers.i.`` for a decoder-only model,
    ``model.encoder.layers.i.`` / ``model.decoder.layers.i.`` for the stacks of the others."""
    if spec.architecture == "decoder":
        return f"model.layers.{index}."
    return f"model.{plan.stack}.layers.{index}."


def _shape_modules(shapes: list[Shape], prefix: str, count: int) -> list[QuantLinear]:
    """The linear modules of ``shapes`` (shapes naming one module are fused into it by rows,
    as ``tfcli.tensors`` lays them out), ``count`` of each."""
    fused: dict[str, QuantLinear] = {}
    for shape in shapes:
        if shape.tied or shape.layout not in _LINEAR_LAYOUTS or not shape.names:
            continue
        if shape.layout in ("stacked", "stacked_t"):
            (name,) = shape.names
            parts = shape.copies // shape.stacked
            module = QuantLinear(
                prefix + name,
                shape.component,
                shape.fan_in,
                parts * shape.fan_out,
                count * shape.stacked,
                parts,
                experts=True,
            )
            fused[module.name] = module
            continue
        rows = shape.copies // len(shape.names) * shape.fan_out
        for name in shape.names:
            key = prefix + name
            held = fused.get(key)
            if held is None:
                fused[key] = QuantLinear(key, shape.component, shape.fan_in, rows, count)
            else:
                fused[key] = QuantLinear(
                    key, held.component, held.fan_in, held.fan_out + rows, count
                )
    return list(fused.values())


def _index_sensitive(patterns: tuple[str, ...]) -> bool:
    """True when a skip pattern can tell layers apart (it names or matches a digit)."""
    return any(re.search(r"\d|\\d|\[", p) for p in patterns)


def linear_modules(spec: ModelSpec, *, per_layer: bool = False) -> Iterator[QuantLinear]:
    """Every linear module of the model: each layer run's modules (``count`` = the run's
    layers, named after its first layer; one per layer with ``per_layer``), then the LM head
    (an untied one; a tied head shares the embeddings and holds no weight)."""
    for run in spec.layer_runs:
        shapes = layer_shapes(spec, run.plan)
        if per_layer:
            for i in range(run.start, run.stop):
                yield from _shape_modules(shapes, _module_prefix(run.plan, i, spec), 1)
        else:
            yield from _shape_modules(shapes, _module_prefix(run.plan, run.start, spec), run.count)
    yield from _shape_modules(head_shapes(spec), "", 1)


# ---- which modules a config quantizes --------------------------------------------------------

_BOUNDARY = r"(?:(?<=\.)|(?=\.|$))"


def _skipped_by(name: str, patterns: tuple[str, ...]) -> bool:
    """transformers' ``should_convert_module`` (quantizers/quantizers_utils.py), negated: a
    pattern matches from the start up to a module boundary, as a regex with that boundary, or
    as a suffix."""
    for pattern in patterns:
        if name.endswith(pattern):
            return True
        try:
            if re.match(rf"(?:{pattern}){_BOUNDARY}", name):
                return True
        except re.error:
            continue
    return False


def _ct_match(name: str, targets: tuple[str, ...]) -> int:
    """compressed-tensors' matching of a module against ``targets``: 2 for a module name
    (exact, or as its last components) or an ``re:`` regex (``re.match``), 1 for the class
    name ``Linear``, 0 for none. A name or regex outranks a class name (compressed-tensors
    resolves a module claimed by several groups so; transformers' ``get_experts_scheme``
    picks the group whose ``re:`` targets name the experts)."""
    level = 0
    for target in targets:
        if target.startswith("re:"):
            try:
                if re.match(target[3:], name):
                    return 2
            except re.error:
                continue
        elif name == target or name.endswith("." + target):
            return 2
        elif target == "Linear":
            level = 1
    return level


def _ct_matches(name: str, targets: tuple[str, ...]) -> bool:
    return _ct_match(name, targets) > 0


# ---- reading the config ------------------------------------------------------------------------


def _int(config: Mapping[str, Any], keys: tuple[str, ...], default: int | None, where: str) -> int:
    for key in keys:
        if key in config and config[key] is not None:
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int):
                raise SpecError(
                    f"{where}: quantization_config.{key} must be an integer, got {value!r}"
                )
            return value
    if default is None:
        raise SpecError(f"{where}: quantization_config has no {keys[0]}")
    return default


def _patterns(config: Mapping[str, Any], key: str, where: str) -> tuple[str, ...] | None:
    value = config.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: quantization_config.{key} must be a list of module names")
    return tuple(value)


def _check_bits(bits: int, allowed: tuple[int, ...], method: str, where: str) -> None:
    if bits not in allowed:
        raise SpecError(
            f"{where}: {method} bits must be one of {', '.join(map(str, allowed))}, got {bits}"
        )


def _group(group_size: int, fan_in: int) -> int:
    """The group size of one module: ``-1`` (or anything above ``in``) is one group."""
    return fan_in if group_size <= 0 else group_size


@dataclass
class _Tally:
    parts: dict[str, int] = field(default_factory=dict)
    packed: int = 0
    params: int = 0
    modules: int = 0
    skipped: dict[str, str] = field(default_factory=dict)

    def add(self, part: str, nbytes: int, *, packed: bool = False) -> None:
        self.parts[part] = self.parts.get(part, 0) + nbytes
        if packed:
            self.packed += nbytes


# ---- bytes of one module, per method ---------------------------------------------------------


def _gptq(t: _Tally, m: QuantLinear, bits: int, group_size: int) -> None:
    i, o, n = m.fan_in, m.fan_out, m.count
    groups = math.ceil(i / _group(group_size, i))
    t.add("qweight", n * (i // 32 * bits) * o * 4, packed=True)
    t.add("qzeros", n * groups * (o // 32 * bits) * 4)
    t.add("scales", n * groups * o * 2)
    t.add("g_idx", n * i * 4)


def _awq(t: _Tally, m: QuantLinear, bits: int, group_size: int) -> None:
    i, o, n = m.fan_in, m.fan_out, m.count
    groups = i // _group(group_size, i)
    pack = 32 // bits
    t.add("qweight", n * i * (o // pack) * 4, packed=True)
    t.add("qzeros", n * groups * (o // pack) * 4)
    t.add("scales", n * groups * o * 2)


def _bnb4(t: _Tally, m: QuantLinear, double: bool, blocksize: int = 64) -> None:
    numel = m.fan_in * m.fan_out
    blocks = math.ceil(numel / blocksize)
    t.add("weight (uint8, 2 values a byte)", m.count * ((numel + 1) // 2), packed=True)
    if double:
        t.add("absmax (uint8)", m.count * blocks)
        t.add("nested absmax (fp32 per 256)", m.count * math.ceil(blocks / 256) * 4)
        t.add("offset (fp32)", m.count * 4)
    else:
        t.add("absmax (fp32 per 64)", m.count * blocks * 4)
    t.add("code table (16 x fp32)", m.count * _CODE_4BIT_BYTES)


def _bnb8(t: _Tally, m: QuantLinear) -> None:
    t.add("weight (int8)", m.count * m.fan_in * m.fan_out, packed=True)
    t.add("SCB (fp32 per row)", m.count * m.fan_out * 4)


def _fp8(
    t: _Tally, m: QuantLinear, block: tuple[int, int] | None, scale: int, static: bool
) -> None:
    i, o, n = m.fan_in, m.fan_out, m.count
    t.add("weight (fp8)", n * i * o, packed=True)
    cells = math.ceil(o / block[0]) * math.ceil(i / block[1]) if block else 1
    t.add("weight_scale_inv", n * cells * scale)
    if static:
        t.add("activation_scale (fp32)", n * 4)


@dataclass(frozen=True)
class _CtGroup:
    """One compressed-tensors config group: targets, weight args, static input scale."""

    targets: tuple[str, ...]
    fmt: str
    bits: int
    kind: str
    strategy: str
    group_size: int | None
    block: tuple[int, int] | None
    symmetric: bool
    input_static: bool
    input_symmetric: bool


def _ct(t: _Tally, m: QuantLinear, g: _CtGroup, scale_dtype: str) -> None:
    i, o, n = m.fan_in, m.fan_out, m.count
    pack = 32 // g.bits
    if g.fmt == "pack-quantized":
        t.add("weight_packed (int32)", n * o * math.ceil(i / pack) * 4, packed=True)
        t.add("weight_shape (int64 [2])", n * 16)
    elif g.fmt == "float-quantized":
        t.add("weight (fp8)", n * o * i * g.bits // 8, packed=True)
    else:
        t.add("weight (int8)", n * o * i, packed=True)
    if g.strategy == "tensor":
        rows, cols = 1, 1
    elif g.strategy == "channel":
        rows, cols = o, 1
    elif g.strategy == "group":
        rows, cols = o, math.ceil(i / (g.group_size or i))
    else:  # block
        assert g.block is not None
        rows, cols = math.ceil(o / g.block[0]), math.ceil(i / g.block[1])
    t.add(f"weight_scale ({scale_dtype})", n * bytes_for(rows * cols, scale_dtype))
    if not g.symmetric:
        if g.fmt == "pack-quantized" and g.strategy in ("group", "channel"):
            zero = math.ceil(rows / pack) * cols * 4
        else:
            zero = rows * cols
        t.add("weight_zero_point", n * zero)
    if g.input_static:
        t.add(f"input_scale ({scale_dtype})", n * bytes_for(1, scale_dtype))
        if not g.input_symmetric:
            t.add("input_zero_point", n)


def _ct_groups(config: Mapping[str, Any], where: str) -> list[_CtGroup]:
    groups = config.get("config_groups")
    if not isinstance(groups, Mapping) or not groups:
        raise SpecError(f"{where}: compressed-tensors quantization_config has no config_groups")
    top_format = config.get("format")
    out = []
    for name, group in groups.items():
        if not isinstance(group, Mapping):
            raise SpecError(f"{where}: quantization_config.config_groups.{name} must be a mapping")
        weights = group.get("weights")
        if not isinstance(weights, Mapping):
            raise UnknownQuantization(f"config group {name} quantizes no weights")
        fmt = group.get("format") or top_format or "dense"
        kind = weights.get("type", "int")
        if fmt not in ("float-quantized", "int-quantized", "naive-quantized", "pack-quantized"):
            raise UnknownQuantization(f"compressed-tensors format {fmt!r}")
        bits = _int(weights, ("num_bits",), 8, where)
        _check_bits(bits, (2, 4, 8) if fmt == "pack-quantized" else (8,), f"{fmt}", where)
        strategy = weights.get("strategy", "tensor")
        if strategy not in ("tensor", "channel", "group", "block"):
            raise UnknownQuantization(f"compressed-tensors weight strategy {strategy!r}")
        group_size = weights.get("group_size")
        block_value = weights.get("block_structure")
        block = None
        if strategy == "block":
            if not (
                isinstance(block_value, list)
                and len(block_value) == 2
                and all(isinstance(b, int) and b > 0 for b in block_value)
            ):
                raise SpecError(f"{where}: block strategy needs block_structure [rows, cols]")
            block = (block_value[0], block_value[1])
        if strategy == "group" and not (isinstance(group_size, int) and group_size > 0):
            raise SpecError(f"{where}: group strategy needs a positive group_size")
        inputs = group.get("input_activations")
        static = isinstance(inputs, Mapping) and inputs.get("dynamic") is False
        targets = group.get("targets") or ["Linear"]
        if not isinstance(targets, list) or not all(isinstance(x, str) for x in targets):
            raise SpecError(f"{where}: config_groups.{name}.targets must be a list of names")
        out.append(
            _CtGroup(
                tuple(targets),
                fmt,
                bits,
                str(kind),
                str(strategy),
                group_size if isinstance(group_size, int) else None,
                block,
                bool(weights.get("symmetric", True)),
                static,
                bool(inputs.get("symmetric", True)) if isinstance(inputs, Mapping) else True,
            )
        )
    return out


# ---- the whole model ------------------------------------------------------------------------


def _block_size(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return (value[0], value[1])
    raise SpecError(f"{where}: quantization_config.weight_block_size must be [rows, cols]")


def served_weights(
    spec: ModelSpec, config: Mapping[str, Any], *, where: str = "config.json"
) -> ServedWeights:
    """The weights of ``spec`` as the checkpoint described by ``config`` (its
    ``quantization_config``) stores them. ``UnknownQuantization`` for a method or layout not
    modelled; ``SpecError`` for a config that is malformed."""
    if not isinstance(config, Mapping):
        raise SpecError(f"{where}: quantization_config must be a JSON object")
    method = str(config.get("quant_method", "")).lower()
    if method not in KNOWN_METHODS:
        raise UnknownQuantization(f"quant_method {method or '(none)'!r}")
    tally = _Tally()
    patterns: tuple[str, ...] = ()
    include_head = False
    formulas: list[str] = []
    label = method

    def wanted(m: QuantLinear) -> bool:  # overridden per method below
        return True

    if method == "gptq":
        bits = _int(config, ("bits",), None, where)
        _check_bits(bits, (2, 3, 4, 8), "gptq", where)
        group_size = _int(config, ("group_size",), 128, where)
        fmt = str(config.get("checkpoint_format") or config.get("format") or "gptq").lower()
        if fmt not in ("gptq", "gptq_v2"):
            raise UnknownQuantization(f"gptq checkpoint format {fmt!r}")
        include_head = bool(config.get("lm_head", False))
        blocks = config.get("modules_in_block_to_quantize")
        in_block: tuple[str, ...] | None = None
        if blocks is not None:
            if not isinstance(blocks, list) or not all(isinstance(b, list) for b in blocks):
                raise SpecError(f"{where}: modules_in_block_to_quantize must be a list of lists")
            in_block = tuple(str(name) for block in blocks for name in block)
        gs = "one group per column" if group_size <= 0 else f"group {group_size}"
        label = f"GPTQ {bits}-bit, {gs}" + (", desc_act" if config.get("desc_act") else "")
        formulas = [
            f"qweight int32 [in/32 x {bits}, out] + qzeros int32 [ceil(in/g), out/32 x {bits}] "
            f"+ scales fp16 [ceil(in/g), out] + g_idx int32 [in], g = "
            + ("in" if group_size <= 0 else str(group_size)),
        ]

        def add(tally: _Tally, m: QuantLinear) -> None:
            _gptq(tally, _split(m), bits, group_size)

        def wanted(m: QuantLinear) -> bool:
            if in_block is None or m.name == "lm_head":
                return True
            relative = m.name.split(".", 3)[-1]
            return any(relative == b or relative.startswith(b + ".") for b in in_block)

    elif method == "awq":
        bits = _int(config, ("bits", "w_bit"), None, where)
        _check_bits(bits, (4,), "awq", where)
        group_size = _int(config, ("group_size", "q_group_size"), 128, where)
        version = str(config.get("version", "gemm")).lower()
        if version not in ("gemm", "exllama", "ipex"):
            raise UnknownQuantization(f"awq version {version!r} (only the GEMM layout)")
        patterns = _patterns(config, "modules_to_not_convert", where) or ()
        label = f"AWQ {bits}-bit, group {group_size} ({version})"
        formulas = [
            f"qweight int32 [in, out/{32 // bits}] + qzeros int32 [in/g, out/{32 // bits}] "
            f"+ scales fp16 [in/g, out], g = {group_size}"
        ]

        def add(tally: _Tally, m: QuantLinear) -> None:
            _awq(tally, _split(m), bits, group_size)

    elif method == "bitsandbytes":
        four = bool(config.get("load_in_4bit"))
        eight = bool(config.get("load_in_8bit"))
        if four == eight:
            raise SpecError(
                f"{where}: bitsandbytes needs exactly one of load_in_4bit, load_in_8bit"
            )
        skips = _patterns(config, "llm_int8_skip_modules", where)
        include_head = skips is not None
        patterns = skips or ()
        if four:
            double = bool(config.get("bnb_4bit_use_double_quant"))
            quant_type = str(config.get("bnb_4bit_quant_type", "fp4"))
            if quant_type not in ("nf4", "fp4"):
                raise SpecError(f"{where}: bnb_4bit_quant_type must be nf4 or fp4")
            label = f"bitsandbytes 4-bit {quant_type}, blocksize 64" + (
                ", double quant" if double else ""
            )
            formulas = [
                "ceil(n/2) uint8 + "
                + (
                    "ceil(n/64) uint8 absmax + 4 x ceil(ceil(n/64)/256) + 4 (offset)"
                    if double
                    else "4 x ceil(n/64) (fp32 absmax)"
                )
                + " + 64 (16 fp32 code values), n = in x out"
            ]

            def add(tally: _Tally, m: QuantLinear) -> None:
                _bnb4(tally, _split(m), double)

        else:
            label = "bitsandbytes 8-bit (LLM.int8)"
            formulas = ["n int8 + 4 x out (fp32 SCB), n = in x out"]

            def add(tally: _Tally, m: QuantLinear) -> None:
                _bnb8(tally, _split(m))

    elif method == "fp8":
        block = _block_size(config.get("weight_block_size"), where)
        scale = 1 if config.get("scale_fmt") == "ue8m0" else 4
        static = config.get("activation_scheme", "dynamic") == "static"
        skips = _patterns(config, "modules_to_not_convert", where)
        include_head = skips is not None
        patterns = skips or ()
        label = "fp8 " + (f"blocks {block[0]}x{block[1]}" if block else "per tensor")
        formulas = [
            "n fp8 + "
            + (
                f"{scale} x ceil(out/{block[0]}) x ceil(in/{block[1]}) (weight_scale_inv)"
                if block
                else f"{scale} (one weight_scale_inv)"
            )
            + (" + 4 (activation_scale)" if static else "")
            + ", n = in x out"
        ]

        def add(tally: _Tally, m: QuantLinear) -> None:
            _fp8(tally, _split(m), block, scale, static)

    elif method == "compressed-tensors":
        groups = _ct_groups(config, where)
        ignore = _patterns(config, "ignore", where) or ()
        include_head = True
        label = "compressed-tensors " + ", ".join(
            f"{g.fmt} {g.kind}{g.bits} per {g.strategy}"
            + (f" {g.group_size}" if g.strategy == "group" else "")
            + ("" if g.symmetric else " asymmetric")
            for g in groups
        )
        formulas = [
            "weight: fp8/int8 n bytes, or pack-quantized int32 [out, ceil(in/(32/bits))] + "
            "int64 [2]; scale (checkpoint dtype) [1] per tensor, [out, 1] per channel, "
            "[out, ceil(in/g)] per group, [ceil(out/b0), ceil(in/b1)] per block; zero points "
            "when asymmetric; input_scale [1] for static activations"
        ]

        def group_of(m: QuantLinear) -> _CtGroup | None:
            if any(_ct_matches(name, ignore) for name in _match_names(m)):
                return None
            best, level = None, 0
            for g in groups:
                found = max(_ct_match(name, g.targets) for name in _match_names(m))
                if found > level:
                    best, level = g, found
            return best

        def wanted(m: QuantLinear) -> bool:
            return group_of(m) is not None

        def add(tally: _Tally, m: QuantLinear) -> None:
            g = group_of(m)
            assert g is not None
            _ct(tally, _split(m), g, "fp32" if g.fmt == "float-quantized" else spec.dtype)

    else:  # mxfp4
        patterns = _patterns(config, "modules_to_not_convert", where) or ()
        label = "mxfp4 (routed experts: e2m1 values, e8m0 scale per 32)"
        formulas = ["blocks uint8 E x out x ceil(in/32) x 16 + scales uint8 E x out x ceil(in/32)"]

        def wanted(m: QuantLinear) -> bool:
            return m.component == _EXPERTS

        def add(tally: _Tally, m: QuantLinear) -> None:
            groups = math.ceil(m.fan_in / 32)
            tally.add(
                "blocks (uint8, 2 values a byte)", m.count * m.fan_out * groups * 16, packed=True
            )
            tally.add("scales (uint8 e8m0 per 32)", m.count * m.fan_out * groups)

    per_layer = _index_sensitive(patterns) or (
        method == "compressed-tensors" and _index_sensitive(_ct_all_targets(config))
    )
    example: QuantLinear | None = None
    for module in linear_modules(spec, per_layer=per_layer):
        head = module.name == "lm_head"
        why = None
        if module.component == _ROUTER:
            why = "router"
        elif head and not include_head:
            why = "LM head"
        elif any(_skipped_by(name, patterns) for name in _match_names(module)):
            why = "skip list"
        elif not wanted(module):
            why = "not targeted"
        if why is not None:
            tally.skipped.setdefault(_kind(module.name), why)
            continue
        add(tally, module)
        if example is None or module.fan_in * module.fan_out > example.fan_in * example.fan_out:
            example = module
        tally.params += module.count * module.fan_in * module.fan_out
        tally.modules += module.count * (1 if method == "mxfp4" else module.parts)
    if example is not None:
        one = _Tally()
        single = QuantLinear(
            example.name, example.component, example.fan_in, example.fan_out, 1, example.parts
        )
        add(one, single)
        pieces = 1 if method == "mxfp4" else example.parts
        each = " + ".join(f"{part} {nbytes // pieces:,}" for part, nbytes in one.parts.items())
        formulas.append(
            f"e.g. {_kind(example.name)} ({example.fan_in:,} -> {example.fan_out // pieces:,}): "
            f"{each} = {sum(one.parts.values()) // pieces:,} B"
            + (f" per projection ({pieces} fused)" if pieces > 1 else "")
            + (", per expert" if example.experts else "")
        )
    total = count_params(spec).total
    rest = total - tally.params
    overhead = sum(tally.parts.values()) - tally.packed
    return ServedWeights(
        method=method,
        label=label,
        quantized_params=tally.params,
        quantized_modules=tally.modules,
        packed_bytes=tally.packed,
        overhead_bytes=overhead,
        rest_params=rest,
        rest_dtype=spec.dtype,
        rest_bytes=bytes_for(rest, spec.dtype),
        parts=dict(tally.parts),
        formulas=tuple(formulas),
        skipped=tuple(f"{name} ({why})" for name, why in sorted(tally.skipped.items())),
    )


def _ct_all_targets(config: Mapping[str, Any]) -> tuple[str, ...]:
    ignore = config.get("ignore") or []
    targets = [
        t
        for g in (config.get("config_groups") or {}).values()
        if isinstance(g, Mapping)
        for t in (g.get("targets") or [])
    ]
    return tuple(str(t) for t in [*ignore, *targets] if isinstance(t, str))


def _split(m: QuantLinear) -> QuantLinear:
    """Fused experts as the checkpoint stores them: each projection its own module."""
    if m.parts == 1:
        return m
    return QuantLinear(
        m.name, m.component, m.fan_in, m.fan_out // m.parts, m.count * m.parts, 1, m.experts
    )


def _match_names(m: QuantLinear) -> tuple[str, ...]:
    """The names a skip or target pattern is matched against: the module's, and for fused
    experts also the checkpoint's per-expert projections (``mlp.experts.0.gate_proj`` and
    ``up_proj`` for ``mlp.experts.gate_up_proj``)."""
    if not m.experts:
        return (m.name,)
    base, _, proj = m.name.rpartition(".")
    projections = ("gate_proj", "up_proj") if proj == "gate_up_proj" else (proj,)
    return (m.name, *(f"{base}.0.{p}" for p in projections))


def _kind(name: str) -> str:
    """A module name with its layer index generalised (``model.layers.*.mlp.gate``)."""
    return re.sub(r"\.layers\.\d+\.", ".layers.*.", name)
