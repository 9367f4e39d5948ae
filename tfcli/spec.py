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
* ``layer_types`` names the kind of each layer of the main stack (``LAYER_KINDS``): attention
  (``full``, ``sliding``, ``chunked``) or another token mixer (``gated_deltanet``, ``lightning``,
  ``mamba``, ``mamba2``, ``rwkv``). When absent, every layer is ``mixer`` (``attention`` means
  sliding if ``sliding_window`` is set, else full). ``tfcli.plan`` turns these fields into one
  ``LayerPlan`` per layer; nothing else interprets them.
* MoE layers: layer ``i`` has routed experts when ``i >= first_dense_layers`` and
  ``(i + 1) % moe_layer_step == 0`` (Qwen-MoE's ``decoder_sparse_step``; DeepSeek's
  ``first_k_dense_replace``), unless ``mlp_layer_types`` lists ``"dense"``/``"moe"`` explicitly.

Only the standard library is imported here (DESIGN.md import rule).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tfcli.errors import SpecError, did_you_mean, shorten
from tfcli.units import DTYPE_BITS

if TYPE_CHECKING:
    from tfcli.plan import Group, LayerPlan, Run

ARCHITECTURES = ("decoder", "encoder", "encoder-decoder")
ACTIVATIONS = ("relu", "gelu", "gelu_tanh", "silu")
CONV_ACTIVATIONS = ("tanh", *ACTIVATIONS)
NORM_TYPES = ("layernorm", "rmsnorm")
NORM_POSITIONS = ("pre", "post", "sandwich", "output")
POSITION_TYPES = ("learned", "sinusoidal", "rope", "alibi", "relative", "disentangled", "none")
ATTENTION_KINDS = ("full", "sliding", "chunked")
"""Softmax attention layers: every earlier key, the last ``sliding_window`` keys, or the keys
of the same ``attention_chunk_size`` chunk (Llama 4 local layers)."""
MIXER_KINDS = ("gated_deltanet", "lightning", "mamba", "mamba2", "rwkv")
"""Token mixers that are not softmax attention: Gated DeltaNet (Qwen3-Next linear attention),
MiniMax lightning attention, Mamba-1 and Mamba-2 state-space layers, RWKV-4 time mixing."""
LAYER_KINDS = ATTENTION_KINDS + MIXER_KINDS
MIXERS = ("attention", *MIXER_KINDS)
MLP_LAYER_KINDS = ("dense", "moe", "none")
ROUTER_SCORINGS = ("softmax", "sigmoid", "sparsemixer")
LAYER_POSITIONS = ("rope", "none")
QK_NORM_WEIGHTS = ("head", "all")
QK_NORM_SCOPES = ("head", "all")
SPARSE_ATTENTION = ("none", "longformer", "bigbird")
DISENTANGLED_TERMS = ("c2p", "p2c")

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
    """Keys a sliding layer attends: the last ``w`` (itself included) in a causal stack; in a
    bidirectional (encoder) stack the ``w // 2`` on each side plus itself (ModernBERT's
    ``local_attention``, Longformer's ``attention_window``)."""
    layer_types: tuple[str, ...] | None = None
    mixer: str = "attention"
    """The token mixer of every layer when ``layer_types`` is absent (``MIXERS``)."""
    attention_chunk_size: int | None = None
    """Chunked local attention (Llama 4): a query attends the earlier keys of its own chunk."""
    layer_positions: tuple[str, ...] | None = None
    """Per layer ``rope`` or ``none`` (NoPE: Llama 4, SmolLM3, Cohere-2's global layers)."""
    attention_sinks: bool = False
    """A learned sink logit per head joins every softmax (gpt-oss): one parameter per head."""
    attention_output_gate: bool = False
    """q_proj also emits a per-channel sigmoid gate for the attention output (Qwen3-Next)."""
    qk_norm_scope: str = "head"
    """What one q/k norm normalises: ``head``, each head's ``head_dim`` features on their own
    (Qwen3, Gemma-3, Cohere's per-head LayerNorm((H, d))); ``all``, every head's queries (H x d)
    and keys (KVH x d) as one vector each (OLMo-2, OLMoE: Olmo2RMSNorm(H d)). ``all`` needs
    ``qk_norm_weights: all``; the weights are the same count either way."""
    qk_l2_norm: bool = False
    """A parameter-free RMS norm of every query and key head after RoPE, on RoPE layers only
    (Llama 4's Llama4TextL2Norm under use_qk_norm; eps norm_eps): no parameters."""
    attention_temperature_floor: int | None = None
    """Llama 4's attention temperature tuning of NoPE layers (attn_temperature_tuning with
    floor_scale): the query at position p is multiplied by
    1 + attention_temperature_scale x log(1 + floor((p + 1) / floor)); None: off."""
    attention_temperature_scale: float = 0.1
    """Llama 4's attn_scale of the temperature tuning (transformers default 0.1)."""
    qk_norm_weights: str = "head"
    """``head``: one ``head_dim`` weight vector shared by the heads (Qwen3); ``all``: every head
    its own (OLMo-2, Cohere: ``heads x head_dim`` for q and ``kv_heads x head_dim`` for k)."""
    parallel_ssm: bool = False
    """Every attention layer also runs a Mamba-2 mixer on the same input (Falcon-H1)."""
    sparse_attention: str = "none"
    """Sparse encoder attention: ``longformer`` (local window + global tokens) or ``bigbird``
    (block sparse: sliding, random and global blocks)."""
    global_attention_projections: bool = False
    """Separate q/k/v projections for global tokens (Longformer's query_global & co.)."""
    sparse_block_size: int | None = None
    """BigBird's block size (tokens per block)."""
    sparse_random_blocks: int | None = None
    """BigBird's random key blocks per query block."""
    global_tokens: int = 0
    """Tokens with global attention in a sparse encoder (Longformer: set per input; 0 = none)."""

    # multi-head latent attention (DeepSeek-V2/V3); MLA is on when kv_lora_rank is set
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None

    # DeepSeek-V3.2 sparse attention: a lightning indexer picks index_topk keys per query
    index_num_heads: int | None = None
    index_head_dim: int | None = None
    index_topk: int | None = None

    # linear attention (Gated DeltaNet) and state-space layers
    linear_num_key_heads: int | None = None
    linear_num_value_heads: int | None = None
    linear_key_head_dim: int | None = None
    linear_value_head_dim: int | None = None
    conv_kernel: int | None = None
    """Width of the causal depthwise convolution of Gated DeltaNet and Mamba layers."""
    linear_chunk_size: int | None = None
    """Chunk length of the reference chunked scan (Gated DeltaNet 64, lightning 256)."""
    ssm_state_size: int | None = None
    """Mamba d_state (N)."""
    ssm_inner_size: int | None = None
    """Mamba d_inner (expand x hidden; Falcon-H1 mamba_d_ssm)."""
    ssm_dt_rank: int | None = None
    """Mamba-1 rank of the dt projection."""
    ssm_num_heads: int | None = None
    """Mamba-2 heads (d_inner / ssm_head_dim)."""
    ssm_groups: int = 1
    """Mamba-2 groups sharing B and C (n_groups)."""
    ssm_chunk_size: int | None = None
    """Mamba-2 chunk length of the reference chunked scan (chunk_size)."""
    ssm_proj_bias: bool = False
    """Bias on a Mamba layer's in_proj (and out_proj unless ``ssm_out_proj_bias`` says)."""
    ssm_out_proj_bias: bool | None = None
    """Bias on out_proj when it differs from in_proj's (Falcon-H1 projectors_bias)."""
    ssm_conv_bias: bool = True
    ssm_gated_norm: bool = True
    """Mamba-2 gated RMSNorm over d_inner before out_proj (Falcon-H1 may leave it out)."""
    ssm_dt_norms: bool = False
    """Jamba's RMSNorms over dt, B and C inside each Mamba layer."""
    rwkv_attention_size: int | None = None
    """RWKV time-mixing width (attention_hidden_size; defaults to hidden_size)."""

    # disentangled attention (DeBERTa-v2/v3)
    relative_position_span: int | None = None
    """DeBERTa's span k: 2k relative-position embedding rows (position_buckets or
    max_relative_positions)."""
    relative_position_bucketed: bool = True
    """DeBERTa: distances beyond k / 2 are log-bucketed (k from position_buckets > 0,
    ``make_log_bucket_position``); false: k from max_relative_positions, distances only
    clamped to the 2k rows (``build_relative_position`` with bucket_size -1)."""
    relative_bucket_max_position: int | None = None
    """``make_log_bucket_position``'s max_position: DeBERTa's max_relative_positions when it
    is >= 1, else (None) max_position_embeddings (DisentangledSelfAttention.__init__)."""
    disentangled_terms: tuple[str, ...] | None = None
    """Which position terms attention adds (DeBERTa pos_att_type: c2p, p2c)."""
    share_attention_key: bool = True
    """DeBERTa share_att_key: positions projected with the content key/query projections."""
    relative_embedding_norm: bool = False
    """A LayerNorm over DeBERTa's relative embeddings (norm_rel_ebd layer_norm)."""
    position_biased_input: bool = True
    """Absolute learned positions are added to the input (DeBERTa-v3: false)."""
    encoder_conv_kernel: int | None = None
    """DeBERTa-v2's ConvLayer after the first layer (conv_kernel_size)."""
    encoder_conv_activation: str = "tanh"
    """The ConvLayer's activation (DeBERTa conv_act, ``CONV_ACTIVATIONS``)."""

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
    expert_bias: bool = False
    """Bias vectors on every routed expert's projections (gpt-oss)."""
    moe_dense_reference: bool = False
    """transformers' implementation runs every expert on every token and zeroes the unrouted
    ones (Llama 4): counted so under the full (eager, FlopCounterMode) convention only."""
    swiglu_limit: float | None = None
    """gpt-oss's clamped SwiGLU in the routed experts (GptOssExperts._apply_gate, swiglu_limit
    7.0): gate clamped to at most the limit, up to [-limit, limit], then
    (up + 1) x gate x sigmoid(swiglu_alpha x gate); None: the plain gated activation."""
    swiglu_alpha: float = 1.702
    """The sigmoid slope of gpt-oss's clamped SwiGLU (swiglu_alpha)."""
    router_jitter_eps: float = 0.01
    """PhiMoE's sparsemixer threshold (router_jitter_noise): an expert competes for a slot only
    when (best - its logit) / max(|its logit|, best) <= 2 eps."""
    router_scales_input: bool = False
    """Llama 4 multiplies each routed expert's input by its router score (Llama4TextMoe.forward)
    instead of its output; no parameters."""
    router_correction_bias: bool = False
    """A routing correction bias stored as a parameter (ERNIE-4.5 moe_statics; DeepSeek's is a
    buffer and not counted)."""
    router_scoring: str = "softmax"
    """softmax or sigmoid of the router logits; sparsemixer: PhiMoE's top-2 by masked softmaxes
    (``router_jitter_eps``)."""
    norm_topk_prob: bool = True
    routed_scaling_factor: float = 1.0
    num_expert_groups: int = 1
    topk_groups: int = 1

    # norms and residuals
    norm_type: str = "layernorm"
    norm_bias: bool = True
    """LayerNorm with a bias vector; ignored for RMSNorm (which has none)."""
    norm_eps: float = 1e-5
    norm_affine: bool = True
    """False for OLMo's non-parametric LayerNorm (no weight, no bias)."""
    norm_position: str = "pre"
    """pre-LN (GPT-2, Llama), post-LN (BERT, BART: norm after the residual add), sandwich (pre
    and on each sublayer's output, Gemma-2/3), or output (only on each sublayer's output before
    the residual add: OLMo-2, EXAONE-4)."""
    first_layer_attention_norm: bool = True
    """False when layer 0 has no pre-attention norm (ModernBERT: the embedding norm serves)."""
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
    logit_scale: float = 1.0
    """Multiplier of the logits (Cohere's logit_scale 0.0625; Granite's 1 / logits_scaling)."""
    embedding_multiplier: float = 1.0
    """Multiplier of the token embeddings (Granite's embedding_multiplier)."""
    residual_multiplier: float = 1.0
    """Multiplier of each sublayer's output before the residual add of a pre-LN block
    (Granite's residual_multiplier: x + m f(norm(x)))."""
    residual_from_norm: bool = False
    """MiniMax (MiniMaxDecoderLayer): each sublayer's residual is its normed input, mixed with
    the sublayer's output by the factors below: y = alpha norm(x) + beta f(norm(x))."""
    full_attention_alpha: float = 1.0
    """MiniMax's residual factor of softmax-attention layers (full_attn_alpha_factor, 1)."""
    full_attention_beta: float = 1.0
    """MiniMax's output factor of softmax-attention layers (full_attn_beta_factor, 1)."""
    linear_attention_alpha: float = 1.0
    """MiniMax's residual factor of lightning layers (linear_attn_alpha_factor, 1)."""
    linear_attention_beta: float = 1.0
    """MiniMax's output factor of lightning layers (linear_attn_beta_factor, 1)."""
    mlp_alpha: float = 1.0
    """MiniMax's residual factor of the MLP / MoE sublayer (mlp_alpha_factor, 1)."""
    mlp_beta: float = 1.0
    """MiniMax's output factor of the MLP / MoE sublayer (mlp_beta_factor, 1)."""
    uncounted: str | None = None
    """What a multimodal checkpoint holds that these counts leave out (its vision tower)."""

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

    @functools.cached_property
    def layer_runs(self) -> tuple[Run, ...]:
        """The layer plan (``tfcli.plan.layer_plan``): runs of identical layers, every stack."""
        from tfcli.plan import layer_plan

        return layer_plan(self)

    @functools.cached_property
    def layer_groups(self) -> tuple[tuple[Group, LayerPlan], ...]:
        """Each distinct layer plan with where its layers sit (``tfcli.plan.plan_groups``),
        every stack: computed once, O(distinct plans) for every count that reads it."""
        from tfcli.plan import periodic_plan_groups, plan_groups

        fast = periodic_plan_groups(self)
        return tuple(fast if fast is not None else plan_groups(self.layer_runs))

    @property
    def layers(self) -> tuple[LayerPlan, ...]:
        """One ``LayerPlan`` per layer, encoder stack first (O(layers); prefer ``layer_runs``)."""
        return tuple(run.plan for run in self.layer_runs for _ in range(run.count))

    def main_stack_runs(self) -> tuple[Run, ...]:
        """Runs of the main stack: the decoder, or the encoder of an encoder-only model."""
        main = "encoder" if self.architecture == "encoder" else "decoder"
        return tuple(run for run in self.layer_runs if run.stack == main)

    @functools.cached_property
    def layer_kinds(self) -> tuple[str, ...]:
        """``LayerPlan.kind`` for each layer of the main stack (full, sliding, mamba, ...)."""
        return tuple(run.plan.kind for run in self.main_stack_runs() for _ in range(run.count))

    @property
    def kind_counts(self) -> dict[str, int]:
        """Layers of the main stack by ``LayerPlan.kind``, in order of first appearance."""
        main = "encoder" if self.architecture == "encoder" else "decoder"
        counts: dict[str, int] = {}
        for group, plan in self.layer_groups:
            if plan.stack == main:
                counts[plan.kind] = counts.get(plan.kind, 0) + group.count
        return counts

    @functools.cached_property
    def moe_layer_flags(self) -> tuple[bool, ...]:
        """True for each layer of the main stack whose MLP is a routed mixture of experts."""
        return tuple(
            run.plan.mlp == "moe" for run in self.main_stack_runs() for _ in range(run.count)
        )

    @property
    def num_moe_layers(self) -> int:
        return sum(group.count for group, plan in self.layer_groups if plan.mlp == "moe")

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
        if self.layer_positions is not None:
            changes["layer_positions"] = self.layer_positions[:depth]
        if self.is_moe or self.mlp_layer_types is not None:
            mlps = [run.plan.mlp for run in self.main_stack_runs() for _ in range(run.count)]
            changes["mlp_layer_types"] = tuple(mlps[:depth])
        if self.num_encoder_layers is not None:
            changes["num_encoder_layers"] = min(layers, self.num_encoder_layers)
        return self.replace(**changes)

    def per_layer_resized(self, layers: int) -> tuple[dict[str, tuple[str, ...]], list[str]]:
        """The per-layer tuples for a main stack of ``layers`` layers, and what was done.

        Fewer layers keep the first ``layers`` entries. More layers repeat the tuple's
        shortest period ``p`` (entry ``i`` is entry ``i mod p``; Gemma-3's 5 sliding + 1 full
        is ``p = 6``), which needs at least two whole periods in the tuple as evidence; a tuple
        with no such period cannot be extended and raises a SpecError naming it.
        """
        changes: dict[str, tuple[str, ...]] = {}
        notes: list[str] = []
        for name in PER_LAYER_FIELDS:
            values: tuple[str, ...] | None = getattr(self, name)
            if values is None or len(values) == layers:
                continue
            if layers < len(values):
                changes[name] = values[:layers]
                notes.append(f"{name}: the first {layers:,} of {len(values):,} entries")
                continue
            from tfcli.plan import shortest_period

            period = shortest_period(values)
            if period is None:
                _fail(
                    f"{name} has {len(values)} entries with no repeating period to extend "
                    f"to num_layers={layers:,}; set {name} too"
                )
            assert period is not None
            changes[name] = tuple(values[i % period] for i in range(layers))
            notes.append(f"{name}: its {period}-layer period repeated to {layers:,} layers")
        return changes, notes

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
        (item, *_rest) = typing.get_args(tp)
        if isinstance(value, (list, tuple)) and item in (str, int):
            # the per-layer tuples (a million entries at the layer cap): one C-level check
            exact = set(map(type, value)) <= {item}
            return exact, tuple(value) if exact else value
        if isinstance(value, (list, tuple)):
            converted = [_accepts(item, v) for v in value]
            if all(ok for ok, _ in converted):
                return True, tuple(v for _, v in converted)
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
        item = typing.get_args(tp)[0]
        return "list of " + {str: "strings", int: "integers"}.get(item, _type_name(item))
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
    "attention_chunk_size": (1, MAX_POSITIONS),
    "attention_temperature_floor": (1, MAX_POSITIONS),
    "sparse_block_size": (1, MAX_POSITIONS),
    "sparse_random_blocks": (1, MAX_COUNT),
    "global_tokens": (0, MAX_POSITIONS),
    "index_num_heads": (1, MAX_COUNT),
    "index_head_dim": (1, MAX_WIDTH),
    "index_topk": (1, MAX_POSITIONS),
    "linear_num_key_heads": (1, MAX_COUNT),
    "linear_num_value_heads": (1, MAX_COUNT),
    "linear_key_head_dim": (1, MAX_WIDTH),
    "linear_value_head_dim": (1, MAX_WIDTH),
    "conv_kernel": (1, MAX_COUNT),
    "linear_chunk_size": (1, MAX_POSITIONS),
    "ssm_state_size": (1, MAX_WIDTH),
    "ssm_inner_size": (1, MAX_WIDTH),
    "ssm_dt_rank": (1, MAX_WIDTH),
    "ssm_num_heads": (1, MAX_COUNT),
    "ssm_groups": (1, MAX_COUNT),
    "ssm_chunk_size": (1, MAX_POSITIONS),
    "rwkv_attention_size": (1, MAX_WIDTH),
    "relative_position_span": (1, MAX_POSITIONS),
    "relative_bucket_max_position": (1, MAX_POSITIONS),
    "encoder_conv_kernel": (1, MAX_COUNT),
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
    "swiglu_limit",
    "swiglu_alpha",
    "logit_scale",
    "embedding_multiplier",
    "residual_multiplier",
)
"""Float fields that must be finite and > 0 when set (finiteness is checked for every float)."""
_TEXT_FIELDS = ("name", "family", "source", "uncounted")
_CHOICES = {
    "architecture": ARCHITECTURES,
    "activation": ACTIVATIONS,
    "encoder_conv_activation": CONV_ACTIVATIONS,
    "norm_type": NORM_TYPES,
    "norm_position": NORM_POSITIONS,
    "position_type": POSITION_TYPES,
    "router_scoring": ROUTER_SCORINGS,
    "mixer": MIXERS,
    "qk_norm_weights": QK_NORM_WEIGHTS,
    "qk_norm_scope": QK_NORM_SCOPES,
    "sparse_attention": SPARSE_ATTENTION,
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
    _validate_layout(spec)
    if spec.is_moe:
        k = spec.num_experts_per_token
        if k is None:
            _fail("a mixture-of-experts spec (num_experts set) needs num_experts_per_token")
        elif spec.num_experts is not None and k > spec.num_experts:
            _fail(f"num_experts_per_token={k} exceeds num_experts={spec.num_experts}")
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
    if spec.moe_layer_step <= 0:
        _fail(f"moe_layer_step must be a positive integer, got {spec.moe_layer_step}")
    if spec.rotary_dim is not None and spec.rotary_dim > spec.resolved_head_dim:
        _fail(f"rotary_dim={spec.rotary_dim} exceeds head_dim={spec.resolved_head_dim}")
    if spec.parallel_residual and spec.norm_position != "pre":
        _fail("parallel_residual needs norm_position: pre")
    if spec.qk_norm_scope == "all" and spec.qk_norm_weights != "all":
        _fail("qk_norm_scope all (one norm over every head) needs qk_norm_weights: all")
    if spec.residual_multiplier != 1.0 and (spec.norm_position != "pre" or spec.parallel_residual):
        _fail("residual_multiplier is for sequential pre-LN blocks (Granite)")
    if spec.residual_from_norm and (spec.norm_position != "pre" or spec.parallel_residual):
        _fail("residual_from_norm is for sequential pre-LN blocks (MiniMax)")
    factors = [getattr(spec, name) for name in RESIDUAL_FACTORS]
    if not spec.residual_from_norm and any(f != 1.0 for f in factors):
        _fail("the alpha/beta residual factors need residual_from_norm (MiniMax)")


RESIDUAL_FACTORS = (
    "full_attention_alpha",
    "full_attention_beta",
    "linear_attention_alpha",
    "linear_attention_beta",
    "mlp_alpha",
    "mlp_beta",
)
"""MiniMax's residual / output factors (finite; only with residual_from_norm)."""


PER_LAYER_FIELDS = ("layer_types", "mlp_layer_types", "layer_positions")
"""The spec fields with one entry per layer of the main stack."""


def _per_layer(spec: ModelSpec, name: str, choices: tuple[str, ...]) -> tuple[str, ...] | None:
    """A per-layer tuple field: one entry per layer of the main stack, each in ``choices``."""
    values: tuple[str, ...] | None = getattr(spec, name)
    if values is None:
        return None
    if len(values) != spec.num_layers:
        _fail(f"{name} has {len(values)} entries but num_layers={spec.num_layers}")
    bad = set(values) - set(choices)
    if bad:
        _fail(f"{name} entries must be one of {', '.join(choices)}, got {shorten(sorted(bad)[0])}")
    return values


_MIXER_NEEDS: dict[str, tuple[str, ...]] = {
    "gated_deltanet": (
        "linear_num_key_heads",
        "linear_num_value_heads",
        "linear_key_head_dim",
        "linear_value_head_dim",
        "conv_kernel",
    ),
    "mamba": ("ssm_state_size", "ssm_inner_size", "ssm_dt_rank", "conv_kernel"),
    "mamba2": ("ssm_state_size", "ssm_inner_size", "ssm_num_heads", "conv_kernel"),
}
"""Fields a layer kind cannot do without."""


def _validate_layout(spec: ModelSpec) -> None:
    """The fields the layer plan reads: per-layer tuples, and what each layer kind needs."""
    kinds = _per_layer(spec, "layer_types", LAYER_KINDS)
    present = set(kinds) if kinds is not None else {spec.mixer}
    if spec.parallel_ssm:
        present.add("mamba2")
    if "sliding" in present and spec.sliding_window is None:
        _fail("layer_types has sliding layers but sliding_window is not set")
    if "chunked" in present and spec.attention_chunk_size is None:
        _fail("layer_types has chunked layers but attention_chunk_size is not set")
    for kind, needs in _MIXER_NEEDS.items():
        missing = [n for n in needs if kind in present and getattr(spec, n) is None]
        if missing:
            _fail(f"{kind} layers need {', '.join(missing)}")
    if "mamba2" in present:
        inner, heads = int(spec.ssm_inner_size or 0), int(spec.ssm_num_heads or 1)
        if inner % heads:
            _fail(f"ssm_num_heads={heads} does not divide ssm_inner_size={inner}")
        if spec.ssm_groups < 1 or heads % spec.ssm_groups:
            _fail(f"ssm_groups={spec.ssm_groups} must be positive and divide ssm_num_heads")
    if "gated_deltanet" in present:
        kh, vh = int(spec.linear_num_key_heads or 1), int(spec.linear_num_value_heads or 1)
        if vh % kh:
            _fail(f"linear_num_key_heads={kh} does not divide linear_num_value_heads={vh}")
    mlps = _per_layer(spec, "mlp_layer_types", MLP_LAYER_KINDS)
    if mlps is not None and "moe" in mlps and not spec.is_moe:
        _fail("mlp_layer_types has moe layers but num_experts is not set")
    _per_layer(spec, "layer_positions", LAYER_POSITIONS)
    if spec.disentangled_terms is not None:
        bad = set(spec.disentangled_terms) - set(DISENTANGLED_TERMS)
        if bad:
            _fail(f"disentangled_terms entries must be c2p or p2c, got {shorten(sorted(bad)[0])}")
    if spec.position_type == "disentangled" and spec.relative_position_span is None:
        _fail("position_type disentangled needs relative_position_span")
    if spec.sparse_attention == "bigbird" and (
        spec.sparse_block_size is None or spec.sparse_random_blocks is None
    ):
        _fail("sparse_attention bigbird needs sparse_block_size and sparse_random_blocks")
    if spec.sparse_attention == "longformer" and spec.sliding_window is None:
        _fail("sparse_attention longformer needs sliding_window (attention_window)")
    if spec.sparse_attention == "longformer" and int(spec.sliding_window or 0) % 2:
        _fail(f"a Longformer window must be even (w / 2 keys each side), got {spec.sliding_window}")
    if spec.architecture != "encoder" and spec.sparse_attention != "none":
        _fail("sparse_attention is for encoder-only models")
    for name in ("norm_eps",):
        value = getattr(spec, name)
        if not math.isfinite(value) or value <= 0:
            _fail(f"{name} must be a positive finite number, got {value}")
