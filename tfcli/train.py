"""Training memory and FLOPs per device: parameters, gradients, optimizer states, activations
saved for backward, logits and loss temporaries, FSDP buffers, and the peak of one step.

What is modelled is what PyTorch does (DESIGN.md section 4; the oracle is
``torch.distributed._tools.mem_tracker.MemTracker`` on the transformers model of the same
config, tests/test_train_memory.py):

* Precision. ``fp32``: fp32 weights, grads and optimizer states. ``bf16``: everything bf16, as
  after ``model.to(torch.bfloat16)`` (AdamW's states follow the parameter dtype). ``bf16-mixed``:
  fp32 weights, grads and states (the weights are the fp32 master copy; there is no second
  one), forward under ``torch.autocast(bfloat16)``, whose weight cache keeps a bf16 copy of
  every matmul weight alive until backward (counted with the activations).
* Optimizer. ``adamw``: ``exp_avg`` and ``exp_avg_sq`` (parameter dtype) plus one fp32 ``step``
  scalar per parameter tensor; ``foreach=False``, whose step allocates two temporaries of one
  tensor (``exp_avg_sq.sqrt() / bias_correction2_sqrt``). ``sgd``: one momentum buffer.
* One steady-state step: the optimizer states exist from the start, gradients are freed by
  ``zero_grad(set_to_none=True)``, the loop keeps only the loss (logits are freed once the loss
  is computed). Dropout is off (p = 0, as in Llama-style pretraining).
* Activations: the tensors autograd saves, layer by layer, under an implementation profile:
  ``sdpa`` (``_scaled_dot_product_flash_attention_for_cpu``: saves q, k, v, the output and a
  fp32 logsumexp of B x H x S) or ``eager`` (saves the fp32 softmax of B x H x S x S, its cast
  to the compute dtype, and K/V repeated to every query head). Recompute ``full`` is
  ``gradient_checkpointing_enable()``: each block keeps only its input. ``selective`` is
  Megatron's (Korthikanti et al. 2022, arXiv:2205.05198, section 5): the attention core is
  recomputed, so eager keeps no s x s tensor (sdpa already keeps none).

Only the standard library and other tfcli domain modules are imported here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

from tfcli.errors import UsageError
from tfcli.flops import FlopCount, forward_flops
from tfcli.plan import layer_plan
from tfcli.shapes import layer_shapes
from tfcli.spec import ModelSpec
from tfcli.tensors import ParamTensor, parameter_tensors, shapes_tensors
from tfcli.train_mixers import MIXER_SAVED, MUP_VECTOR_FAMILIES, SCAN_BACKWARD, mixer_input_casts

PRECISIONS = ("fp32", "bf16", "bf16-mixed")
OPTIMIZERS = ("adamw", "sgd")
RECOMPUTE_MODES = ("none", "selective", "full")
ATTENTION_IMPLS = ("sdpa", "eager")
ZERO_STAGES = (0, 1, 2, 3)

FP32 = 4
INT64 = 8


@dataclass(frozen=True)
class TrainSetup:
    """One training configuration: sizes, precision, optimizer, recompute, parallelism."""

    seq: int
    micro_batch: int = 1
    precision: str = "bf16-mixed"
    optimizer: str = "adamw"
    recompute: str = "none"
    attention_impl: str = "sdpa"
    dp: int = 1
    zero: int = 0
    tp: int = 1
    pp: int = 1
    ep: int = 1
    grad_accum: int = 1

    @property
    def tokens(self) -> int:
        """Tokens in one micro-batch on one data-parallel rank: micro_batch x seq."""
        return self.micro_batch * self.seq

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step over all ranks: micro_batch x seq x grad_accum x dp."""
        return self.tokens * self.grad_accum * self.dp

    @property
    def devices(self) -> int:
        return self.dp * self.tp * self.pp

    @property
    def shard_world(self) -> int:
        """Ranks ZeRO / FSDP shard over (the data-parallel group)."""
        return self.dp if self.zero else 1


def check_setup(spec: ModelSpec, setup: TrainSetup) -> None:
    """Reject a setup that cannot run, naming the option (UsageError, exit 2)."""
    for option, value in (
        ("--seq", setup.seq),
        ("--micro-batch", setup.micro_batch),
        ("--dp", setup.dp),
        ("--tp", setup.tp),
        ("--pp", setup.pp),
        ("--ep", setup.ep),
        ("--grad-accum", setup.grad_accum),
    ):
        if value < 1:
            raise UsageError(f"{option} must be a positive integer, got {value}")
    for option, text, choices in (
        ("--precision", setup.precision, PRECISIONS),
        ("--optimizer", setup.optimizer, OPTIMIZERS),
        ("--recompute", setup.recompute, RECOMPUTE_MODES),
        ("--attention-impl", setup.attention_impl, ATTENTION_IMPLS),
    ):
        if text not in choices:
            raise UsageError(f"{option} must be one of {', '.join(choices)}, got {text!r}")
    if setup.zero not in ZERO_STAGES:
        raise UsageError(f"--zero must be 0, 1, 2 or 3, got {setup.zero}")
    if setup.zero and setup.dp == 1:
        raise UsageError(f"--zero {setup.zero} shards over data-parallel ranks: give --dp N > 1")
    kinds = {run.plan.kind for run in layer_plan(spec)}
    if setup.tp > 1 and kinds & {"mamba", "mamba2"}:
        raise UsageError(
            f"--tp is not modelled for Mamba layers yet ({spec.name}): use --tp 1 with --dp/--pp"
        )
    if spec.num_heads % setup.tp:
        raise UsageError(
            f"--tp {setup.tp} does not divide the {spec.num_heads} attention heads of {spec.name}"
        )
    if not spec.is_mla and spec.kv_heads % setup.tp and setup.tp % spec.kv_heads:
        raise UsageError(
            f"--tp {setup.tp} neither divides nor is a multiple of the {spec.kv_heads} KV heads "
            f"of {spec.name}"
        )
    if setup.pp > spec.total_layers:
        raise UsageError(f"--pp {setup.pp} exceeds the {spec.total_layers} layers of {spec.name}")
    if setup.ep > 1:
        if not spec.is_moe:
            raise UsageError(f"--ep applies to mixture-of-experts models; {spec.name} is dense")
        if int(spec.num_experts or 0) % setup.ep:
            raise UsageError(
                f"--ep {setup.ep} does not divide the {spec.num_experts} experts of {spec.name}"
            )
        if setup.dp % setup.ep:
            raise UsageError(
                f"--ep {setup.ep} must divide --dp {setup.dp} (experts are spread over "
                "data-parallel ranks, as in DeepSpeed-MoE and torchtitan)"
            )
    if spec.attn_logit_softcap is not None and setup.attention_impl == "sdpa":
        raise UsageError(
            f"{spec.name} soft-caps its attention logits, which SDPA cannot express "
            "(transformers refuses it): use --attention-impl eager"
        )
    modelled = ("full", "sliding", "chunked", "full+mamba2", "sliding+mamba2", *MIXER_SAVED)
    unmodelled = sorted(kinds - set(modelled))
    if unmodelled:
        raise UsageError(
            f"tfcli train models layers of kind {', '.join(modelled)} so far; {spec.name} has "
            f"{', '.join(unmodelled)} layers"
        )
    if spec.architecture != "decoder" and setup.pp > 1:
        raise UsageError("--pp is modelled for decoder-only models")


# ---- bytes per element --------------------------------------------------------------------


def param_bytes(precision: str) -> int:
    """Bytes per parameter: bf16 2; fp32 and bf16-mixed 4 (autocast keeps fp32 weights)."""
    return 2 if precision == "bf16" else FP32


def compute_bytes(precision: str) -> int:
    """Bytes of a matmul output: fp32 4; bf16 and bf16-mixed (autocast) 2."""
    return FP32 if precision == "fp32" else 2


def residual_bytes(precision: str) -> int:
    """Bytes of the residual stream: the norms and adds run in the parameter dtype (autocast
    does not cast adds or norms): bf16 2, fp32 and bf16-mixed 4."""
    return param_bytes(precision)


def optimizer_state_count(optimizer: str) -> int:
    """Tensors of parameter size the optimizer keeps: AdamW 2 (exp_avg, exp_avg_sq), SGD with
    momentum 1 (momentum_buffer). PyTorch ``torch/optim/adamw.py`` and ``sgd.py``."""
    return 2 if optimizer == "adamw" else 1


# ---- parameters, gradients, optimizer ------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One named amount of bytes and how it was computed (numbers put in)."""

    name: str
    bytes: int
    formula: str


_TENSOR_CACHE: dict[tuple[int, int, int, int], tuple[ModelSpec, list[ParamTensor]]] = {}


def shard_group(t: ParamTensor, setup: TrainSetup) -> int:
    """Ranks one tensor is sharded over by ZeRO / FSDP: the dp ranks; routed experts under
    expert parallelism over the dp ranks outside their EP group, ``dp // ep`` (torchtitan's
    ``dp_shard_mod_ep`` mesh)."""
    if not setup.zero:
        return 1
    if setup.ep > 1 and "experts" in t.name:
        return max(1, setup.dp // setup.ep)
    return setup.dp


def shard_numel(t: ParamTensor, setup: TrainSetup) -> int:
    """Elements one rank holds of ``t`` under ZeRO / FSDP: dim 0 chunked over
    ``shard_group`` ranks and padded (FSDP2), except routed experts under expert parallelism,
    chunked along dim 1 (torchtitan's ``shard_placement_fn``: few experts per rank)."""
    world = shard_group(t, setup)
    if world <= 1:
        return t.numel
    if setup.ep > 1 and "experts" in t.name and len(t.shape) >= 2:
        rest = t.numel // t.shape[1]
        return -(-t.shape[1] // world) * rest
    return t.shard_numel(world)


def device_tensors(spec: ModelSpec, setup: TrainSetup) -> list[ParamTensor]:
    """The parameter tensors one device holds before ZeRO / FSDP sharding (public name)."""
    return _local_tensors(spec, setup)


def _local_tensors(spec: ModelSpec, setup: TrainSetup) -> list[ParamTensor]:
    """``_device_tensors``, memoised per spec object and (tp, pp, ep): the fit solver asks for
    the same list dozens of times."""
    key = (id(spec), setup.tp, setup.pp, setup.ep)
    hit = _TENSOR_CACHE.get(key)
    if hit is not None and hit[0] is spec:
        return hit[1]
    if len(_TENSOR_CACHE) > 64:
        _TENSOR_CACHE.clear()
    tensors = _device_tensors(spec, setup)
    _TENSOR_CACHE[key] = (spec, tensors)
    return tensors


def _device_tensors(spec: ModelSpec, setup: TrainSetup) -> list[ParamTensor]:
    """The tensors one device holds before ZeRO / FSDP sharding: tensor parallelism divides
    matmul weights and embeddings (dim 0 for column-parallel, dim 1 for row-parallel; the
    element count is what matters here), pipeline parallelism keeps the first stage's layers
    and the embeddings, expert parallelism divides the routed experts."""
    tensors = parameter_tensors(spec)
    if setup.tp == 1 and setup.pp == 1 and setup.ep == 1:
        return tensors
    per_stage = -(-spec.num_layers // setup.pp)
    out: list[ParamTensor] = []
    for t in tensors:
        parts = t.name.split(".")
        in_later_stage = (
            parts[0] == "decoder" and parts[1] == "layers" and int(parts[2]) >= per_stage
        )
        if setup.pp > 1 and in_later_stage:
            continue
        if setup.pp > 1 and t.name.startswith(("lm_head", "decoder.norm")):
            continue
        shape = t.shape
        if "experts" in t.name and setup.ep > 1:
            shape = (shape[0] // setup.ep, *shape[1:])
        if setup.tp > 1 and len(shape) >= 2:
            if "experts" in t.name:
                shape = (shape[0], *shape[1:-1], -(-shape[-1] // setup.tp))
            elif not t.name.endswith("relative_attention_bias.weight"):
                shape = (-(-shape[0] // setup.tp), *shape[1:])
        out.append(ParamTensor(t.name, shape))
    return out


@dataclass(frozen=True)
class StateMemory:
    """Per-device bytes of what lives across the whole step."""

    parameters: int
    gradients: int
    optimizer_states: int
    master_weights: int
    parameter_tensors: int
    largest_tensor: int
    """Elements of the largest (local, sharded) parameter tensor: sizes the optimizer temps."""
    parts: tuple[Part, ...]


def state_memory(spec: ModelSpec, setup: TrainSetup) -> StateMemory:
    """Parameters, gradients and optimizer states on one device.

    ``--zero 0`` replicates; ``1`` shards optimizer states, ``2`` also gradients, ``3`` also
    parameters (FSDP2 ``fully_shard``: each tensor is chunked along dim 0 over the dp ranks,
    dim 0 padded to a multiple of dp, ``ParamTensor.shard_numel``). ZeRO-1/2 are counted with
    the same per-tensor chunks (DeepSpeed flattens and pads the whole group instead; the
    difference is under one tensor row per rank).
    AdamW: ``2 x params x state_bytes + 4 x tensors`` (fp32 ``step`` scalars); SGD momentum:
    ``params x state_bytes``. States take the parameter dtype.
    DeepSpeed (ZeRO paper, Rajbhandari et al. 2020) counts mixed precision as 2 + 2 + 12 bytes
    per parameter (bf16 weights and grads, fp32 master, momentum and variance); PyTorch AMP
    keeps fp32 weights and grads instead: 4 + 4 + 8.
    """
    tensors = _local_tensors(spec, setup)
    world = setup.shard_world
    full = sum(t.numel for t in tensors)
    sharded = sum(shard_numel(t, setup) for t in tensors)
    pbytes = param_bytes(setup.precision)
    params_local = sharded if setup.zero >= 3 else full
    grads_local = sharded if setup.zero >= 2 else full
    opt_local = sharded if setup.zero >= 1 else full
    states = optimizer_state_count(setup.optimizer)
    step_scalars = FP32 * len(tensors) if setup.optimizer == "adamw" else 0
    largest = max((shard_numel(t, setup) for t in tensors), default=0)
    parts = (
        Part(
            "parameters",
            params_local * pbytes,
            f"{params_local:,} elements x {pbytes} B"
            + (f" (dim-0 shards over dp={world}, padded)" if setup.zero >= 3 else ""),
        ),
        Part(
            "gradients",
            grads_local * pbytes,
            f"{grads_local:,} x {pbytes} B" + (" (sharded)" if setup.zero >= 2 else ""),
        ),
        Part(
            "optimizer states",
            opt_local * pbytes * states + step_scalars,
            f"{states} x {opt_local:,} x {pbytes} B"
            + (f" + 4 B step x {len(tensors)} tensors" if step_scalars else "")
            + (" (sharded)" if setup.zero >= 1 else ""),
        ),
    )
    return StateMemory(
        parameters=parts[0].bytes,
        gradients=parts[1].bytes,
        optimizer_states=parts[2].bytes,
        master_weights=0,
        parameter_tensors=len(tensors),
        largest_tensor=largest,
        parts=parts,
    )


# ---- activations --------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerActivations:
    """Bytes saved for backward by the layers of one kind."""

    kind: str
    layers: int
    bytes_per_layer: int
    parts: tuple[Part, ...]

    @property
    def total(self) -> int:
        return self.layers * self.bytes_per_layer


def rms_norm_saved(rows: int, width: int, input_bytes: int) -> int:
    """What a transformers RMSNorm (``LlamaRMSNorm``: ``x.float()``, ``x * rsqrt(mean(x^2) +
    eps)``, ``weight * x.to(input_dtype)``) saves, its input and output aside.

    fp32 input: ``rsqrt`` (rows x 4) and ``x * rsqrt`` (rows x width x 4). bf16 input: the fp32
    copy of x (rows x width x 4), ``rsqrt`` (rows x 4) and the cast back (rows x width x 2).
    Measured with MemTracker on LlamaForCausalLM (transformers 5, torch 2.13).
    """
    if input_bytes == FP32:
        return rows * FP32 + rows * width * FP32
    return rows * width * FP32 + rows * FP32 + rows * width * input_bytes


def layer_norm_saved(rows: int, input_bytes: int) -> int:
    """``aten.native_layer_norm`` saves its input (counted by its producer), the mean and the
    reciprocal std in the input dtype: ``2 x rows x bytes`` (measured on BertModel; under
    autocast layer_norm runs in fp32)."""
    return 2 * rows * input_bytes


FP32_WEIGHT_NORM_FAMILIES = ("gemma", "gemma2", "gemma3_text", "qwen3_next")
"""transformers families whose RMSNorm multiplies in fp32 by ``1 + weight`` and casts last
(``Gemma2RMSNorm``): part of the implementation profile, as the softmax dtype is."""


def fp32_weight_rms_norm_saved(rows: int, width: int, input_bytes: int) -> int:
    """``Gemma2RMSNorm``: ``(x.float() * rsqrt(mean(x^2) + eps)) * (1 + weight.float())``, cast
    to the input dtype last. Saves ``rsqrt`` (rows x 4), ``x * rsqrt`` in fp32 (rows x width x
    4) and ``1 + weight`` (width x 4); a bf16 input adds its fp32 copy (rows x width x 4).
    Measured with MemTracker on Gemma2ForCausalLM."""
    saved = rows * FP32 + rows * width * FP32 + width * FP32
    if input_bytes != FP32:
        saved += rows * width * FP32
    return saved


def _norm_saved(spec: ModelSpec, rows: int, width: int, input_bytes: int) -> int:
    if spec.norm_type == "rmsnorm":
        if spec.family in FP32_WEIGHT_NORM_FAMILIES:
            return fp32_weight_rms_norm_saved(rows, width, input_bytes)
        return rms_norm_saved(rows, width, input_bytes)
    return layer_norm_saved(rows, input_bytes)


ORACLE_CHECKED_FAMILIES = (
    "llama",
    "mistral",
    "qwen3",
    "mixtral",
    "bert",
    "gemma2",
    "bart",
    "qwen3_next",
    "mamba",
    "jamba",
    "mamba2",
    "granitemoehybrid",
    "falcon_h1",
    "llama4_text",
    "t5",
)
"""Families whose activations and peak the tests check against torch's MemTracker
(tests/test_train_memory.py, tests/test_train_hybrid.py, tests/test_train_ssm.py).
Parameters, gradients and optimizer states follow the parameter tensors of every family;
other families' activations use the same per-op rules (norm, attention, MLP kinds) without a
family-specific check yet."""


COMPLEX_ROPE_FAMILIES = ("llama4_text",)
"""transformers families whose RoPE multiplies complex q and k by ``freqs_cis`` (complex64,
``S x d/2``: one tensor, 4 bytes per channel) instead of keeping cos and sin."""

RESIDUAL_FP32_FAMILIES = ("mamba", "mamba2", "falcon_mamba")
"""transformers families whose blocks add the residual in fp32 (``residual_in_fp32``, True
by default and in the released checkpoints: ``residual.to(torch.float32)`` in
``MambaBlock``): in a bf16 model the stream between blocks is fp32 after the first block."""


def oracle_checked(spec: ModelSpec) -> bool:
    """True when this model's family is one the MemTracker tests cover."""
    return spec.family in ORACLE_CHECKED_FAMILIES


EAGER_SOFTMAX_IN_DTYPE_FAMILIES = ("bert", "roberta", "bart", "t5")
"""transformers families whose eager attention takes the softmax in the compute dtype
(``softmax(scores, dim=-1)``, BertSelfAttention); the others (Llama, Qwen, Mistral, Gemma,
...) take it in fp32 and cast back (``softmax(..., dtype=torch.float32).to(q.dtype)``).
Part of the eager implementation profile, not of the architecture."""


def eager_softmax_bytes(spec: ModelSpec, precision: str, *, masked: bool = False) -> int:
    """Bytes per score eager attention keeps for backward: the softmax output (fp32 when the
    family upcasts, else the compute dtype: CPU autocast leaves softmax in bf16, but under
    bf16-mixed an additive fp32 causal mask promotes the scores to fp32) plus its cast to the
    compute dtype when the two differ (the AV matmul saves the cast). Measured on BertModel
    and BartForConditionalGeneration."""
    a = compute_bytes(precision)
    in_dtype = spec.family in EAGER_SOFTMAX_IN_DTYPE_FAMILIES
    if in_dtype and masked and precision == "bf16-mixed":
        in_dtype = False
    softmax = a if in_dtype else FP32
    return softmax + (a if softmax != a else 0)


def _norm_input_saved(spec: ModelSpec, input_bytes: int) -> bool:
    """Whether a norm keeps its input tensor (RMSNorm in bf16 keeps its fp32 copy instead)."""
    return spec.norm_type == "layernorm" or input_bytes == FP32 or spec.family in T5_NORM_FAMILIES


T5_NORM_FAMILIES = ("t5",)
"""``T5LayerNorm`` multiplies its bf16 input by the fp32 rsqrt (``hidden * rsqrt(variance)``),
so it keeps the input itself besides its fp32 copy (measured on T5ForConditionalGeneration)."""


def attention_saved(
    spec: ModelSpec,
    setup: TrainSetup,
    *,
    window: int | None,
    causal: bool = True,
    rope: bool = True,
    chunked: bool = False,
) -> list[Part]:
    """What one self-attention sublayer saves, its input norm aside (t = B x S tokens, heads
    and widths per tensor-parallel rank, a = compute bytes).

    q/k/v after RoPE: ``t x (H + 2 KVH) x d x a`` (under bf16-mixed SDPA/matmul cast them to
    bf16, so a = 2). sdpa: + output ``t x H x d x a`` + fp32 logsumexp ``B x H x S x 4``
    (``_scaled_dot_product_flash_attention_for_cpu``). eager (transformers
    ``eager_attention_forward``): k and v repeated to H heads (``repeat_kv`` copies),
    softmax in fp32 ``B x H x S x S x 4`` and its cast to the compute dtype (when a != 4),
    the transposed output copy ``t x H x d x a``. selective recompute drops the s x s tensors
    (Megatron's selective recomputation). qk-norm (Qwen3): the q and k projections' outputs
    and their RMSNorm internals. Llama 4: a chunked layer (chunk < S) gets an explicit mask as
    a short window does; its parameter-free L2 qk norm (RoPE layers) keeps its fp32 input and
    rsqrt, ``t (H + KVH) (d + 1) 4``; a NoPE layer's temperature tuning its per-position
    query scale ``S x 4`` (measured on Llama4ForCausalLM).
    Megatron (2205.05198, eq. 2, per layer, 16-bit, no recompute): ``sbh(34 + 5 a s / h)``.
    """
    tp = setup.tp
    b, s = setup.micro_batch, setup.seq
    t = b * s
    a = compute_bytes(setup.precision)
    heads = spec.num_heads // tp
    kv = max(1, spec.kv_heads // tp)
    d_qk, d_v = spec.qk_head_dim, spec.value_head_dim
    parts: list[Part] = []
    gated = spec.attention_output_gate
    if spec.qk_norm and not spec.is_mla:
        # with an output gate the query norm reads a view of the whole q_proj output
        q_rows = 2 * heads if gated else heads
        proj = t * (q_rows + kv) * d_qk * a if a == FP32 else 0
        norm = _norm_saved(spec, t * heads, d_qk, a) + _norm_saved(spec, t * kv, d_qk, a)
        parts.append(Part("qk_norm", proj + norm, "q/k projections + their RMSNorm internals"))
    if gated:
        # Qwen3-Next: o_proj(attn_output * sigmoid(gate)) keeps the attention output's
        # contiguous copy (eager attention made it already), the sigmoid and the product
        copies = 2 if setup.attention_impl == "eager" else 3
        parts.append(
            Part(
                "output gate",
                copies * t * heads * d_v * a,
                f"{copies} x t x H x d_v x a = {copies} x {t:,} x {heads} x {d_v} x {a}",
            )
        )
    if spec.qk_l2_norm and rope:
        rows = t * (heads + kv)
        parts.append(
            Part(
                "qk L2 norm",
                rows * (d_qk + 1) * FP32,
                f"t x (H + KVH) x (d + 1) x 4 = {t:,} x {heads + kv} x {d_qk + 1} x 4",
            )
        )
    if spec.attention_temperature_floor is not None and not rope and spec.position_type == "rope":
        parts.append(Part("query temperature", s * FP32, f"S x 4 = {s:,} x 4 (NoPE layer)"))
    eager = setup.attention_impl == "eager"
    # a sliding window shorter than the sequence needs an explicit mask: SDPA then gets K/V
    # repeated to every query head (no enable_gqa with a mask) and keeps the mask, cast to
    # the compute dtype, per layer (measured on MistralForCausalLM)
    # (a chunked layer needs the mask from one full chunk on: measured at S = chunk)
    masked = window is not None and (window < s or (chunked and window <= s))
    kv_saved = heads if (eager or masked) else kv
    qkv = t * (heads * d_qk + kv_saved * d_qk + kv_saved * d_v) * a
    parts.append(
        Part(
            "q, k, v",
            qkv,
            f"t x (H d_qk + {'H' if eager else 'KVH'} (d_qk + d_v)) x a = {t:,} x ({heads} x "
            f"{d_qk} + {kv_saved} x ({d_qk} + {d_v})) x {a}",
        )
    )
    parts.append(
        Part(
            "attention output",
            t * heads * d_v * a,
            f"t x H x d_v x a = {t:,} x {heads} x {d_v} x {a}",
        )
    )
    if eager and setup.recompute != "selective":
        scores = b * heads * s * s
        # T5 adds its fp32 relative position bias to every layer's scores, as a mask does
        biased = causal or spec.position_type == "relative"
        per_score = eager_softmax_bytes(spec, setup.precision, masked=biased)
        if spec.attn_logit_softcap is not None:
            parts.append(
                Part(
                    "softcap tanh (s x s)",
                    scores * a,
                    f"tanh(scores / cap) kept: B x H x S x S x a = {b} x {heads} x {s:,} x "
                    f"{s:,} x {a}",
                )
            )
        parts.append(
            Part(
                "softmax (s x s)",
                scores * per_score,
                f"B x H x S x S x {per_score} = {b} x {heads} x {s:,} x {s:,} x {per_score}",
            )
        )
    elif not eager:
        parts.append(
            Part("logsumexp", b * heads * s * FP32, f"B x H x S x 4 = {b} x {heads} x {s:,} x 4")
        )
        if masked:
            parts.append(
                Part(
                    "sliding-window mask",
                    b * s * s * a,
                    f"B x S x S x a = {b} x {s:,} x {s:,} x {a} (window {window} < S)",
                )
            )
    return parts


def mlp_saved(spec: ModelSpec, setup: TrainSetup, *, moe: bool) -> list[Part]:
    """What one MLP sublayer saves, its input aside (a = compute bytes, f per tp rank).

    Dense gated (SwiGLU/GeGLU): gate and up outputs, the activation output and the product:
    ``4 x t x f x a``. Plain: up output and activation output ``2 x t x f x a``; with ReLU
    (which saves its output, not its input) ``t x f x a`` (measured on T5).
    MoE (transformers 5 ``grouped_mm`` experts, measured on Mixtral): router softmax in fp32
    ``t x E x 4``; top-k weights ``2 x t x k x 4`` and int64 indices/permutations
    ``4 x t x k x 8``; per routed token row: the gathered input ``t k h a``, the fused gate_up
    output ``t k 2 f_e a``, activation and product ``2 t k f_e a``, the expert output
    ``t k h a``; shared experts as a dense MLP. Llama 4's dense reference MoE
    (``Llama4TextMoe``) runs every token through every expert: E t rows, and its router keeps
    the fp32 sigmoid ``t E 4``, the score column ``t E a`` and the top-k indices ``t k 8``.
    """
    t = setup.tokens
    a = compute_bytes(setup.precision)
    if not moe:
        f = -(-spec.intermediate_size // setup.tp)
        mats = 4 if spec.mlp_gated else 2
        if not spec.mlp_gated and spec.activation == "relu":
            mats = 1  # ReLU keeps only its output, the down projection's input (T5, OPT)
        if spec.family in T5_NORM_FAMILIES and setup.precision == "bf16-mixed":
            # T5DenseActDense casts the hidden state to wo's fp32 weight dtype: autocast
            # then keeps a fresh bf16 copy for wo (measured)
            mats += 1
        return [Part("mlp", mats * t * f * a, f"{mats} x t x f x a = {mats} x {t:,} x {f} x {a}")]
    experts = int(spec.num_experts or 0)
    k = int(spec.num_experts_per_token or 0)
    h = spec.hidden_size
    f = -(-spec.expert_width // setup.tp)
    up = 2 * f if spec.mlp_gated else f
    rows = t * k
    router = t * experts * FP32 + rows * (2 * FP32 + 4 * INT64) + t * FP32 + experts * FP32
    if spec.moe_dense_reference:
        # Llama4TextMoe: every token runs through every expert (bmm over E x t rows scaled
        # by the sigmoid scores, -inf outside the top k): the fp32 sigmoid ``t E 4``, the
        # score column ``t E a`` and the top-k indices ``t k 8`` (measured)
        rows = t * experts
        router = t * experts * FP32 + rows * a + t * k * INT64
        if setup.precision == "bf16-mixed":
            # the repeated fp32 input is kept by the score multiply (the bmm keeps its cast)
            router += rows * h * (FP32 - a)
    routed = rows * (2 * h + up + (2 * f if spec.mlp_gated else f)) * a
    parts = [
        Part("router", router, f"t x E x 4 + t x k x 40 = {t:,} x {experts} x 4 + {rows:,} x 40"),
        Part(
            "routed experts",
            routed,
            f"t x k x (2 h + {'4' if spec.mlp_gated else '2'} f_e) x a = {rows:,} x (2 x {h} + "
            f"{'4' if spec.mlp_gated else '2'} x {f}) x {a}",
        ),
    ]
    if spec.shared_expert_width:
        fs = -(-spec.shared_expert_width // setup.tp)
        mats = 4 if spec.mlp_gated else 2
        parts.append(Part("shared experts", mats * t * fs * a, f"{mats} x t x f_s x a"))
    return parts


def _fused_gate_up(spec: ModelSpec, setup: TrainSetup) -> bool:
    """A fused gate/up projection (``mlp.gate_up_proj``) among the layer tensors (each
    distinct layer plan looked at once)."""
    return any(
        t.name.endswith("mlp.gate_up_proj.weight")
        for _, plan in spec.layer_groups
        for t in shapes_tensors(layer_shapes(spec, plan))
    )


def _layer_weight_elements(
    spec: ModelSpec, setup: TrainSetup, moe: bool, stack: str | None = None, kind: str = "full"
) -> int:
    """Matmul and convolution weight elements of one block of this kind (autocast caches a
    bf16 copy of each; Mamba's 2-D ``A_log`` is read in fp32, not cast)."""
    tensors = _local_tensors(spec, setup)
    stack = stack or ("decoder" if spec.architecture != "encoder" else "encoder")
    index = 0
    if stack == "decoder":
        kinds, flags = spec.layer_kinds, spec.moe_layer_flags
        index = next(
            (i for i in range(spec.num_layers) if flags[i] == moe and kinds[i] == kind),
            next((i for i in range(spec.num_layers) if flags[i] == moe), 0),
        )
    prefix = f"{stack}.layers.{index}."
    return sum(
        t.numel
        for t in tensors
        if t.name.startswith(prefix)
        and len(t.shape) >= 2
        and "norm" not in t.name
        and not t.name.endswith("A_log")
    )


def cross_attention_saved(spec: ModelSpec, setup: TrainSetup) -> list[Part]:
    """What the cross-attention of one decoder block saves (BART, measured): q from the
    decoder (t x H d x a), k and v projected from the encoder output (t_enc x KVH d x a each),
    SDPA's output and logsumexp, as in self-attention; the encoder runs on as many tokens as
    the decoder here."""
    b, s = setup.micro_batch, setup.seq
    t = b * s
    a = compute_bytes(setup.precision)
    heads = spec.num_heads // setup.tp
    kv = max(1, spec.kv_heads // setup.tp)
    d = spec.resolved_head_dim
    saved = t * (2 * heads + 2 * kv) * d * a
    eager = setup.attention_impl == "eager"
    if eager:
        saved += t * 2 * (heads - kv) * d * a  # K/V repeated to every head
        saved += b * heads * s * s * eager_softmax_bytes(spec, setup.precision)
    else:
        saved += b * heads * s * FP32
    return [Part("cross-attention", saved, f"q, k, v, output over t = {t:,} (+ scores)")]


def block_saved(
    spec: ModelSpec, setup: TrainSetup, *, kind: str, moe: bool, stack: str | None = None
) -> list[Part]:
    """Everything one pre-norm block saves with recompute none/selective: two norms, the
    residual stream, attention, MLP, and under bf16-mixed the autocast copies (each linear
    casts its fp32 input to bf16 and keeps it; the weight cache keeps a bf16 copy of every
    matmul weight). Its input is counted by the block before it (or the embeddings)."""
    t, h = setup.tokens, spec.hidden_size
    r = residual_bytes(setup.precision)
    a = compute_bytes(setup.precision)
    mixed = setup.precision == "bf16-mixed"
    parallel = kind.endswith("+mamba2")  # Falcon-H1: Mamba-2 beside the attention
    pattern = kind.split("+")[0]
    window = spec.sliding_window if pattern == "sliding" else None
    if pattern == "chunked":
        window = spec.attention_chunk_size
    stack = stack or ("encoder" if spec.architecture == "encoder" else "decoder")
    cross = stack == "decoder" and spec.architecture == "encoder-decoder"
    mlp = _has_mlp(spec, kind)
    n = (3 if cross else 2) if mlp else 1
    parts: list[Part] = []
    norms = n * _norm_saved(spec, t, h, r)
    parts.append(Part("norms", norms, f"{n} norms over t x h = {t:,} x {h}"))
    if not mixed:
        # Falcon-H1 multiplies the norm output for each mixer (attention_in_multiplier,
        # ssm_in_multiplier): two copies kept instead of it
        n_out = n + 1 if parallel else n
        parts.append(
            Part(
                "norm outputs",
                n_out * t * h * a,
                f"{n_out} x t x h x a = {n_out} x {t:,} x {h} x {a}",
            )
        )
    else:
        mixer_casts = mixer_input_casts(kind) if kind in MIXER_SAVED else 3
        if parallel:
            mixer_casts += mixer_input_casts("mamba2")
        # a fused gate/up projection (Granite-4.0-H's shared_mlp.input_linear, Phi-3) reads
        # its input once
        fused = _fused_gate_up(spec, setup)
        mlp_casts = (2 if spec.mlp_gated and not moe and not fused else 1) if mlp else 0
        if mlp and moe and spec.shared_expert_width and not fused:
            # a shared expert reads the MLP input beside the router (Llama 4: measured)
            mlp_casts += 2 if spec.mlp_gated else 1
        consumers = mixer_casts + mlp_casts + (3 if cross else 0)
        parts.append(
            Part(
                "autocast input copies",
                consumers * t * h * 2,
                f"{consumers} linears x t x h x 2 = {consumers} x {t:,} x {h} x 2",
            )
        )
        weights = _layer_weight_elements(spec, setup, moe, stack, kind)
        parts.append(Part("autocast weight copies", weights * 2, f"{weights:,} x 2 B"))
    if _norm_input_saved(spec, r):
        parts.append(Part("residual stream", n * t * h * r, f"{n} x t x h x {r} (norm inputs)"))
    if cross:
        parts += cross_attention_saved(spec, setup)
        if setup.attention_impl == "sdpa":
            parts.append(
                Part(
                    "decoder causal mask",
                    setup.micro_batch * setup.seq * setup.seq * a,
                    "B x S x S x a: the encoder-decoder's decoder passes an explicit mask "
                    "(SDPA keeps it in the compute dtype)",
                )
            )
    if spec.norm_position == "sandwich":
        # the norms after attention and after the MLP read the projections' outputs (compute
        # dtype): an fp32 output is kept by the norm, a bf16 one is copied to fp32 inside it
        post = 2 * (_norm_saved(spec, t, h, a) + (t * h * a if _norm_input_saved(spec, a) else 0))
        parts.append(Part("sandwich post-norms", post, f"2 norms over t x h x {a} outputs"))
    if kind in MIXER_SAVED:
        saved = MIXER_SAVED[kind](
            spec, batch=setup.micro_batch, seq=setup.seq, precision=setup.precision
        )
        parts += [Part(p.name, p.bytes, p.formula) for p in saved]
    else:
        rope = _kind_has_rope(spec, kind) if stack == "decoder" else True
        parts += attention_saved(
            spec,
            setup,
            window=window,
            causal=stack != "encoder",
            rope=rope,
            chunked=pattern == "chunked",
        )
    if parallel:
        saved = MIXER_SAVED["mamba2"](
            spec, batch=setup.micro_batch, seq=setup.seq, precision=setup.precision
        )
        parts += [Part(f"mamba2 {p.name}", p.bytes, p.formula) for p in saved]
    if mlp:
        parts += mlp_saved(spec, setup, moe=moe)
    return parts


def _kind_has_rope(spec: ModelSpec, kind: str) -> bool:
    """Whether the layers of this kind rotate q and k (NoPE layers do not: Llama 4's full
    layers); only looked up for models with per-layer positions."""
    if spec.layer_positions is None:
        return True
    return any(run.plan.rope != "none" for run in spec.main_stack_runs() if run.plan.kind == kind)


def _has_mlp(spec: ModelSpec, kind: str) -> bool:
    """Whether blocks of this kind have an MLP (pure Mamba blocks have none: the layer
    plan's ``mlp == "none"``)."""
    if kind not in ("mamba", "mamba2"):
        return True
    return any(run.plan.mlp != "none" for run in spec.main_stack_runs() if run.plan.kind == kind)


def _layer_kinds(spec: ModelSpec, setup: TrainSetup) -> list[tuple[str, bool, int]]:
    """(attention kind, MoE?, count) for the layers on the first pipeline stage, O(runs)."""
    left = -(-spec.num_layers // setup.pp)
    counts: dict[tuple[str, bool], int] = {}
    for run in spec.main_stack_runs():
        if left <= 0:
            break
        key = (run.plan.kind, run.plan.mlp == "moe")
        counts[key] = counts.get(key, 0) + min(run.count, left)
        left -= run.count
    return [(kind, moe, n) for (kind, moe), n in counts.items()]


@dataclass(frozen=True)
class Activations:
    """Bytes saved for backward at the end of the forward pass, by layer kind and the rest."""

    layers: tuple[LayerActivations, ...]
    other: tuple[Part, ...]
    logits_bytes: int
    """The logits (t x V x a): alive while the loss is computed, then freed."""
    loss_temp_bytes: int
    """Loss temporaries beyond the saved log-softmax: the fp32 upcast of bf16 logits."""
    loss_backward_bytes: int
    """At the start of backward: the grads of the log-softmax output and of its input."""
    in_flight: int = 1
    """Micro-batches whose activations a pipeline stage holds (1F1B: pp on the first stage)."""

    @property
    def total(self) -> int:
        per_micro = sum(layer.total for layer in self.layers) + sum(p.bytes for p in self.other)
        return per_micro * self.in_flight


def loss_bytes(spec: ModelSpec, precision: str) -> int:
    """Bytes per logit of the loss's log-softmax: transformers' causal-LM loss upcasts the
    logits to fp32 (``ForCausalLMLoss``: ``logits.float()``); BART's seq2seq loss takes
    ``CrossEntropyLoss`` on the logits as they are (bf16 in a bf16 model; CPU autocast runs
    the log-softmax in fp32). Measured with MemTracker."""
    if spec.architecture == "encoder-decoder" and precision == "bf16":
        return 2
    return FP32


def activations(spec: ModelSpec, setup: TrainSetup) -> Activations:
    """Activations on one device at the end of one micro-batch's forward pass.

    Besides the blocks: the embedding output (t x h x r, kept by the first norm unless it is
    a bf16 RMSNorm, which keeps its fp32 copy); RoPE cos and sin (``2 x S x d x r``); the
    final norm and its output; under bf16-mixed the LM head's bf16 input and weight copies;
    the loss: the fp32 log-softmax ``t x V x 4``, the padded int64 labels ``B (S + 1) x 8``.
    With recompute full each block keeps only its input ``t x h x r`` (and the int64
    position ids, ``S x 8``, once).
    """
    t, h, s, b = setup.tokens, spec.hidden_size, setup.seq, setup.micro_batch
    r = residual_bytes(setup.precision)
    a = compute_bytes(setup.precision)
    v = -(-spec.vocab_size // setup.tp)
    mixed = setup.precision == "bf16-mixed"
    layers: list[LayerActivations] = []
    other: list[Part] = []
    full = setup.recompute == "full"
    if spec.architecture == "encoder-decoder":
        depth = int(spec.num_encoder_layers or 0)
        if full:
            parts = [Part("block input", t * h * r, f"t x h x r = {t:,} x {h} x {r}")]
        else:
            parts = block_saved(spec, setup, kind="full", moe=False, stack="encoder")
        layers.append(LayerActivations("encoder", depth, sum(p.bytes for p in parts), tuple(parts)))
    for kind, moe, count in _layer_kinds(spec, setup):
        label = f"{kind}{' moe' if moe else ''}"
        if spec.architecture == "encoder-decoder":
            label = f"decoder {label}"
        if full:
            parts = [Part("block input", t * h * r, f"t x h x r = {t:,} x {h} x {r}")]
        else:
            parts = block_saved(spec, setup, kind=kind, moe=moe)
        layers.append(LayerActivations(label, count, sum(p.bytes for p in parts), tuple(parts)))
    stacks = 2 if spec.architecture == "encoder-decoder" else 1
    if spec.architecture == "encoder-decoder" and spec.norm_position == "pre":
        # T5: the encoder's final norm (its input, internals and output: the input of every
        # cross-attention's k and v projections; with recompute full counted below)
        enc = _norm_saved(spec, t, h, r) + (t * h * r if _norm_input_saved(spec, r) else 0)
        enc += t * h * a if not (mixed or full) else 0
        other.append(Part("encoder final norm", enc, f"norm over t x h = {t:,} x {h} + output"))
    if full and spec.position_type == "relative":
        # the position bias (1 x H x S x S) is an input of every checkpointed block, one per
        # stack (measured exact in fp32; in bf16 one of the two, within 1.5% of the total)
        heads = spec.num_heads // setup.tp
        stacks_bias = 2 if spec.architecture == "encoder-decoder" else 1
        bias = stacks_bias * heads * s * s * r
        other.append(Part("position bias", bias, f"{stacks_bias} x H x S x S x r, H = {heads}"))
    if spec.position_type == "relative":
        # T5's relative attention bias: the int64 bucket of every query-key pair, per stack
        other.append(
            Part(
                "relative position buckets",
                stacks * s * s * INT64,
                f"{stacks} x S x S x 8 = {stacks} x {s:,} x {s:,} x 8",
            )
        )
    if spec.embedding_norm:
        # under recompute full the norm's output is the first block's input, counted there
        output = 0 if (mixed or full) else t * h * a
        emb = stacks * (t * h * r + _norm_saved(spec, t, h, r) + output)
        other.append(
            Part(
                "embedding norm",
                emb,
                "sum of embeddings (t x h x r) + norm internals"
                + ("" if mixed else " + its output")
                + f", t = {t:,}",
            )
        )
    if full and spec.architecture == "encoder" and not mixed:
        other.append(
            Part("last block output", t * h * a, f"the encoder's output, t x h x a = {t:,} x {h}")
        )
    if spec.pooler:
        pooled = b * h * a + (h * h * 2 + b * h * 2 if mixed else 0)
        other.append(
            Part(
                "pooler",
                pooled,
                "tanh output B x h x a" + (" + autocast weight and input copies" if mixed else ""),
            )
        )
    if spec.type_vocab_size:
        other.append(Part("token type ids", s * INT64, f"S x 8 = {s:,} x 8 (the buffer's rows)"))
    if full and spec.architecture == "encoder-decoder":
        mask = 1 if setup.attention_impl == "sdpa" else r
        other.append(
            Part(
                "encoder output + decoder mask",
                t * h * r + b * s * s * mask,
                f"t x h x r + B x S x S x {mask}: inputs of every checkpointed decoder block "
                "(the mask is bool for sdpa)",
            )
        )
    if full and spec.position_type == "rope":
        other.append(Part("position ids", s * INT64, f"S x 8 = {s:,} x 8"))
        chunk = spec.attention_chunk_size
        if (
            setup.attention_impl == "sdpa"
            and chunk is not None
            and chunk <= s
            and any(k == "chunked" for k, _, _ in _layer_kinds(spec, setup))
        ):
            other.append(
                Part(
                    "chunked mask",
                    b * s * s,
                    f"B x S x S bool = {b} x {s:,} x {s:,} (input of every checkpointed block)",
                )
            )
        if setup.attention_impl == "eager" and spec.architecture == "decoder":
            masks = len({k for k, _, _ in _layer_kinds(spec, setup) if k not in MIXER_SAVED})
            other.append(
                Part(
                    "causal masks",
                    masks * b * s * s * r,
                    f"{masks} pattern(s) x B x S x S x r = {masks} x {b} x {s:,} x {s:,} x {r} "
                    "(inputs of every checkpointed block, so kept)",
                )
            )
    elif _norm_input_saved(spec, r) and not spec.embedding_norm and not full:
        # (with recompute full the embedding output is the first block's input, counted)
        other.append(Part("embedding output", t * h * r, f"t x h x r = {t:,} x {h} x {r}"))
    if spec.position_type == "rope" and spec.family in COMPLEX_ROPE_FAMILIES:
        d = _rope_dim(spec)
        other.append(
            Part("rope freqs_cis", s * d * FP32, f"S x d/2 complex64 = {s:,} x {d // 2} x 8")
        )
    elif spec.position_type == "rope":
        d = _rope_dim(spec)
        other.append(Part("rope cos/sin", 2 * s * d * r, f"2 x S x d x r = 2 x {s:,} x {d} x {r}"))
    last_stage = setup.pp == 1
    if spec.family in RESIDUAL_FP32_FAMILIES and r != FP32:
        # the fp32 stream: the final norm reads it as it is (keeping t h 4, not a bf16
        # input), and under recompute full every block after the first keeps an fp32 input
        later = -(-spec.num_layers // setup.pp) - 1 if full else 0
        kept = (later + (1 if last_stage else 0)) * t * h * (FP32 - r)
        other.append(
            Part(
                "fp32 residual stream",
                kept,
                f"(residual_in_fp32) {later + (1 if last_stage else 0)} x t x h x (4 - {r})",
            )
        )
    logits = loss_temp = loss_backward = 0
    if spec.position_type == "learned" and spec.position_offset:
        other.append(
            Part(
                "position ids",
                stacks * s * INT64,
                f"{stacks} x S x 8: positions + offset {spec.position_offset} per stack",
            )
        )
    if last_stage and spec.lm_head:
        if spec.final_norm:
            final = _norm_saved(spec, t, h, r)
            if full and _norm_input_saved(spec, r):
                final += t * h * r  # the last block's output (else counted in its residual)
            final += t * h * 2 if mixed else t * h * a
            other.append(
                Part("final norm", final, f"norm internals + input/output over t x h = {t:,} x {h}")
            )
        elif mixed:
            other.append(
                Part("lm_head autocast input copy", t * h * 2, f"t x h x 2 = {t:,} x {h} x 2")
            )
        elif full:
            other.append(Part("last block output", t * h * a, f"t x h x a = {t:,} x {h} x {a}"))
        if mixed:
            other.append(
                Part("lm_head autocast weight copy", v * h * 2, f"V x h x 2 = {v:,} x {h} x 2")
            )
        if spec.final_logit_softcap is not None:
            other.append(Part("logit softcap tanh", t * v * a, f"t x V x a = {t:,} x {v:,} x {a}"))
        lsm = loss_bytes(spec, setup.precision)
        other.append(
            Part("log-softmax (loss)", t * v * lsm, f"t x V x {lsm} = {t:,} x {v:,} x {lsm}")
        )
        if spec.architecture == "encoder-decoder":
            # BartForConditionalGeneration: CrossEntropyLoss over labels.view(-1)
            other.append(Part("labels", t * INT64 + 2 * FP32, f"t x 8 = {t:,} x 8"))
        else:
            # ForCausalLMLoss pads the labels by one position to shift them
            other.append(
                Part(
                    "labels",
                    b * (s + 1) * INT64 + 2 * FP32,
                    f"B x (S + 1) x 8 = {b} x {s + 1:,} x 8",
                )
            )
        extra = spec.final_logit_softcap is not None or spec.lm_head_bias
        logits = t * v * a * (2 if extra else 1)
        loss_temp = t * v * FP32 if a != FP32 and lsm == FP32 else 0
        loss_backward = 2 * t * v * lsm
    in_flight = min(setup.pp, setup.grad_accum) if setup.pp > 1 else 1
    return Activations(
        layers=tuple(layers),
        other=tuple(other),
        logits_bytes=logits,
        loss_temp_bytes=loss_temp,
        loss_backward_bytes=loss_backward,
        in_flight=in_flight,
    )


# ---- FSDP buffers and the peak ---------------------------------------------------------------


@dataclass(frozen=True)
class FsdpBuffers:
    """What FSDP2 holds unsharded on one rank (bytes); zeros without ``--zero 3``."""

    root_bytes: int
    """The root module's parameters (embeddings, final norm, LM head): gathered at the start
    of forward and, as FSDP2 does for the root, not resharded until the end of backward."""
    block_bytes: int
    """The largest block's parameters: one all-gather buffer of this size per block."""

    @property
    def all_gather_bytes(self) -> int:
        """Steady state in a forward or backward pass: the root plus two blocks (the one
        running and the one prefetched, ``fully_shard``'s default)."""
        return self.root_bytes + 2 * self.block_bytes


def fsdp_buffers(spec: ModelSpec, setup: TrainSetup) -> FsdpBuffers:
    """FSDP2 ``fully_shard`` on each block and on the root (``--zero 3``): the unsharded sizes
    of the root group and of the largest block group, in the parameter dtype. Measured with
    FSDPMemTracker on a fake 8-rank process group (tests/test_train_fsdp.py)."""
    if setup.zero < 3:
        return FsdpBuffers(0, 0)
    groups: dict[str, int] = {}
    for t in _local_tensors(spec, setup):
        parts = t.name.split(".")
        key = ".".join(parts[:3]) if len(parts) > 3 and parts[1] == "layers" else "root"
        groups[key] = groups.get(key, 0) + t.numel
    pbytes = param_bytes(setup.precision)
    block = max((v for k, v in groups.items() if k != "root"), default=0)
    return FsdpBuffers(groups.get("root", 0) * pbytes, block * pbytes)


@dataclass(frozen=True)
class TrainMemory:
    """Per-device memory of one training step, its parts and its peak."""

    setup: TrainSetup
    state: StateMemory
    activations: Activations
    buffers_bytes: int
    fsdp: FsdpBuffers
    phases: dict[str, int]
    formulas: dict[str, str] = field(default_factory=dict)

    @property
    def peak_bytes(self) -> int:
        return max(self.phases.values())

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=lambda k: self.phases[k])


def mlp_backward_transient(spec: ModelSpec, setup: TrainSetup) -> int:
    """The first block's backward without a loss in front of it (an encoder): the gradient of
    the last MLP's hidden activation, ``t x f x a`` (measured on BertModel)."""
    f = -(-spec.intermediate_size // setup.tp)
    return setup.tokens * f * compute_bytes(setup.precision)


def attention_backward_scores(spec: ModelSpec, setup: TrainSetup) -> int:
    """Score-sized tensors alive at the peak of eager attention's backward (softmax output,
    its cast, and their gradients), measured with MemTracker: ``8 x B x H x S x S`` bytes for
    the families that take the softmax in fp32 (LlamaForCausalLM, fp32, bf16 and bf16-mixed),
    ``3 x a`` per score for those that keep it in the compute dtype (BertModel: the softmax
    output, its gradient and the scores' gradient). sdpa and selective recompute keep no
    s x s tensor: 0."""
    if setup.attention_impl != "eager" or setup.recompute == "selective":
        return 0
    heads = spec.num_heads // setup.tp
    per_score = (
        3 * compute_bytes(setup.precision) if spec.family in EAGER_SOFTMAX_IN_DTYPE_FAMILIES else 8
    )
    return per_score * setup.micro_batch * heads * setup.seq * setup.seq


def _head_and_block_grad_bytes(spec: ModelSpec, setup: TrainSetup) -> int:
    """Gradient bytes written when the second-to-last block's attention runs its backward:
    the LM head (or the tied embedding), the final norm, the last block, and the MLP, output
    projection and MLP norm of the block before (measured order of MemTracker's GRAD)."""
    tensors = _local_tensors(spec, setup)
    last = spec.num_layers - 1 if setup.pp == 1 else -(-spec.num_layers // setup.pp) - 1
    stack = "encoder" if spec.architecture == "encoder" else "decoder"
    tied = spec.lm_head and spec.tie_word_embeddings

    def counted(name: str) -> bool:
        if spec.parallel_ssm and ".mamba." in name:
            # Falcon-H1: the Mamba-2 beside the attention runs its backward after it
            return name.startswith(f"{stack}.layers.{last}.") and ".out_proj." in name
        if name.startswith(f"{stack}.layers.{last}.") or name.startswith(
            ("lm_head", f"{stack}.norm")
        ):
            return True
        if tied and name == "embed_tokens.weight":
            return True
        if last >= 1 and name.startswith(f"{stack}.layers.{last - 1}."):
            early = (".q_proj", ".k_proj", ".v_proj", "q_norm", "k_norm", ".norm_0.")
            if ".mamba." in name:  # a Mamba block: only its out_proj's gradient is written
                return ".out_proj." in name
            return not any(part in name for part in early)
        return False

    elements = sum(
        (shard_numel(t, setup) if setup.zero >= 2 else t.numel) for t in tensors if counted(t.name)
    )
    return elements * param_bytes(setup.precision)


def _rope_dim(spec: ModelSpec) -> int:
    """Channels RoPE rotates per head: ``rotary_dim`` (partial rotary: Qwen3-Next, NeoX),
    MLA's ``qk_rope_head_dim``, else the q/k head width."""
    if spec.is_mla:
        return int(spec.qk_rope_head_dim or 0)
    return spec.rotary_dim or spec.qk_head_dim


def buffer_bytes(spec: ModelSpec, precision: str = "fp32") -> int:
    """Non-parameter buffers: RoPE's ``inv_freq`` and ``original_inv_freq`` (transformers 5
    ``LlamaRotaryEmbedding``), d/2 fp32 values each; a scaled embedding's ``embed_scale``
    scalar (parameter dtype, Gemma); BERT-style embeddings register int64 ``position_ids``
    (and ``token_type_ids``) of ``max_positions`` entries."""
    total = 0
    if spec.position_type == "rope":
        total += 2 * (_rope_dim(spec) // 2) * FP32
    if spec.family in MUP_VECTOR_FAMILIES:
        # FalconH1Mixer's mup_vector buffer (1 x 1 x in_proj width, parameter dtype) per layer
        width = 2 * int(spec.ssm_inner_size or 0) + 2 * spec.ssm_groups * int(
            spec.ssm_state_size or 0
        )
        width += int(spec.ssm_num_heads or 0)
        total += spec.num_layers * width * param_bytes(precision)
    if spec.scale_embeddings and spec.family in FP32_WEIGHT_NORM_FAMILIES:
        total += param_bytes(precision)
    if spec.position_type == "learned" and spec.embedding_norm:
        if spec.architecture == "encoder-decoder":
            # BartForConditionalGeneration's final_logits_bias is a buffer, not a parameter
            total += spec.vocab_size * param_bytes(precision)
        else:
            tables = 2 if spec.type_vocab_size else 1
            total += tables * int(spec.max_position_embeddings or 0) * INT64
    return total


def _mixer_free_parts(spec: ModelSpec, setup: TrainSetup, kind: str, moe: bool) -> int:
    """Of a recomputed mixer block's saved set, what is not the mixer's own (norms, MLP:
    their backward has run, or they are the block's input)."""
    mixer_names = {
        p.name
        for p in MIXER_SAVED[kind](
            spec, batch=setup.micro_batch, seq=setup.seq, precision=setup.precision
        )
    }
    return sum(
        p.bytes for p in block_saved(spec, setup, kind=kind, moe=moe) if p.name not in mixer_names
    )


SCAN_MIXERS = tuple(SCAN_BACKWARD)
"""Mixers whose reference scan's backward is modelled as its own peak phase."""


def _scan_blocks(spec: ModelSpec, setup: TrainSetup) -> list[tuple[str, bool, int]]:
    """(kind, MoE?, layer index) of the first and the last state-space block of the first
    pipeline stage (O(runs))."""
    stop = -(-spec.num_layers // setup.pp)
    found: list[tuple[str, bool, int]] = []
    for run in spec.main_stack_runs():
        if run.start >= stop:
            break
        if run.plan.kind in SCAN_MIXERS:
            plan = (run.plan.kind, run.plan.mlp == "moe")
            if not found:
                found.append((*plan, run.start))
            found[1:] = [(*plan, min(run.stop, stop) - 1)]
    return found


def _grads_after(spec: ModelSpec, setup: TrainSetup, index: int) -> int:
    """Gradient bytes written when block ``index`` (a state-space block) runs its scan's
    backward: the LM head (or tied embedding), the final norm, every later block of the
    stage, and of this block its MLP, MLP norm, out_proj and D (measured order of
    MemTracker's GRAD on MambaForCausalLM)."""
    stop = -(-spec.num_layers // setup.pp)
    tied = spec.lm_head and spec.tie_word_embeddings
    late = (".out_proj.", ".mlp.", ".feed_forward.", ".norm_1.")

    def counted(name: str) -> bool:
        if setup.pp == 1 and name.startswith(("lm_head", "decoder.norm")):
            return True
        if tied and setup.pp == 1 and name == "embed_tokens.weight":
            return True
        if not name.startswith("decoder.layers."):
            return False
        layer = int(name.split(".")[2])
        if index < layer < stop:
            return True
        return layer == index and (any(p in name for p in late) or name.endswith(".D"))

    elements = sum(
        (shard_numel(t, setup) if setup.zero >= 2 else t.numel)
        for t in _local_tensors(spec, setup)
        if counted(t.name)
    )
    return elements * param_bytes(setup.precision)


def _saved_after(spec: ModelSpec, setup: TrainSetup, acts: Activations, index: int) -> int:
    """Activation bytes of the blocks after ``index`` on the stage (freed by their backward
    before block ``index`` runs its own)."""
    stop = -(-spec.num_layers // setup.pp)
    per_layer = {layer.kind: layer.bytes_per_layer for layer in acts.layers}
    freed = 0
    for run in spec.main_stack_runs():
        later = min(run.stop, stop) - max(run.start, index + 1)
        if later > 0:
            label = f"{run.plan.kind}{' moe' if run.plan.mlp == 'moe' else ''}"
            freed += later * per_layer.get(label, 0)
    return freed


def scan_backward_phase(
    spec: ModelSpec, setup: TrainSetup, acts: Activations, held: int
) -> int | None:
    """Memory while a Mamba block's reference scan runs its backward, the larger of the last
    such block (all activations still held) and the first (every later block's gradients
    written, its activations freed): what is held, the gradients written so far
    (``_grads_after``) and the scan's gradients, about as large as what the mixer saved
    (the gradient of each state, of ``exp(A dt)`` and ``dt B x``; measured on
    MambaForCausalLM within a few % at N = 16). With recompute full the block's recomputed
    activations are alive too."""
    best: int | None = None
    for kind, moe, index in _scan_blocks(spec, setup):
        mixer = SCAN_BACKWARD[kind](
            spec, batch=setup.micro_batch, seq=setup.seq, precision=setup.precision
        )
        if setup.recompute == "full":
            mixer += sum(p.bytes for p in block_saved(spec, setup, kind=kind, moe=moe))
        total = (
            held - _saved_after(spec, setup, acts, index) + _grads_after(spec, setup, index) + mixer
        )
        best = total if best is None else max(best, total)
    return best


def train_memory(spec: ModelSpec, setup: TrainSetup) -> TrainMemory:
    """Memory on one device for one steady-state step, and the peak over its phases.

    * end of forward: states + activations + the logits and loss temporaries alive while the
      loss is computed (logits ``t V a``, their fp32 upcast when a = 2);
    * start of backward: states + activations + the fp32 grads of the log-softmax output and
      input (``2 t V 4``);
    * optimizer step: parameters + gradients + states + the step's temporaries (AdamW
      foreach=False: 2 x the largest tensor x state bytes);
    * end of backward: parameters + all gradients + states + the embedding output's grad.
    ``--zero 3`` (FSDP2) adds the unsharded root and one block to forward and backward, and a
    first phase where the root's all-gather buffer and its unsharded copy coexist with the
    first block's buffer (``2 R + 2 K``, measured).
    accelerate's estimate is the largest of {model, grads, optimizer, step}, not this sum.
    """
    check_setup(spec, setup)
    state = state_memory(spec, setup)
    acts = activations(spec, setup)
    buffers = buffer_bytes(spec, setup.precision)
    gathered = fsdp_buffers(spec, setup)
    root, block_params = gathered.root_bytes, gathered.block_bytes
    base = state.parameters + state.optimizer_states + buffers
    pbytes = param_bytes(setup.precision)
    opt_temp = 2 * state.largest_tensor * pbytes if setup.optimizer == "adamw" else 0
    t, h = setup.tokens, spec.hidden_size
    fsdp = root + block_params
    phases = {
        "forward": base + fsdp + acts.total + acts.logits_bytes + acts.loss_temp_bytes,
        "backward start": base
        + fsdp
        + acts.total
        + max(acts.loss_backward_bytes, mlp_backward_transient(spec, setup)),
        "backward end": base + 2 * root + state.gradients + t * h * residual_bytes(setup.precision),
        "optimizer step": base + state.gradients + opt_temp,
    }
    if setup.zero >= 3:
        first = sum(p.bytes for p in acts.other if p.name in ("embedding output", "rope cos/sin"))
        phases["forward start (all-gathers)"] = base + 2 * root + 2 * block_params + first
    # the last block's attention backward: gradients of the LM head and about two blocks
    # written, every activation still held (the loss's log-softmax stays alive until the loss
    # tensor is released: measured), and eager attention's score tensors at their peak
    grads_so_far = _head_and_block_grad_bytes(spec, setup)
    scores = attention_backward_scores(spec, setup)
    saved_scores = 0
    if setup.recompute != "full" and scores:
        saved_scores = max(
            (
                p.bytes
                for kind, moe, _ in _layer_kinds(spec, setup)
                for p in block_saved(spec, setup, kind=kind, moe=moe)
                if p.name == "softmax (s x s)"
            ),
            default=0,
        )
    recomputed = 0
    if setup.recompute == "full":
        # the recomputed block's mixer activations are alive when its backward starts; for a
        # state-space or linear-attention mixer that is its whole saved set (the reference
        # scans keep per-chunk states), for attention its q, k, v and output
        recomputed = max(
            sum(
                p.bytes
                for p in block_saved(spec, setup, kind=kind, moe=moe)
                if kind in MIXER_SAVED or p.name in ("q, k, v", "attention output", "qk_norm")
            )
            - (_mixer_free_parts(spec, setup, kind, moe) if kind in MIXER_SAVED else 0)
            for kind, moe, _ in _layer_kinds(spec, setup)
        )
    freed_mlp = 0
    if setup.recompute != "full":
        freed_mlp = min(
            sum(
                p.bytes
                for p in block_saved(spec, setup, kind=kind, moe=moe)
                if p.name in ("mlp", "router", "routed experts", "shared experts")
            )
            for kind, moe, _ in _layer_kinds(spec, setup)
        )
    phases["backward, last block attention"] = (
        base
        + fsdp
        + block_params
        + acts.total
        - freed_mlp
        + grads_so_far
        + scores
        - saved_scores
        + recomputed
    )
    scan = scan_backward_phase(spec, setup, acts, base + fsdp + block_params + acts.total)
    if scan is not None:
        phases["backward, Mamba scan"] = scan
        if all(kind in SCAN_MIXERS for kind, _, _ in _layer_kinds(spec, setup)):
            # no attention block: the attention-backward phase does not happen
            del phases["backward, last block attention"]
    return TrainMemory(
        setup=setup,
        state=state,
        activations=acts,
        buffers_bytes=buffers,
        fsdp=gathered,
        phases=phases,
    )


# ---- FLOPs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainFlops:
    """FLOPs of one optimizer step (all micro-batches, all ranks) and per device."""

    forward: FlopCount
    per_micro_batch: int
    per_step: int
    per_device: int
    multiplier: float
    recompute_flops: int


def train_flops(spec: ModelSpec, setup: TrainSetup) -> TrainFlops:
    """Matmul FLOPs of one step: ``training_flops`` per micro-batch (3 x forward: backward is
    2 x forward, Narayanan et al. 2021), 4 x forward with full recompute; selective recompute
    adds the attention core (QK^T and AV) once more (Korthikanti et al. 2022). Times
    grad_accum x dp micro-batches per step; per device divided over dp x tp x pp."""
    forward = forward_flops(spec, setup.seq, batch=setup.micro_batch)
    recompute_flops = 0
    if setup.recompute == "full":
        recompute_flops = forward.total
    elif setup.recompute == "selective":
        for layer in forward.layers:
            recompute_flops += layer.attention
    per_micro = 3 * forward.total + recompute_flops
    per_step = per_micro * setup.grad_accum * setup.dp
    return TrainFlops(
        forward=forward,
        per_micro_batch=per_micro,
        per_step=per_step,
        per_device=per_step // setup.devices,
        multiplier=per_micro / forward.total if forward.total else 0.0,
        recompute_flops=recompute_flops,
    )


# ---- time on a device and what fits --------------------------------------------------------

MAX_FIT_MICRO_BATCH = 1 << 16
MAX_FIT_SEQ = 1 << 24
MAX_FIT_DP = 1 << 16


def compute_dtype(precision: str) -> str:
    """The dtype whose peak FLOP/s a step runs at: bf16 for bf16 and bf16-mixed, else fp32."""
    return "fp32" if precision == "fp32" else "bf16"


@dataclass(frozen=True)
class StepTime:
    """Roofline time of one step on one device (compute-bound, at 100% of peak) and the model
    FLOPs utilisation it implies: model FLOPs (3 x forward, recomputation excluded) over the
    executed FLOPs (PaLM's MFU, Chowdhery et al. 2022, appendix B)."""

    seconds: float
    peak_flops_per_s: float
    mfu: float


def step_time(flops: TrainFlops, peak_flops_per_s: float) -> StepTime:
    """``seconds = per-device executed FLOPs / peak``; ``MFU = 3 x forward / executed``."""
    seconds = flops.per_device / peak_flops_per_s
    model = 3 * flops.forward.total * flops.per_step // max(1, flops.per_micro_batch)
    mfu = model / flops.per_step if flops.per_step else 0.0
    return StepTime(seconds=seconds, peak_flops_per_s=peak_flops_per_s, mfu=mfu)


@dataclass(frozen=True)
class TrainFit:
    """The largest micro-batch, the longest sequence and the smallest dp whose step peak fits
    in ``budget_bytes`` (None when even the smallest does not fit or dp cannot help)."""

    budget_bytes: int
    fits: bool
    max_micro_batch: int | None
    max_seq: int | None
    min_dp: int | None


def _peak(spec: ModelSpec, setup: TrainSetup) -> int:
    return train_memory(spec, setup).peak_bytes


def _largest(lo: int, hi: int, ok: Callable[[int], bool]) -> int | None:
    """Largest n in [lo, hi] with ok(n), for a monotone ok (True then False)."""
    if not ok(lo):
        return None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def train_fit(spec: ModelSpec, setup: TrainSetup, budget_bytes: int) -> TrainFit:
    """Solve the peak for each knob alone, the others as given: micro-batch and sequence by
    bisection (the peak grows with both); dp over powers of two (only ZeRO / FSDP shard with
    dp: with ``--zero 0`` the answer is None unless dp = 1 already fits)."""
    if budget_bytes <= 0:
        raise UsageError(f"--budget must be positive, got {budget_bytes}")

    def fits(candidate: TrainSetup) -> bool:
        return _peak(spec, candidate) <= budget_bytes

    max_mb = _largest(
        1, MAX_FIT_MICRO_BATCH, lambda b: fits(dataclasses.replace(setup, micro_batch=b))
    )
    max_seq = _largest(1, MAX_FIT_SEQ, lambda s: fits(dataclasses.replace(setup, seq=s)))
    min_dp: int | None = None
    dp = 1
    while dp <= MAX_FIT_DP:
        candidate = dataclasses.replace(setup, dp=dp, zero=setup.zero if dp > 1 else 0)
        try:
            check_setup(spec, candidate)
        except UsageError:
            dp *= 2
            continue
        if fits(candidate):
            min_dp = dp
            break
        if setup.zero == 0:
            break
        dp *= 2
    return TrainFit(
        budget_bytes=budget_bytes,
        fits=fits(setup),
        max_micro_batch=max_mb,
        max_seq=max_seq,
        min_dp=min_dp,
    )
