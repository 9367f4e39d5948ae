"""Weights as served (tfcli/quant.py) against oracles nobody here wrote.

Each fixture is a tiny config.json dict with the ``quantization_config`` its method writes.
The expected bytes come from, in order of preference:

* transformers' own quantized module classes, built on the meta device from the same config
  (fp8: ``replace_with_fp8_linear`` -> ``FP8Linear`` / ``FP8Experts``; compressed-tensors
  fp8: ``CompressedTensorsFP8Linear``; mxfp4: ``Mxfp4GptOssExperts``) and summed as
  ``numel x element_size``;
* where the quantization library is not installed (AutoGPTQ / GPTQModel, AutoAWQ,
  bitsandbytes are not importable here), the format's published tensor definitions, written
  out below with their source, applied to the ``nn.Linear`` modules of the real transformers
  model (the module structure and ``in_features`` / ``out_features`` come from
  transformers, the skip rules from transformers' own ``should_convert_module`` and
  ``get_keys_to_not_convert``).

Everything not quantized is counted at the checkpoint dtype from transformers' parameters.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import assert_one_line_error, run_cli
from tfcli.loaders import spec_from_hf_config
from tfcli.quant import UnknownQuantization, served_weights

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
nn = torch.nn

# ---- fixtures -------------------------------------------------------------------------------

GPTQ_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 704,  # 704 / 128 = 5.5: down_proj has a partial last group
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 2048,
    "torch_dtype": "float16",
    "quantization_config": {
        "quant_method": "gptq",
        "bits": 4,
        "group_size": 128,
        "desc_act": True,
        "sym": True,
        "checkpoint_format": "gptq",
    },
}

AWQ_QWEN2: dict[str, Any] = {
    "model_type": "qwen2",
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1024,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
    "quantization_config": {
        "quant_method": "awq",
        "bits": 4,
        "group_size": 128,
        "version": "gemm",
        "zero_point": True,
        "modules_to_not_convert": ["model.layers.1.mlp.down_proj"],
    },
}

BNB_MISTRAL: dict[str, Any] = {
    "model_type": "mistral",
    "hidden_size": 256,
    "intermediate_size": 704,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 4096,
    "sliding_window": None,
    "torch_dtype": "bfloat16",
    "quantization_config": {
        "quant_method": "bitsandbytes",
        "load_in_4bit": True,
        "load_in_8bit": False,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": "bfloat16",
        "bnb_4bit_quant_storage": "uint8",
        "llm_int8_skip_modules": None,
    },
}

FP8_DEEPSEEK_V3: dict[str, Any] = {
    "model_type": "deepseek_v3",
    "vocab_size": 512,
    "hidden_size": 256,
    "intermediate_size": 384,
    "moe_intermediate_size": 256,  # a multiple of 128: see test_fp8_deepseek_v3
    "num_hidden_layers": 3,
    "first_k_dense_replace": 1,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_routed_experts": 4,
    "n_shared_experts": 1,
    "num_experts_per_tok": 2,
    "n_group": 2,
    "topk_group": 1,
    "q_lora_rank": 96,  # 96 < 128: partial scale blocks on both sides
    "kv_lora_rank": 64,
    "qk_nope_head_dim": 32,
    "qk_rope_head_dim": 16,
    "v_head_dim": 32,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    # DeepSeek-V3's own quantization_config
    "quantization_config": {
        "activation_scheme": "dynamic",
        "fmt": "e4m3",
        "quant_method": "fp8",
        "weight_block_size": [128, 128],
    },
}

CT_FP8_LLAMA: dict[str, Any] = {
    "model_type": "llama",
    "hidden_size": 256,
    "intermediate_size": 704,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 2048,
    "torch_dtype": "bfloat16",
    # the shape of an llm-compressor FP8-dynamic config.json
    "quantization_config": {
        "quant_method": "compressed-tensors",
        "format": "float-quantized",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": {
                    "num_bits": 8,
                    "type": "float",
                    "strategy": "channel",
                    "symmetric": True,
                    "dynamic": False,
                    "group_size": None,
                },
                "input_activations": {
                    "num_bits": 8,
                    "type": "float",
                    "strategy": "token",
                    "symmetric": True,
                    "dynamic": True,
                },
            }
        },
        "ignore": ["lm_head"],
        "quantization_status": "compressed",
    },
}

MXFP4_GPT_OSS: dict[str, Any] = {
    "model_type": "gpt_oss",
    "hidden_size": 128,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "experts_per_token": 2,
    "vocab_size": 512,
    "sliding_window": 64,
    "layer_types": ["sliding_attention", "full_attention"],
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    # openai/gpt-oss-20b's quantization_config
    "quantization_config": {
        "modules_to_not_convert": [
            "model.layers.*.self_attn",
            "model.layers.*.mlp.router",
            "model.embed_tokens",
            "lm_head",
        ],
        "quant_method": "mxfp4",
    },
}


def _tfcli_bytes(config: dict[str, Any]) -> int:
    loaded = spec_from_hf_config(config, name="fixture")
    assert loaded.quantization is not None
    return served_weights(loaded.spec, loaded.quantization).total_bytes


def _meta_model(config: dict[str, Any], dtype: Any) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    plain = {k: v for k, v in config.items() if k not in ("quantization_config", "torch_dtype")}
    cfg = AutoConfig.for_model(**plain)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(cfg, dtype=dtype)


def _linear_oracle(
    model: Any,
    *,
    quantized: Callable[[str], bool],
    linear_bytes: Callable[[int, int], int],
    rest_bytes_per_value: int,
) -> int:
    """Bytes of ``model`` with every ``nn.Linear`` weight for which ``quantized(name)`` holds
    replaced by ``linear_bytes(in_features, out_features)``; every other parameter (biases
    included) at ``rest_bytes_per_value``."""
    total = 0
    replaced: set[str] = set()
    for name, module in model.named_modules():
        if type(module) is nn.Linear and quantized(name):
            total += linear_bytes(module.in_features, module.out_features)
            replaced.add(f"{name}.weight")
    for name, param in model.named_parameters():
        if name not in replaced:
            total += param.numel() * rest_bytes_per_value
    assert replaced, "the oracle quantized nothing"
    return total


def _in_blocks(name: str) -> bool:
    return ".layers." in name


# ---- GPTQ -----------------------------------------------------------------------------------


def _gptq_linear(bits: int, group_size: int) -> Callable[[int, int], int]:
    """AutoGPTQ ``QuantLinear.__init__`` (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py,
    and GPTQModel's ``BaseQuantLinear`` for the ``gptq`` format) registers:
    ``qweight`` int32 ``(infeatures // 32 * bits, outfeatures)``, ``qzeros`` int32
    ``(math.ceil(infeatures / group_size), outfeatures // 32 * bits)``, ``scales`` float16
    ``(math.ceil(infeatures / group_size), outfeatures)``, ``g_idx`` int32 ``(infeatures,)``;
    ``group_size = infeatures`` when the config says -1. The transformers GPTQ docs
    (quantization/gptq) describe the same int32 packing of 32 / bits values."""

    def linear(i: int, o: int) -> int:
        g = i if group_size == -1 else group_size
        groups = math.ceil(i / g)
        qweight = (i // 32 * bits) * o * 4
        qzeros = groups * (o // 32 * bits) * 4
        scales = groups * o * 2
        g_idx = i * 4
        return qweight + qzeros + scales + g_idx

    return linear


@pytest.mark.parametrize(("bits", "group_size"), [(4, 128), (8, -1), (3, 64)])
def test_gptq_llama(bits: int, group_size: int) -> None:
    config = copy.deepcopy(GPTQ_LLAMA)
    config["quantization_config"].update(bits=bits, group_size=group_size)
    model = _meta_model(config, torch.float16)
    # optimum / GPTQModel quantize the linears inside the decoder blocks (lm_head only with
    # lm_head=True); everything else stays fp16
    expected = _linear_oracle(
        model,
        quantized=_in_blocks,
        linear_bytes=_gptq_linear(bits, group_size),
        rest_bytes_per_value=2,
    )
    assert _tfcli_bytes(config) == expected


def test_gptq_figures_by_hand() -> None:
    """The 4-bit group-128 fixture, one layer written out: q (256 -> 256): qweight 32 x 256 x
    4 = 32,768, qzeros 2 x 32 x 4 = 256, scales 2 x 256 x 2 = 1,024, g_idx 1,024; down
    (704 -> 256): 88 x 256 x 4 = 90,112, ceil(704 / 128) = 6 groups: 6 x 32 x 4 = 768,
    6 x 256 x 2 = 3,072, g_idx 2,816."""
    loaded = spec_from_hf_config(GPTQ_LLAMA, name="fixture")
    assert loaded.quantization is not None
    served = served_weights(loaded.spec, loaded.quantization)
    q = 32_768 + 256 + 1_024 + 1_024
    k = v = (32 * 128 * 4) + (2 * 16 * 4) + (2 * 128 * 2) + 1_024
    o = q
    gate = up = (32 * 704 * 4) + (2 * 88 * 4) + (2 * 704 * 2) + 1_024
    down = 90_112 + 768 + 3_072 + 2_816
    rest = (1000 * 256 * 2 + 2 * 2 * 256 + 256) * 2  # embeddings, lm_head, norms in fp16
    assert served.total_bytes == 2 * (q + k + v + o + gate + up + down) + rest
    assert served.parts["g_idx"] == 2 * (6 * 256 + 704) * 4  # int32 per input column


# ---- AWQ ------------------------------------------------------------------------------------


def _awq_linear(bits: int, group_size: int) -> Callable[[int, int], int]:
    """AutoAWQ ``WQLinear_GEMM.__init__`` (awq/modules/linear/gemm.py) registers ``qweight``
    int32 ``(in_features, out_features // (32 // w_bit))``, ``qzeros`` int32
    ``(in_features // group_size, out_features // (32 // w_bit))``, ``scales`` float16
    ``(in_features // group_size, out_features)`` and a float16 bias ``(out_features,)``."""

    def linear(i: int, o: int) -> int:
        pack = 32 // bits
        return i * (o // pack) * 4 + (i // group_size) * (o // pack) * 4 + (i // group_size) * o * 2

    return linear


def test_awq_qwen2_with_a_skipped_module() -> None:
    from transformers.quantizers.quantizers_utils import should_convert_module

    skip = AWQ_QWEN2["quantization_config"]["modules_to_not_convert"]
    model = _meta_model(AWQ_QWEN2, torch.float16)
    # transformers' AWQ quantizer: get_modules_to_not_convert(..., add_default_skips=True):
    # the config's list plus lm_head
    expected = _linear_oracle(
        model,
        quantized=lambda n: _in_blocks(n) and should_convert_module(n, [*skip, "lm_head"]),
        linear_bytes=_awq_linear(4, 128),
        rest_bytes_per_value=2,
    )
    assert _tfcli_bytes(AWQ_QWEN2) == expected
    loaded = spec_from_hf_config(AWQ_QWEN2, name="fixture")
    assert loaded.quantization is not None
    served = served_weights(loaded.spec, loaded.quantization)
    assert served.quantized_modules == 2 * 7 - 1


# ---- bitsandbytes ---------------------------------------------------------------------------


def _bnb4_linear(double_quant: bool) -> Callable[[int, int], int]:
    """bitsandbytes ``Params4bit`` -> ``F.quantize_4bit(blocksize=64)``: the packed weight is
    uint8 ``((n + 1) // 2, 1)``; its ``QuantState`` holds ``absmax`` fp32 ``ceil(n / 64)``
    and ``code`` (``get_4bit_type``: 16 fp32 values, a new tensor per call). With
    ``compress_statistics`` (bnb_4bit_use_double_quant) the absmax is re-quantized by
    ``quantize_blockwise(absmax - offset, blocksize=256)``: uint8 ``ceil(n / 64)``, a nested
    state with fp32 ``absmax`` ``ceil(ceil(n / 64) / 256)``, and the fp32 ``offset`` scalar
    (the nested dynamic code map is cached once per device by bitsandbytes, not per layer)."""

    def linear(i: int, o: int) -> int:
        n = i * o
        blocks = -(-n // 64)
        stats = blocks + 4 * -(-blocks // 256) + 4 if double_quant else 4 * blocks
        return (n + 1) // 2 + stats + 16 * 4

    return linear


def _bnb8_linear(i: int, o: int) -> int:
    """bitsandbytes ``Int8Params``: int8 ``(out, in)`` weight and the fp32 row statistics
    ``SCB`` ``(out,)`` (``F.int8_vectorwise_quant``)."""
    return i * o + 4 * o


@pytest.mark.parametrize("mode", ["nf4-double", "fp4", "int8"])
def test_bitsandbytes_mistral(mode: str) -> None:
    from transformers.quantizers.base import get_keys_to_not_convert
    from transformers.quantizers.quantizers_utils import should_convert_module

    config = copy.deepcopy(BNB_MISTRAL)
    q = config["quantization_config"]
    if mode == "fp4":
        q.update(bnb_4bit_quant_type="fp4", bnb_4bit_use_double_quant=False)
    if mode == "int8":
        q.update(load_in_4bit=False, load_in_8bit=True)
    model = _meta_model(config, torch.bfloat16)
    # llm_int8_skip_modules is None: transformers' default skips (get_keys_to_not_convert)
    skips = get_keys_to_not_convert(model)
    assert skips == ["lm_head"]
    linear = _bnb8_linear if mode == "int8" else _bnb4_linear(mode == "nf4-double")
    expected = _linear_oracle(
        model,
        quantized=lambda n: should_convert_module(n, skips),
        linear_bytes=linear,
        rest_bytes_per_value=2,
    )
    assert _tfcli_bytes(config) == expected


# ---- fp8 (FineGrainedFP8, DeepSeek-V3) ------------------------------------------------------


def _real_module_bytes(model: Any, rest_bytes_per_value: int, quantized: set[Any]) -> int:
    """``numel x element_size`` of the parameters of the quantized modules, the others at the
    checkpoint dtype (``rest_bytes_per_value``)."""
    inside = {id(p) for m in quantized for p in m.parameters()}
    total = 0
    for param in model.parameters():
        size = param.element_size() if id(param) in inside else rest_bytes_per_value
        total += param.numel() * size
    return total


def test_fp8_deepseek_v3_blocks_against_transformers_fp8linear() -> None:
    """transformers' own FP8 modules: ``replace_with_fp8_linear`` swaps every ``nn.Linear``
    (lm_head skipped by ``get_keys_to_not_convert``) for ``FP8Linear`` (fp8 weight + fp32
    ``weight_scale_inv [ceil(out/128), ceil(in/128)]``) and the experts for ``FP8Experts``.
    ``FP8Experts`` fuses gate and up: its scale grid is ``ceil(2 f / 128)`` rows, which equals
    the checkpoint's two separate ``ceil(f / 128)`` grids tfcli counts because f = 256 is a
    multiple of 128. The router (``DeepseekV3TopkRouter``, not an nn.Linear) stays
    unquantized; transformers keeps it in fp32 (``_keep_in_fp32_modules_strict``), the
    checkpoint in bf16: unquantized tensors are counted at the checkpoint's bf16."""
    from transformers import FineGrainedFP8Config
    from transformers.integrations.finegrained_fp8 import (
        FP8Experts,
        FP8Linear,
        replace_with_fp8_linear,
    )
    from transformers.quantizers.base import get_keys_to_not_convert

    model = _meta_model(FP8_DEEPSEEK_V3, torch.bfloat16)
    qc = FineGrainedFP8Config(weight_block_size=[128, 128], activation_scheme="dynamic")
    with torch.device("meta"):
        replace_with_fp8_linear(model, get_keys_to_not_convert(model), quantization_config=qc)
    modules = {m for m in model.modules() if isinstance(m, FP8Linear | FP8Experts)}
    assert any(isinstance(m, FP8Experts) for m in modules)
    expected = _real_module_bytes(model, 2, modules)
    assert _tfcli_bytes(FP8_DEEPSEEK_V3) == expected


def test_fp8_per_tensor_and_static_activations() -> None:
    """``FP8Linear`` without ``block_size``: one fp32 ``weight_scale_inv`` scalar; with
    ``activation_scheme: static`` one more fp32 ``activation_scale``."""
    from transformers import FineGrainedFP8Config
    from transformers.integrations.finegrained_fp8 import FP8Linear, replace_with_fp8_linear
    from transformers.quantizers.base import get_keys_to_not_convert

    config = copy.deepcopy(CT_FP8_LLAMA)
    config["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "static"}
    model = _meta_model(config, torch.bfloat16)
    qc = FineGrainedFP8Config(weight_block_size=None, activation_scheme="static")
    with torch.device("meta"):
        replace_with_fp8_linear(model, get_keys_to_not_convert(model), quantization_config=qc)
    modules = {m for m in model.modules() if isinstance(m, FP8Linear)}
    assert len(modules) == 14
    assert _tfcli_bytes(config) == _real_module_bytes(model, 2, modules)


# ---- compressed-tensors ---------------------------------------------------------------------


def test_compressed_tensors_fp8_channel_against_transformers() -> None:
    """transformers' ``CompressedTensorsFP8Linear``: fp8 weight ``(out, in)`` and an fp32
    ``weight_scale`` ``(1, out)`` (the per-channel scale), put in place of every ``nn.Linear``
    the config targets (``Linear``) and does not ``ignore`` (``lm_head``), as
    ``replace_with_compressed_tensors_fp8_linear`` does (its matcher needs the
    compressed_tensors package, so the modules are swapped here by the config's rule)."""
    from transformers.integrations.compressed_tensors import CompressedTensorsFP8Linear

    model = _meta_model(CT_FP8_LLAMA, torch.bfloat16)
    with torch.device("meta"):
        for name, module in list(model.named_modules()):
            if type(module) is nn.Linear and name != "lm_head":
                model.set_submodule(
                    name,
                    CompressedTensorsFP8Linear(
                        module.in_features, module.out_features, module.bias is not None
                    ),
                )
    modules = {m for m in model.modules() if isinstance(m, CompressedTensorsFP8Linear)}
    assert len(modules) == 14
    assert _tfcli_bytes(CT_FP8_LLAMA) == _real_module_bytes(model, 2, modules)


def test_compressed_tensors_w4a16_pack_quantized_group() -> None:
    """compressed-tensors W4A16 (``pack-quantized``, int4 per group 128, asymmetric), from
    its definitions: ``PackedQuantizationCompressor.compress_module`` stores
    ``weight_packed`` int32 ``(out, ceil(in / 8))`` (``pack_to_int32`` pads the last dim to
    the pack factor 32 / 4 = 8), ``weight_shape`` = ``torch.tensor(weight.shape)`` (int64,
    2 values), and packs the asymmetric zero points along dim 0: int32
    ``(ceil(out / 8), groups)``; ``initialize_qparams`` makes ``weight_scale`` ``(out,
    ceil(in / 128))`` in the observed weight's dtype (bf16 here)."""
    config = copy.deepcopy(CT_FP8_LLAMA)
    group = config["quantization_config"]["config_groups"]["group_0"]
    config["quantization_config"]["format"] = "pack-quantized"
    group["weights"] = {
        "num_bits": 4,
        "type": "int",
        "strategy": "group",
        "group_size": 128,
        "symmetric": False,
        "dynamic": False,
    }
    group["input_activations"] = None
    model = _meta_model(config, torch.bfloat16)

    def linear(i: int, o: int) -> int:
        groups = -(-i // 128)
        return o * -(-i // 8) * 4 + 16 + o * groups * 2 + -(-o // 8) * groups * 4

    expected = _linear_oracle(
        model, quantized=lambda n: n != "lm_head", linear_bytes=linear, rest_bytes_per_value=2
    )
    assert _tfcli_bytes(config) == expected


# ---- mxfp4 (gpt-oss) ------------------------------------------------------------------------


def test_mxfp4_gpt_oss_against_transformers_experts() -> None:
    """transformers' ``Mxfp4GptOssExperts`` (integrations/mxfp4.py) holds the packed fp4
    bytes, ``gate_up_proj`` uint8 ``(E, 2 f, h // 2)`` and ``down_proj`` uint8 ``(E, h,
    f // 2)``. Their e8m0 scales are the checkpoint's ``*_scales`` ``(E, out, in / 32)``:
    ``_convert_moe_packed_tensors`` asserts ``blocks.shape[:-1] == scales.shape`` for blocks
    ``(E, out, in / 32, 16)``, one scale byte per 16 block bytes. Only the experts are
    converted (``replace_with_mxfp4_linear`` swaps ``GptOssMLP.experts``; it fetches a
    kernel from the hub, so the swap is done here the way it does it). The experts' biases,
    which the module keeps in fp32, are bf16 in the checkpoint and counted so."""
    from transformers.integrations.mxfp4 import Mxfp4GptOssExperts

    model = _meta_model(MXFP4_GPT_OSS, torch.bfloat16)
    experts = []
    with torch.device("meta"):
        for layer in model.model.layers:
            layer.mlp.experts = Mxfp4GptOssExperts(model.config)
            experts.append(layer.mlp.experts)
    total = 0
    for param in model.parameters():
        if param.dtype == torch.uint8:  # the packed blocks
            total += param.numel() + param.numel() // 16  # + one e8m0 scale per 32 values
        else:
            total += param.numel() * 2
    assert len(experts) == 2
    assert _tfcli_bytes(MXFP4_GPT_OSS) == total


# ---- behaviour: unknown methods, bad values, fits -------------------------------------------


def _write(tmp_path: Path, config: dict[str, Any], name: str = "config.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def test_unknown_method_warns_once_and_counts_unquantized(tmp_path: Path) -> None:
    config = copy.deepcopy(GPTQ_LLAMA)
    config["quantization_config"] = {"quant_method": "hqq", "nbits": 4}
    run = run_cli("params", _write(tmp_path, config), "--json")
    assert run.code == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "hqq" in lines[0] and "unquantized" in lines[0], run.stderr
    doc = json.loads(run.stdout)
    assert doc["served_weights"] is None
    assert doc["weight_bytes"]["bf16"] == doc["total_params"] * 2
    # a fit falls back to the bf16 serving default, with the same single warning
    fit = run_cli("kvcache", _write(tmp_path, config), "--budget", "8MiB", "--seq", "64", "--json")
    assert fit.code == 0 and len(fit.stderr.strip().splitlines()) == 1, fit.stderr
    got = json.loads(fit.stdout)["fit"]
    assert got["weights_bytes"] == doc["total_params"] * 2
    assert got["weights_dtype"] == "bf16" and got["weights_quantization"] is None
    loaded = spec_from_hf_config(config, name="x")
    assert loaded.quantization is not None
    with pytest.raises(UnknownQuantization):
        served_weights(loaded.spec, loaded.quantization)


@pytest.mark.parametrize(
    ("change", "fragment"),
    [({"bits": "four"}, "bits"), ({"bits": 5}, "bits"), ({"group_size": 1.5}, "group_size")],
)
def test_bad_quantization_values_are_one_line(
    tmp_path: Path, change: dict[str, Any], fragment: str
) -> None:
    config = copy.deepcopy(GPTQ_LLAMA)
    config["quantization_config"].update(change)
    assert_one_line_error(run_cli("params", _write(tmp_path, config)), fragment)


def test_params_json_and_explain(tmp_path: Path) -> None:
    path = _write(tmp_path, GPTQ_LLAMA)
    doc = json.loads(run_cli("params", path, "--json").stdout)
    served = doc["served_weights"]
    assert served["method"] == "gptq"
    assert served["total_bytes"] == _tfcli_bytes(GPTQ_LLAMA)
    assert (
        served["packed_bytes"] + served["overhead_bytes"] + served["unquantized_bytes"]
        == served["total_bytes"]
    )
    assert sum(served["parts_bytes"].values()) == served["packed_bytes"] + served["overhead_bytes"]
    assert served["quantized_params"] + served["unquantized_params"] == doc["total_params"]
    text = run_cli("params", path, "--explain").stdout
    assert "Weights as served: GPTQ 4-bit, group 128" in text
    assert "qweight int32 [in/32 x 4, out]" in text
    # the largest module, gate_proj 256 -> 704, by AutoGPTQ's shapes: qweight 32 x 704 x 4,
    # qzeros ceil(256/128) = 2 x 88 x 4, scales 2 x 704 x 2, g_idx 256 x 4
    assert (
        "model.layers.*.mlp.gate_proj (256 -> 704): qweight 90,112 + qzeros 704 + scales 2,816 "
        "+ g_idx 1,024 = 94,656 B" in text
    )


def test_fit_uses_served_bytes_and_says_so(tmp_path: Path) -> None:
    path = _write(tmp_path, AWQ_QWEN2)
    model = _meta_model(AWQ_QWEN2, torch.float16)
    from transformers.quantizers.quantizers_utils import should_convert_module

    skip = [*AWQ_QWEN2["quantization_config"]["modules_to_not_convert"], "lm_head"]
    served = _linear_oracle(
        model,
        quantized=lambda n: _in_blocks(n) and should_convert_module(n, skip),
        linear_bytes=_awq_linear(4, 128),
        rest_bytes_per_value=2,
    )
    args = ("kvcache", path, "--budget", "8MiB", "--seq", "1024", "--json")
    fit = json.loads(run_cli(*args).stdout)["fit"]
    assert fit["weights_bytes"] == served
    assert fit["weights_quantization"] == "AWQ 4-bit, group 128 (gemm)"
    # --weights-dtype wins over the quantization_config
    forced = json.loads(run_cli(*args, "--weights-dtype", "int4").stdout)["fit"]
    params = sum(p.numel() for p in model.parameters())
    assert forced["weights_bytes"] == -(-params * 4 // 8)
    assert forced["weights_quantization"] is None
    # no quantization_config: bf16, the serving default, even for an fp16 checkpoint
    plain = {k: v for k, v in AWQ_QWEN2.items() if k != "quantization_config"}
    default = json.loads(run_cli(*args[:1], _write(tmp_path, plain, "p.json"), *args[2:]).stdout)
    assert default["fit"]["weights_bytes"] == params * 2
    assert default["fit"]["weights_dtype"] == "bf16"
    assert default["fit"]["weights_dtype_is_default"] is True
    text = run_cli(*args[:-1]).stdout
    assert "AWQ 4-bit, group 128 (gemm), as served (quantization_config)" in text


def test_api_fit_takes_the_served_bytes(tmp_path: Path) -> None:
    from tfcli.api import fit

    path = _write(tmp_path, GPTQ_LLAMA)
    assert fit(path, budget_bytes=2**24, seq=512).weights_bytes == _tfcli_bytes(GPTQ_LLAMA)


MIXED_CT_MIXTRAL: dict[str, Any] = {
    "model_type": "mixtral",
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "vocab_size": 512,
    "max_position_embeddings": 4096,
    "torch_dtype": "bfloat16",
    # a mixed scheme: int4 experts (a regex group listed second) and fp8 everywhere else
    "quantization_config": {
        "quant_method": "compressed-tensors",
        "format": "mixed-precision",
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "format": "float-quantized",
                "weights": {"num_bits": 8, "type": "float", "strategy": "channel"},
                "input_activations": {"num_bits": 8, "type": "float", "dynamic": True},
            },
            "group_1": {
                "targets": ["re:.*mlp\\.experts\\..*"],
                "format": "pack-quantized",
                "weights": {
                    "num_bits": 4,
                    "type": "int",
                    "strategy": "group",
                    "group_size": 32,
                    "symmetric": True,
                },
            },
        },
        "ignore": ["lm_head", "re:.*mlp\\.gate$"],
    },
}


def test_compressed_tensors_mixed_moe_experts_by_regex() -> None:
    """Experts claimed by a ``re:`` group and by the ``Linear`` group go to the regex group
    (compressed-tensors prefers a name/regex match to a class match; transformers'
    ``get_experts_scheme`` picks the group whose ``re:`` targets name the experts). The
    checkpoint stores each expert's ``gate_proj``, ``up_proj`` and ``down_proj`` separately
    (``model.layers.i.mlp.experts.e.gate_proj``); transformers 5 fuses them into
    ``MixtralExperts.gate_up_proj (E, 2 f, h)`` and ``down_proj (E, h, f)``, whose shapes
    give the per-expert projections here. Per projection ``in -> out``: int4 pack-quantized
    symmetric group 32 = int32 ``(out, ceil(in / 8))`` + int64 ``weight_shape [2]`` + bf16
    scales ``(out, ceil(in / 32))``; every other ``nn.Linear`` (lm_head ignored; the router
    is a ``MixtralTopKRouter``, no nn.Linear) fp8 ``(out, in)`` + fp32 ``(1, out)`` as
    ``CompressedTensorsFP8Linear`` holds it."""

    def int4(i: int, o: int) -> int:
        return o * -(-i // 8) * 4 + 16 + o * -(-i // 32) * 2

    model = _meta_model(MIXED_CT_MIXTRAL, torch.bfloat16)
    total = 0
    replaced: set[int] = set()
    for name, module in model.named_modules():
        if type(module) is nn.Linear and name != "lm_head":
            total += module.out_features * module.in_features + 4 * module.out_features
            replaced.add(id(module.weight))
        elif type(module).__name__ == "MixtralExperts":
            experts, two_f, h = module.gate_up_proj.shape
            f = two_f // 2
            assert tuple(module.down_proj.shape) == (experts, h, f)
            total += experts * (2 * int4(h, f) + int4(f, h))
            replaced |= {id(module.gate_up_proj), id(module.down_proj)}
    assert len(replaced) == 2 * 4 + 2 * 2
    total += sum(2 * p.numel() for p in model.parameters() if id(p) not in replaced)
    assert _tfcli_bytes(MIXED_CT_MIXTRAL) == total


def test_every_shipped_spec_with_every_scheme_sums_to_its_totals() -> None:
    """Breakdowns sum to totals (DESIGN.md section 8.4) for every layout tfcli has (fused
    qkv, Conv1D, stacked experts, MLA, state layers, encoders): quantized + unquantized
    parameters = the parameter count, parts = packed + overhead."""
    from tfcli.loaders import load_model, shipped_specs
    from tfcli.params import count_params

    fixtures = (GPTQ_LLAMA, AWQ_QWEN2, BNB_MISTRAL, FP8_DEEPSEEK_V3, CT_FP8_LLAMA)
    schemes = [c["quantization_config"] for c in (*fixtures, MXFP4_GPT_OSS, MIXED_CT_MIXTRAL)]
    for name, _ in shipped_specs():
        spec = load_model(name).spec
        total = count_params(spec).total
        for scheme in schemes:
            served = served_weights(spec, scheme)
            assert served.quantized_params + served.rest_params == total, (name, scheme)
            assert sum(served.parts.values()) == served.packed_bytes + served.overhead_bytes


@pytest.mark.parametrize("value", [[], "gptq", 4])
def test_a_quantization_config_that_is_not_an_object_is_one_line(
    tmp_path: Path, value: Any
) -> None:
    config = copy.deepcopy(GPTQ_LLAMA)
    config["quantization_config"] = value
    assert_one_line_error(run_cli("params", _write(tmp_path, config)), "quantization_config")


def test_serving_roofline_reads_the_served_weights(tmp_path: Path) -> None:
    """TTFT/TPOT of a quantized checkpoint read its weights as served (the same bytes
    ``tfcli params`` gives), not params x bf16; the note names the scheme (on stderr under
    --json, so stdout stays one JSON document)."""
    path = _write(tmp_path, GPTQ_LLAMA)
    params = json.loads(run_cli("params", path, "--json").stdout)
    served = params["served_weights"]
    run = run_cli("flops", path, "--hardware", "h100", "--seq", "1024", "--json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["roofline"]["bytes_parts"]["weights read"] == served["total_bytes"]
    assert "GPTQ 4-bit" in run.stderr
    decode = run_cli("flops", path, "--hardware", "h100", "--mode", "decode", "--json")
    parts = json.loads(decode.stdout)["roofline"]["bytes_parts"]
    assert parts["weights read"] == served["total_bytes"]
    assert served["total_bytes"] < params["total_params"] * 2


def test_kvcache_serving_time_reads_the_served_weights(tmp_path: Path) -> None:
    """kvcache --hardware gives TTFT/TPOT too: from the same served bytes."""
    path = _write(tmp_path, GPTQ_LLAMA)
    served = json.loads(run_cli("params", path, "--json").stdout)["served_weights"]
    run = run_cli("kvcache", path, "--hardware", "h100", "--seq", "512", "--json")
    assert run.code == 0, run.stderr
    doc = json.loads(run.stdout)
    # TPOT is memory-bound here: (weights read + the KV cache of 512 tokens) / (MBU x bandwidth)
    bandwidth = 3.35e12 * doc["serving"]["mbu"]  # H100 SXM: 3.35 TB/s
    expected = (served["total_bytes"] + doc["total_bytes"]) / bandwidth
    assert doc["serving"]["tpot_bound"] == "memory"
    assert doc["serving"]["tpot_seconds"] == pytest.approx(expected, rel=1e-9)


def test_show_names_the_quantization_config(tmp_path: Path) -> None:
    path = _write(tmp_path, GPTQ_LLAMA)
    doc = json.loads(run_cli("show", path, "--json").stdout)
    assert doc["quantization_config"] == GPTQ_LLAMA["quantization_config"]
    text = run_cli("show", path).stdout
    assert "quantization_config: gptq" in text
    plain = json.loads(run_cli("show", "llama-3-8b", "--json").stdout)
    assert "quantization_config" not in plain
