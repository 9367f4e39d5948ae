"""config.json -> ModelSpec, one declarative record per model_type.

A ``Record`` is data: the transformers config class it mirrors, the ``Key``s it reads (spec
field, config key and its aliases, the class default, the kind of value), the ``fixed``
structure every model of the type shares (which projections have biases, the norm type and
placement: read off its ``modeling_*.py``), and a few ``hooks`` for what one key cannot say
(RoPE parameters, per-layer kinds from a pattern, a MoE layout). ``tfcli.hf.export`` is the
inverse. The class defaults are those of transformers 5.x ``configuration_*.py``; a test checks
each ``Key.default`` against the config class (tests/test_hf_records.py).

Only the standard library is imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tfcli.hf.reader import Reader

Hook = Callable[[Reader], None]
NO_DEFAULT: Any = object()
"""The config class has no default for this key (it must be present)."""


@dataclass(frozen=True)
class Key:
    """Spec ``field`` read from config key ``names[0]`` (or an alias after it), checked as
    ``kind`` (see ``tfcli.hf.reader.Reader.get``), ``default`` when absent."""

    field: str
    names: tuple[str, ...]
    default: Any
    kind: str = "any"

    @property
    def name(self) -> str:
        return self.names[0]


def key(spec_field: str, names: str | tuple[str, ...], default: Any, kind: str = "any") -> Key:
    return Key(spec_field, (names,) if isinstance(names, str) else names, default, kind)


@dataclass(frozen=True)
class Record:
    """How one model_type's config.json becomes a spec."""

    model_type: str
    config_class: str
    keys: tuple[Key, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    hooks: tuple[Hook, ...] = ()
    text_config_of: str | None = None
    """Multimodal wrapper: the language model is ``text_config``, read as this model_type."""
    uncounted: str | None = None
    """What the checkpoint holds beyond the language model (a vision tower), for the output."""
    auto_class: str | None = None
    """The transformers auto class tfcli's count corresponds to (default by architecture)."""

    def read(self, reader: Reader) -> None:
        for name, value in self.fixed.items():
            reader.put(name, value)
        for k in self.keys:
            reader.take(k.field, k.names, k.default, k.kind)
        for hook in self.hooks:
            hook(reader)

    def default_of(self, name: str) -> Any:
        """The class default of config key ``name`` as this record states it."""
        for k in self.keys:
            if name in k.names:
                return k.default
        raise KeyError(name)


# ---- activations and dtypes ------------------------------------------------------------------

ACTIVATIONS: dict[str, str] = {
    "relu": "relu",
    "gelu": "gelu",
    "gelu_new": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_tanh": "gelu_tanh",
    "silu": "silu",
    "swish": "silu",
}
"""transformers ACT2FN names -> tfcli's four activations."""


def activation(reader: Reader, names: tuple[str, ...], default: str) -> None:
    value = reader.get(names, default, "str")
    if value not in ACTIVATIONS:
        raise reader.fail(
            reader.present(names) or names[0],
            value,
            f"activation not supported ({', '.join(sorted(ACTIVATIONS))})",
        )
    reader.put("activation", ACTIVATIONS[value], *names)


def act(names: str | tuple[str, ...], default: str) -> Hook:
    names = (names,) if isinstance(names, str) else names
    return lambda r: activation(r, names, default)


DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}


def dtype_hook(reader: Reader) -> None:
    """``torch_dtype`` (or transformers 5's ``dtype``): the dtype the weights ship in."""
    value, found = reader.raw(("torch_dtype", "dtype"))
    if value is None:
        return
    if not isinstance(value, str):
        raise reader.fail(found or "torch_dtype", value, "expected a dtype name")
    if value in DTYPES:
        reader.put("dtype", DTYPES[value], found or "torch_dtype")


# ---- shared hooks ------------------------------------------------------------------------------


def kv_heads_default_to_heads(reader: Reader) -> None:
    """``num_key_value_heads: null`` (or absent with a null default) means MHA."""
    if reader.fields.get("num_kv_heads") is None:
        reader.put("num_kv_heads", reader.fields["num_heads"], "num_key_value_heads")


def explicit_head_dim(reader: Reader) -> None:
    """``head_dim`` is kept only where it differs from hidden / heads (spec convention)."""
    head_dim = reader.fields.get("head_dim")
    heads = reader.fields["num_heads"]
    if head_dim is not None and head_dim * heads == reader.fields["hidden_size"]:
        reader.fields["head_dim"] = None
    if head_dim is None and reader.fields["hidden_size"] % heads:
        reader.put("head_dim", reader.fields["hidden_size"] // heads, "head_dim")


def rope_hook(
    default_theta: float = 10000.0,
    partial_default: float = 1.0,
    default_scaling: dict[str, Any] | None = None,
) -> Hook:
    """RoPE theta, scaling and partial rotary factor from transformers 5 ``rope_parameters``
    (flat, or per layer kind: ``full_attention`` / ``sliding_attention``) or the older
    ``rope_theta`` / ``rope_scaling`` / ``partial_rotary_factor`` keys; a config with none of
    them reads as the class default (``default_theta`` and ``default_scaling``, GptOssConfig's
    YaRN for one)."""

    def read(r: Reader) -> None:
        params = r.get("rope_parameters", None, "?dict")
        if (
            params is None
            and default_scaling is not None
            and r.present(("rope_theta", "rope_scaling")) is None
        ):
            params = {"rope_theta": default_theta, **default_scaling}
        if params is not None and "full_attention" in params:
            full = params.get("full_attention") or {}
            local = params.get("sliding_attention") or {}
            if not isinstance(full, dict) or not isinstance(local, dict):
                raise r.fail("rope_parameters", params, "expected per-layer-kind mappings")
            theta = _theta(r, full.get("rope_theta", default_theta))
            r.put("rope_theta", theta, "rope_parameters")
            if "rope_theta" in local:
                r.put("rope_local_theta", _theta(r, local["rope_theta"]), "rope_parameters")
            scaling = full if full.get("rope_type", "default") != "default" else None
            r.put("rope_scaling", scaling, "rope_parameters")
            partial = full.get(
                "partial_rotary_factor", r.get("partial_rotary_factor", partial_default)
            )
        elif params is not None:
            theta = params.get("rope_theta", r.get("rope_theta", default_theta))
            r.put("rope_theta", _theta(r, theta), "rope_parameters")
            rope_type = params.get("rope_type", params.get("type", "default"))
            scaling = (
                {k: v for k, v in params.items() if k != "rope_theta"}
                if rope_type != "default"
                else None
            )
            r.put("rope_scaling", scaling, "rope_parameters")
            partial = params.get(
                "partial_rotary_factor", r.get("partial_rotary_factor", partial_default)
            )
        else:
            theta_key = r.present(("rope_theta", "rotary_emb_base", "rope_base"))
            theta = r.get(("rope_theta", "rotary_emb_base", "rope_base"), default_theta, "positive")
            r.put("rope_theta", theta, theta_key or "rope_theta")
            scaling = r.get("rope_scaling", None, "?dict")
            if scaling is not None and scaling.get("rope_type", scaling.get("type")) == "default":
                scaling = None
            r.put("rope_scaling", scaling, "rope_scaling")
            partial = r.get(("partial_rotary_factor", "rotary_pct"), partial_default)
        partial = _partial(r, partial)
        if partial != 1.0:
            head_dim = r.fields.get("head_dim") or r.fields["hidden_size"] // r.fields["num_heads"]
            r.put("rotary_dim", int(head_dim * partial), "partial_rotary_factor")

    return read


def _theta(r: Reader, value: Any) -> float:
    from tfcli.hf.reader import check

    return float(check(r, "rope_theta", value, "positive"))


def _partial(r: Reader, value: Any) -> float:
    from tfcli.hf.reader import check

    number = float(check(r, "partial_rotary_factor", value, "positive"))
    if number > 1:
        raise r.fail("partial_rotary_factor", value, "must be at most 1")
    return number


LAYER_TYPE_NAMES = {
    "full_attention": "full",
    "attention": "full",
    "global": "full",
    "sliding_attention": "sliding",
    "local": "sliding",
    "chunked_attention": "chunked",
    "indexed_attention": "full",
    "hybrid": "full",
}
"""transformers ``layer_types`` entries -> tfcli layer kinds (``linear_attention`` and
``mamba`` depend on the model type: see ``layer_types_hook``)."""


def layer_types_hook(linear: str | None = None, *, only_if_mixed: bool = True) -> Hook:
    """``layer_types`` -> spec ``layer_types``; ``linear_attention`` / ``mamba`` entries become
    ``linear`` (the model's state mixer: gated_deltanet, lightning, mamba, mamba2)."""

    def read(r: Reader) -> None:
        raw = r.get("layer_types", None, "?list")
        if raw is None:
            return
        kinds = tuple(_layer_kind(r, entry, linear) for entry in raw)
        layers = r.fields["num_layers"]
        if len(kinds) != layers:
            raise r.fail("layer_types", raw, f"has {len(kinds)} entries for {layers} layers")
        if only_if_mixed and set(kinds) == {"full"}:
            return
        if linear is not None and set(kinds) == {linear}:
            r.put("mixer", linear, "layer_types")  # one kind throughout: the model's mixer
            return
        r.put("layer_types", kinds, "layer_types")

    return read


def _layer_kind(r: Reader, entry: Any, linear: str | None) -> str:
    if entry in ("linear_attention", "mamba", "mamba2") and linear is not None:
        return linear
    if isinstance(entry, str) and entry in LAYER_TYPE_NAMES:
        return LAYER_TYPE_NAMES[entry]
    raise r.fail("layer_types", entry, "unknown layer type")


def pattern_layer_types(r: Reader, pattern: Callable[[int], str], names: tuple[str, ...]) -> None:
    """Per-layer kinds from a pattern, unless ``layer_types`` was given."""
    if "layer_types" in r.fields:
        return
    layers = r.fields["num_layers"]
    kinds = tuple(pattern(i) for i in range(layers))
    if len(set(kinds)) > 1 or kinds[:1] != ("full",):
        r.put("layer_types", kinds, *names)


def sliding_hook(default_window: int | None, *, switch: str | None = None) -> Hook:
    """``sliding_window`` (with the Qwen-style ``use_sliding_window`` switch when named: off
    unless the config turns it on, as Qwen2Config / SmolLM3Config default it)."""

    def read(r: Reader) -> None:
        window = r.get("sliding_window", default_window, "?natural")
        enabled = r.get(switch, False, "bool") if switch else True
        if window and enabled:
            r.put("sliding_window", window, "sliding_window", *((switch,) if switch else ()))
            layer_types_hook()(r)

    return read


def moe_hook(
    experts: tuple[str, ...],
    experts_default: int,
    top_k: tuple[str, ...],
    top_k_default: int,
) -> Hook:
    def read(r: Reader) -> None:
        r.take("num_experts", experts, experts_default, "count")
        r.take("num_experts_per_token", top_k, top_k_default, "count")

    return read


def qwen_moe_layers(r: Reader) -> None:
    """Qwen-MoE: layer i is sparse when (i + 1) % decoder_sparse_step == 0 and i is not in
    mlp_only_layers."""
    step = r.get("decoder_sparse_step", 1, "count")
    only_dense = r.get("mlp_only_layers", [], "?list") or []
    layers = r.fields["num_layers"]
    dense = set(only_dense)
    kinds = tuple(
        "moe" if i not in dense and (i + 1) % step == 0 else "dense" for i in range(layers)
    )
    if "dense" in kinds:
        r.put("mlp_layer_types", kinds, "decoder_sparse_step", "mlp_only_layers")


def fixed(**values: Any) -> dict[str, Any]:
    return values


# ---- Llama-style decoders ---------------------------------------------------------------------

LLAMA_STRUCTURE = fixed(
    architecture="decoder",
    mlp_gated=True,
    norm_type="rmsnorm",
    norm_position="pre",
    position_type="rope",
)
"""LlamaDecoderLayer: RMSNorm pre-norm (2 per block), final norm, RoPE, gated SiLU MLP."""


def llama_keys(
    *,
    vocab: int,
    hidden: int,
    layers: int,
    heads: int,
    kv: int | None,
    intermediate: int,
    positions: int,
    tied: bool,
    head_dim: int | None = None,
    eps: float = 1e-6,
    eps_key: str = "rms_norm_eps",
    bias: bool | None = False,
    mlp_bias: bool | None = False,
    with_head_dim: bool = True,
) -> tuple[Key, ...]:
    """The keys every Llama-style config has, with its class defaults."""
    keys = [
        key("vocab_size", "vocab_size", vocab, "count"),
        key("hidden_size", "hidden_size", hidden, "count"),
        key("num_layers", "num_hidden_layers", layers, "layers"),
        key("num_heads", "num_attention_heads", heads, "count"),
        key("num_kv_heads", "num_key_value_heads", kv, "?count"),
        key("intermediate_size", "intermediate_size", intermediate, "count"),
        key("max_position_embeddings", "max_position_embeddings", positions, "?count"),
        key("norm_eps", eps_key, eps, "positive"),
        key("tie_word_embeddings", "tie_word_embeddings", tied, "bool"),
    ]
    if with_head_dim:
        keys.append(key("head_dim", "head_dim", head_dim, "?count"))
    if bias is not None:
        keys.append(key("attention_qkv_bias", "attention_bias", bias, "bool"))
    if mlp_bias is not None:
        keys.append(key("mlp_bias", "mlp_bias", mlp_bias, "bool"))
    return tuple(keys)


def out_bias_follows_qkv(r: Reader) -> None:
    """``attention_bias`` switches q, k, v and o together (LlamaAttention)."""
    r.put("attention_out_bias", r.fields.get("attention_qkv_bias", False), "attention_bias")


LLAMA_HOOKS: tuple[Hook, ...] = (
    kv_heads_default_to_heads,
    explicit_head_dim,
    out_bias_follows_qkv,
    act("hidden_act", "silu"),
    dtype_hook,
)


def llama_like(
    model_type: str,
    config_class: str,
    keys: tuple[Key, ...],
    *hooks: Hook,
    theta: float = 10000.0,
    partial: float = 1.0,
    scaling: dict[str, Any] | None = None,
    window: int | None = None,
    window_switch: str | None = None,
    structure: dict[str, Any] | None = None,
    activation_hook: Hook | None = None,
) -> Record:
    base = list(LLAMA_HOOKS)
    if activation_hook is not None:
        base[3] = activation_hook
    return Record(
        model_type,
        config_class,
        keys,
        fixed={**LLAMA_STRUCTURE, **(structure or {})},
        hooks=(
            *base,
            rope_hook(theta, partial, scaling),
            sliding_hook(window, switch=window_switch),
            *hooks,
        ),
    )
