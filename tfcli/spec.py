"""ModelSpec: the one home of every architecture feature tfcli knows about.

A spec is a frozen, keyword-only dataclass. Formulas (params, flops, memory, the bench model)
read only a spec, never a config dict or a Hugging Face key name: translating configs lives in
``tfcli.loaders``. Optional inputs stay ``None`` and derived values are properties, so a spec
round-trips through YAML (``to_dict`` / ``from_dict``) unchanged.

Conventions for the fields (see DESIGN.md section 3):

* ``num_layers`` is the depth of the main stack: the decoder of a decoder-only or
  encoder-decoder model, the encoder of an encoder-only model. ``num_encoder_layers`` is the
  encoder depth of an encoder-decoder model. Both stacks of an encoder-decoder share widths.
* ``intermediate_size`` is the width of a dense MLP; ``moe_intermediate_size`` is the width of
  one routed expert (for Mixtral both are the same number).
* ``layer_types`` lists ``"full"`` or ``"sliding"`` per layer of the main stack; when absent,
  every layer is sliding if ``sliding_window`` is set, else full.
* MoE layers: layer ``i`` has routed experts when ``i >= first_dense_layers`` and
  ``(i + 1) % moe_layer_step == 0`` (Qwen-MoE's ``decoder_sparse_step``; DeepSeek's
  ``first_k_dense_replace``), unless ``mlp_layer_types`` lists ``"dense"``/``"moe"`` explicitly.

Only the standard library is imported here (DESIGN.md import rule).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from typing import Any

from tfcli.errors import SpecError, did_you_mean, shorten
from tfcli.units import DTYPE_BITS

ARCHITECTURES = ("decoder", "encoder", "encoder-decoder")
ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu")
NORM_TYPES = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post", "sandwich")
POSITION_TYPES = ("learned", "sinusoidal", "rope", "alibi", "relative", "none")
LAYER_KINDS = ("full", "sliding")
MLP_LAYER_KINDS = ("dense", "moe")
ROUTER_SCORINGS = ("softmax", "sigmoid")

# Caps at values no real model reaches (DESIGN.md section 7): they keep every figure a finite
# float and every loop short. Layers stop at a million so `--set num_layers=1000000` answers.
MAX_LAYERS = 1_000_000
MAX_WIDTH = 2**20
"""hidden, intermediate, head and latent widths: 1,048,576 (real models stay below 65,536)."""
MAX_VOCAB = 2**24
"""Vocabulary rows: 16,777,216 (real vocabularies stay below 1M)."""
MAX_COUNT = 2**20
"""Heads, experts, expert groups, relative-position buckets, extra position rows."""
MAX_POSITIONS = 2**40
"""Trained context and relative-position distances: about 1.1e12 tokens."""
MAX_TEXT = 4096
"""Characters of a name, family or source."""
MAX_MAPPING_NODES = 100_000
"""Values inside a mapping field such as rope_scaling (longrope factor lists included)."""
MAX_MAPPING_DEPTH = 8


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Every hyperparameter that decides a transformer's parameters, FLOPs and KV cache."""

    # identity
    name: str
    family: str
    architecture: str = "decoder"
    source: str | None = None
    dtype: str = "bf16"
    """The dtype the published weights ship in (a default for memory figures)."""

    # sizes
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_encoder_layers: int | None = None
    num_heads: int
    num_kv_heads: int | None = None
    """None means multi-head attention (as many KV heads as query heads)."""
    head_dim: int | None = None
    """None means hidden_size // num_heads; set it when they differ (Gemma, Qwen3, T5)."""
    intermediate_size: int
    max_position_embeddings: int | None = None

    # attention
    attention_qkv_bias: bool = False
    attention_out_bias: bool = False
    qk_norm: bool = False
    """A norm over each head's query and key (Qwen3, Gemma-3): head_dim weights each."""
    attention_scale: float | None = None
    """Softmax scale; None means 1/sqrt(head_dim). T5 uses 1.0, Gemma-2 query_pre_attn_scalar."""
    attn_logit_softcap: float | None = None
    sliding_window: int | None = None
    layer_types: tuple[str, ...] | None = None

    # multi-head latent attention (DeepSeek-V2/V3); MLA is on when kv_lora_rank is set
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None

    # MLP
    activation: str = "gelu"
    mlp_gated: bool = False
    """Gated MLP (SwiGLU/GeGLU): gate, up and down matrices instead of up and down."""
    mlp_bias: bool = False

    # mixture of experts
    num_experts: int | None = None
    num_experts_per_token: int | None = None
    moe_intermediate_size: int | None = None
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int | None = None
    """Total width of the always-on shared expert MLP; None means
    num_shared_experts * moe_intermediate_size (DeepSeek)."""
    shared_expert_gate: bool = False
    """A sigmoid gate (hidden -> 1) on the shared expert output (Qwen2-MoE)."""
    first_dense_layers: int = 0
    moe_layer_step: int = 1
    mlp_layer_types: tuple[str, ...] | None = None
    router_bias: bool = False
    router_scoring: str = "softmax"
    norm_topk_prob: bool = True
    routed_scaling_factor: float = 1.0
    num_expert_groups: int = 1
    topk_groups: int = 1

    # norms and residuals
    norm_type: str = "layernorm"
    norm_bias: bool = True
    """LayerNorm with a bias vector; ignored for RMSNorm (which has none)."""
    norm_eps: float = 1e-5
    norm_position: str = "pre"
    """pre-LN (GPT-2, Llama), post-LN (BERT, BART) or sandwich (pre and post, Gemma-2/3)."""
    final_norm: bool = True
    embedding_norm: bool = False
    """A norm right after the embeddings (BERT, BLOOM, BART)."""
    parallel_residual: bool = False
    """x + attn(ln(x)) + mlp(ln(x)) in one step (GPT-J, GPT-NeoX, Falcon)."""
    parallel_norms: int = 1
    """With a parallel residual: 1 norm shared by both branches (GPT-J, Falcon-7B) or 2."""

    # positions
    position_type: str = "rope"
    rope_theta: float = 10000.0
    rope_local_theta: float | None = None
    """RoPE base of sliding layers when it differs (Gemma-3 rope_local_base_freq)."""
    rope_scaling: dict[str, Any] | None = None
    rotary_dim: int | None = None
    """Rotated dimensions per head when only part of the head is rotated (GPT-J, GPT-NeoX)."""
    rope_interleaved: bool = False
    """Rotate adjacent pairs (GPT-J) instead of the two halves (Llama, GPT-NeoX)."""
    position_offset: int = 0
    """Extra rows in a learned position table (OPT and BART reserve 2)."""
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128

    # embeddings and heads
    tie_word_embeddings: bool = True
    scale_embeddings: bool = False
    """Token embeddings multiplied by sqrt(hidden_size) (Gemma, BART with scale_embedding)."""
    type_vocab_size: int = 0
    """Token-type (segment) embedding rows (BERT: 2, RoBERTa: 1)."""
    pooler: bool = False
    lm_head: bool = True
    """A vocabulary projection on top (False for encoder-only models counted as AutoModel)."""
    lm_head_bias: bool = False
    final_logit_softcap: float | None = None

    def __post_init__(self) -> None:
        validate(self)

    # ---- derived values -------------------------------------------------------------------

    @property
    def kv_heads(self) -> int:
        """Number of key/value heads (num_heads when num_kv_heads is unset)."""
        return self.num_heads if self.num_kv_heads is None else self.num_kv_heads

    @property
    def resolved_head_dim(self) -> int:
        """Per-head width of queries and keys (and values, outside MLA)."""
        if self.head_dim is not None:
            return self.head_dim
        return self.hidden_size // self.num_heads

    @property
    def is_mla(self) -> bool:
        """Multi-head latent attention (DeepSeek-V2/V3)."""
        return self.kv_lora_rank is not None

    @property
    def is_moe(self) -> bool:
        """Mixture of experts: some layers route each token to top-k of num_experts MLPs."""
        return bool(self.num_experts)

    @property
    def is_causal(self) -> bool:
        """Decoder stacks attend causally; an encoder-only model attends bidirectionally."""
        return self.architecture != "encoder"

    @property
    def has_encoder(self) -> bool:
        return self.architecture in ("encoder", "encoder-decoder")

    @property
    def attention_kind(self) -> str:
        """MHA, GQA, MQA or MLA, as the KV cache sees it."""
        if self.is_mla:
            return "MLA"
        if self.kv_heads == self.num_heads:
            return "MHA"
        if self.kv_heads == 1:
            return "MQA"
        return "GQA"

    @property
    def layer_kinds(self) -> tuple[str, ...]:
        """``"full"`` or ``"sliding"`` for each layer of the main stack."""
        if self.layer_types is not None:
            return self.layer_types
        kind = "sliding" if self.sliding_window is not None else "full"
        return (kind,) * self.num_layers

    @property
    def moe_layer_flags(self) -> tuple[bool, ...]:
        """True for each layer of the main stack whose MLP is a routed mixture of experts."""
        if not self.is_moe:
            return (False,) * self.num_layers
        if self.mlp_layer_types is not None:
            return tuple(kind == "moe" for kind in self.mlp_layer_types)
        return tuple(
            i >= self.first_dense_layers and (i + 1) % self.moe_layer_step == 0
            for i in range(self.num_layers)
        )

    @property
    def num_moe_layers(self) -> int:
        return sum(self.moe_layer_flags)

    @property
    def expert_width(self) -> int:
        """Width of one routed expert MLP."""
        if self.moe_intermediate_size is not None:
            return self.moe_intermediate_size
        return self.intermediate_size

    @property
    def shared_expert_width(self) -> int:
        """Total width of the shared-expert MLP of a MoE layer (0 when there is none)."""
        if self.shared_expert_intermediate_size is not None:
            return self.shared_expert_intermediate_size
        return self.num_shared_experts * self.expert_width

    @property
    def qk_head_dim(self) -> int:
        """Query/key width per head: nope + rope parts under MLA, else head_dim."""
        if self.is_mla:
            return int(self.qk_nope_head_dim or 0) + int(self.qk_rope_head_dim or 0)
        return self.resolved_head_dim

    @property
    def value_head_dim(self) -> int:
        """Value width per head (v_head_dim under MLA, else head_dim)."""
        if self.is_mla and self.v_head_dim is not None:
            return self.v_head_dim
        return self.resolved_head_dim

    @property
    def total_layers(self) -> int:
        """Encoder plus decoder layers."""
        return self.num_layers + (self.num_encoder_layers or 0)

    # ---- (de)serialisation -----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (tuples as lists), ready for YAML or JSON."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def truncated(self, layers: int) -> ModelSpec:
        """The same model keeping the first ``layers`` layers of each stack (per-layer kinds
        and dense/MoE pattern preserved): what the bench builds at full width."""
        depth = min(layers, self.num_layers)
        changes: dict[str, Any] = {"num_layers": depth}
        if self.layer_types is not None:
            changes["layer_types"] = self.layer_types[:depth]
        if self.is_moe:
            flags = self.moe_layer_flags[:depth]
            changes["mlp_layer_types"] = tuple("moe" if f else "dense" for f in flags)
        if self.num_encoder_layers is not None:
            changes["num_encoder_layers"] = min(layers, self.num_encoder_layers)
        return self.replace(**changes)

    def replace(self, **changes: Any) -> ModelSpec:
        """A copy with some fields changed, validated again."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, origin: str = "<dict>") -> ModelSpec:
        """Build a spec from a dict, rejecting unknown keys and ill-typed values.

        ``origin`` names the file (or other source) in every error message.
        """
        if not isinstance(data, dict):
            raise SpecError(f"{origin}: a model spec must be a mapping, got {type(data).__name__}")
        known = field_names()
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                hint = did_you_mean(str(key), known)
                raise SpecError(
                    f"{origin}: unknown key {shorten(key)}" + (f" ({hint})" if hint else ""),
                    hint="`tfcli show llama-3-8b` lists every key of a spec",
                )
            kwargs[key] = coerce_field(key, value, origin=origin)
        missing = [
            f.name for f in dataclasses.fields(cls) if _is_required(f) and f.name not in kwargs
        ]
        if missing:
            raise SpecError(f"{origin}: missing required key(s): {', '.join(missing)}")
        try:
            return cls(**kwargs)
        except SpecError as err:
            raise SpecError(f"{origin}: {err.message}", hint=err.hint) from None


def _is_required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def field_names() -> list[str]:
    """Names of every ModelSpec field, in declaration order."""
    return [f.name for f in dataclasses.fields(ModelSpec)]


_TYPE_HINTS: dict[str, Any] | None = None


def _field_type(name: str) -> Any:
    global _TYPE_HINTS
    if _TYPE_HINTS is None:
        _TYPE_HINTS = typing.get_type_hints(ModelSpec)
    return _TYPE_HINTS[name]


def _accepts(tp: Any, value: Any) -> tuple[bool, Any]:
    """(ok, converted value) for ``value`` against annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, converted = _accepts(arg, value)
            if ok:
                return True, converted
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        return isinstance(value, bool), value
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return True, float(value)
            except OverflowError:  # an int beyond 1.8e308
                return True, math.inf
        return False, value
    if tp is str:
        return isinstance(value, str), value
    if origin is tuple:
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return True, tuple(value)
        return False, value
    if origin is dict:
        return isinstance(value, dict), value
    return True, value


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        return "list of strings"
    if origin is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def coerce_field(name: str, value: Any, *, origin: str = "<dict>") -> Any:
    """Check ``value`` against the type of field ``name``; return it converted (list->tuple)."""
    if name not in field_names():
        hint = did_you_mean(name, field_names())
        raise SpecError(f"{origin}: unknown key {shorten(name)}" + (f" ({hint})" if hint else ""))
    tp = _field_type(name)
    ok, converted = _accepts(tp, value)
    if not ok:
        raise SpecError(
            f"{origin}: {name} must be {_type_name(tp)}, "
            f"got {shorten(value)} ({type(value).__name__})"
        )
    if isinstance(converted, float) and not math.isfinite(converted):
        raise SpecError(f"{origin}: {name} must be a finite number, got {shorten(value)}")
    return converted


# ---- validation -----------------------------------------------------------------------------

_INT_RANGES: dict[str, tuple[int, int]] = {
    # required sizes
    "vocab_size": (1, MAX_VOCAB),
    "hidden_size": (1, MAX_WIDTH),
    "num_layers": (1, MAX_LAYERS),
    "num_heads": (1, MAX_COUNT),
    "intermediate_size": (1, MAX_WIDTH),
    # optional sizes (null allowed)
    "num_encoder_layers": (1, MAX_LAYERS),
    "num_kv_heads": (1, MAX_COUNT),
    "head_dim": (1, MAX_WIDTH),
    "max_position_embeddings": (1, MAX_POSITIONS),
    "sliding_window": (1, MAX_POSITIONS),
    "q_lora_rank": (1, MAX_WIDTH),
    "kv_lora_rank": (1, MAX_WIDTH),
    "qk_nope_head_dim": (1, MAX_WIDTH),
    "qk_rope_head_dim": (1, MAX_WIDTH),
    "v_head_dim": (1, MAX_WIDTH),
    "num_experts": (1, MAX_COUNT),
    "num_experts_per_token": (1, MAX_COUNT),
    "moe_intermediate_size": (1, MAX_WIDTH),
    "shared_expert_intermediate_size": (1, MAX_WIDTH),
    "rotary_dim": (1, MAX_WIDTH),
    # counts with a default
    "num_shared_experts": (0, MAX_COUNT),
    "first_dense_layers": (0, MAX_LAYERS),
    "moe_layer_step": (1, MAX_LAYERS),
    "num_expert_groups": (1, MAX_COUNT),
    "topk_groups": (1, MAX_COUNT),
    "type_vocab_size": (0, MAX_VOCAB),
    "position_offset": (0, MAX_COUNT),
    "relative_attention_num_buckets": (1, MAX_COUNT),
    "relative_attention_max_distance": (1, MAX_POSITIONS),
    "parallel_norms": (1, 2),
}
"""Inclusive (minimum, maximum) of every integer field; None passes where the type allows it."""
_POSITIVE_FLOATS = (
    "norm_eps",
    "rope_theta",
    "rope_local_theta",
    "attention_scale",
    "attn_logit_softcap",
    "final_logit_softcap",
    "routed_scaling_factor",
)
"""Float fields that must be finite and > 0 when set (finiteness is checked for every float)."""
_TEXT_FIELDS = ("name", "family", "source")
_CHOICES = {
    "architecture": ARCHITECTURES,
    "activation": ACTIVATIONS,
    "norm_type": NORM_TYPES,
    "norm_position": NORM_POSITIONS,
    "position_type": POSITION_TYPES,
    "router_scoring": ROUTER_SCORINGS,
}


def _fail(message: str) -> None:
    raise SpecError(message)


def _check_ranges(spec: ModelSpec) -> None:
    """Integer fields within their ``_INT_RANGES``, floats finite (and positive where it
    matters), text fields short, ``dtype`` a known dtype, mapping fields plain and small."""
    for name, (low, high) in _INT_RANGES.items():
        value = getattr(spec, name)
        if value is not None and not low <= value <= high:
            kind = "a positive integer" if low == 1 else f"an integer >= {low}"
            _fail(f"{name} must be {kind} of at most {high:,}, got {shorten(value)}")
    for name in _POSITIVE_FLOATS:
        value = getattr(spec, name)
        if value is not None and not value > 0:
            _fail(f"{name} must be a positive number, got {value}")
    for name in _TEXT_FIELDS:
        value = getattr(spec, name)
        if value is not None and len(value) > MAX_TEXT:
            _fail(f"{name} is {len(value):,} characters long; at most {MAX_TEXT:,} are allowed")
    if spec.dtype not in DTYPE_BITS:
        hint = did_you_mean(spec.dtype, list(DTYPE_BITS))
        _fail(
            f"dtype must be one of {', '.join(DTYPE_BITS)}, got {shorten(spec.dtype)}"
            + (f" ({hint})" if hint else "")
        )
    if spec.rope_scaling is not None:
        _check_plain_mapping("rope_scaling", spec.rope_scaling)


def _check_plain_mapping(name: str, mapping: dict[str, Any]) -> None:
    """A mapping field holds only strings, finite numbers, booleans, null, lists and mappings
    with string keys, at most MAX_MAPPING_DEPTH deep and MAX_MAPPING_NODES values in all."""
    budget = MAX_MAPPING_NODES
    stack: list[tuple[Any, int, str]] = [(mapping, 0, name)]
    seen: set[int] = set()
    while stack:
        value, depth, where = stack.pop()
        budget -= 1
        if budget < 0:
            _fail(f"{name} holds more than {MAX_MAPPING_NODES:,} values")
        if depth > MAX_MAPPING_DEPTH:
            _fail(f"{name} is nested more than {MAX_MAPPING_DEPTH} levels deep")
        if isinstance(value, (dict, list, tuple)):
            if id(value) in seen:
                _fail(f"{where} refers back to itself or repeats a shared value")
            seen.add(id(value))
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    _fail(f"{where} keys must be strings, got {shorten(key)}")
                stack.append((item, depth + 1, f"{where}.{key}"))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, depth + 1, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            _fail(f"{where} must be a finite number, got {value}")
        elif isinstance(value, str) and len(value) > MAX_TEXT:
            _fail(f"{where} is {len(value):,} characters long; at most {MAX_TEXT:,} are allowed")
        elif not isinstance(value, (str, int, float, bool)) and value is not None:
            _fail(f"{where} must be a string, number, boolean or null, got {type(value).__name__}")


def validate(spec: ModelSpec) -> None:
    """Reject a spec that breaks an invariant, naming the field, the value and why.

    Runs on construction, before any arithmetic. Types are checked too, so a spec built in
    Python with a wrong type fails the same way as a YAML file would.
    """
    for f in dataclasses.fields(spec):
        coerce_field(f.name, getattr(spec, f.name), origin=f"spec {shorten(spec.name)}")
    _check_ranges(spec)
    for name, choices in _CHOICES.items():
        value = getattr(spec, name)
        if value not in choices:
            hint = did_you_mean(value, choices)
            _fail(
                f"{name} must be one of {', '.join(choices)}, got {shorten(value)}"
                + (f" ({hint})" if hint else "")
            )
    if spec.head_dim is None and not spec.is_mla and spec.hidden_size % spec.num_heads:
        _fail(
            f"num_heads={spec.num_heads} does not divide hidden_size={spec.hidden_size}; "
            "set head_dim explicitly if the model uses a different head width"
        )
    if spec.num_heads % spec.kv_heads:
        _fail(f"num_kv_heads={spec.kv_heads} does not divide num_heads={spec.num_heads}")
    if spec.kv_heads > spec.num_heads:
        _fail(f"num_kv_heads={spec.kv_heads} exceeds num_heads={spec.num_heads}")
    if spec.architecture == "encoder-decoder" and spec.num_encoder_layers is None:
        _fail("an encoder-decoder spec needs num_encoder_layers")
    if spec.architecture != "encoder-decoder" and spec.num_encoder_layers is not None:
        _fail(
            "num_encoder_layers is only for encoder-decoder models "
            f"(architecture={spec.architecture})"
        )
    if spec.is_mla:
        for name in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            if getattr(spec, name) is None:
                _fail(f"multi-head latent attention (kv_lora_rank set) needs {name}")
    if spec.layer_types is not None:
        if len(spec.layer_types) != spec.num_layers:
            _fail(
                f"layer_types has {len(spec.layer_types)} entries but num_layers={spec.num_layers}"
            )
        bad = [k for k in spec.layer_types if k not in LAYER_KINDS]
        if bad:
            kinds = ", ".join(LAYER_KINDS)
            _fail(f"layer_types entries must be one of {kinds}, got {shorten(bad[0])}")
        if "sliding" in spec.layer_types and spec.sliding_window is None:
            _fail("layer_types has sliding layers but sliding_window is not set")
    if spec.is_moe:
        k = spec.num_experts_per_token
        if k is None:
            _fail("a mixture-of-experts spec (num_experts set) needs num_experts_per_token")
        elif spec.num_experts is not None and k > spec.num_experts:
            _fail(f"num_experts_per_token={k} exceeds num_experts={spec.num_experts}")
        if spec.mlp_layer_types is not None:
            if len(spec.mlp_layer_types) != spec.num_layers:
                _fail(
                    f"mlp_layer_types has {len(spec.mlp_layer_types)} entries "
                    f"but num_layers={spec.num_layers}"
                )
            bad = [k for k in spec.mlp_layer_types if k not in MLP_LAYER_KINDS]
            if bad:
                _fail(f"mlp_layer_types entries must be dense or moe, got {shorten(bad[0])}")
        if spec.topk_groups > spec.num_expert_groups:
            _fail(
                f"topk_groups={spec.topk_groups} exceeds num_expert_groups={spec.num_expert_groups}"
            )
        if spec.num_experts is not None and spec.num_experts % spec.num_expert_groups:
            _fail(
                f"num_expert_groups={spec.num_expert_groups} does not divide "
                f"num_experts={spec.num_experts}"
            )
    elif spec.num_experts_per_token is not None and spec.num_experts is None:
        _fail("num_experts_per_token is set but num_experts is not")
    if spec.rotary_dim is not None and spec.rotary_dim > spec.resolved_head_dim:
        _fail(f"rotary_dim={spec.rotary_dim} exceeds head_dim={spec.resolved_head_dim}")
    if spec.parallel_residual and spec.norm_position != "pre":
        _fail("parallel_residual needs norm_position: pre")
