"""Parameter counts against transformers on the meta device, exact (DESIGN.md oracle 1).

For every supported model_type a real-size config is built with transformers' own config
class from published hyperparameters, saved as config.json, loaded by tfcli through the
config.json path, and compared with ``sum(p.numel())`` of the transformers model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("torch")

from tests.oracles import meta_param_count  # noqa: E402
from tfcli.loaders import load_model  # noqa: E402
from tfcli.params import count_params  # noqa: E402

T = transformers


def cases() -> dict[str, tuple[Any, str]]:
    """model_type case -> (config, auto-class kind); published hyperparameters in comments."""
    return {
        # meta-llama/Meta-Llama-3-8B
        "llama": (
            T.LlamaConfig(
                vocab_size=128256,
                hidden_size=4096,
                intermediate_size=14336,
                num_hidden_layers=32,
                num_attention_heads=32,
                num_key_value_heads=8,
                tie_word_embeddings=False,
            ),
            "causal_lm",
        ),
        "mistral": (T.MistralConfig(), "causal_lm"),  # class defaults = Mistral-7B-v0.1
        "mixtral": (T.MixtralConfig(), "causal_lm"),  # class defaults = Mixtral-8x7B
        # Qwen/Qwen2.5-7B
        "qwen2": (
            T.Qwen2Config(
                vocab_size=152064,
                hidden_size=3584,
                intermediate_size=18944,
                num_hidden_layers=28,
                num_attention_heads=28,
                num_key_value_heads=4,
            ),
            "causal_lm",
        ),
        "qwen2_moe": (T.Qwen2MoeConfig(), "causal_lm"),  # Qwen1.5-MoE-A2.7B
        "qwen2_moe_sparse_step": (
            T.Qwen2MoeConfig(num_hidden_layers=6, decoder_sparse_step=2, mlp_only_layers=[5]),
            "causal_lm",
        ),
        # Qwen/Qwen3-8B
        "qwen3": (
            T.Qwen3Config(
                vocab_size=151936,
                hidden_size=4096,
                intermediate_size=12288,
                num_hidden_layers=36,
                num_attention_heads=32,
                num_key_value_heads=8,
                head_dim=128,
            ),
            "causal_lm",
        ),
        "qwen3_moe": (T.Qwen3MoeConfig(), "causal_lm"),
        # google/gemma-2b: MQA, head_dim 256
        "gemma": (
            T.GemmaConfig(
                hidden_size=2048,
                intermediate_size=16384,
                num_hidden_layers=18,
                num_attention_heads=8,
                num_key_value_heads=1,
            ),
            "causal_lm",
        ),
        "gemma2": (T.Gemma2Config(), "causal_lm"),  # Gemma-2-2B
        "gemma3_text": (T.Gemma3TextConfig(), "causal_lm"),
        "phi3": (T.Phi3Config(), "causal_lm"),  # Phi-3-mini
        "gpt2": (T.GPT2Config(), "causal_lm"),  # GPT-2 124M
        "gpt_neox": (T.GPTNeoXConfig(), "causal_lm"),  # GPT-NeoX-20B
        "gpt_neox_sequential": (
            T.GPTNeoXConfig(num_hidden_layers=4, use_parallel_residual=False, attention_bias=False),
            "causal_lm",
        ),
        "gptj": (T.GPTJConfig(), "causal_lm"),  # GPT-J-6B
        "falcon": (T.FalconConfig(), "causal_lm"),  # Falcon-7B
        # Falcon-40B: new decoder architecture, 8 KV heads, two norms
        "falcon_new_arch": (
            T.FalconConfig(
                hidden_size=8192,
                num_attention_heads=128,
                num_kv_heads=8,
                new_decoder_architecture=True,
                num_hidden_layers=60,
            ),
            "causal_lm",
        ),
        "falcon_alibi_sequential": (
            T.FalconConfig(
                num_hidden_layers=4, alibi=True, parallel_attn=False, multi_query=False, bias=True
            ),
            "causal_lm",
        ),
        # bigscience/bloom-560m
        "bloom": (T.BloomConfig(hidden_size=1024, n_layer=24, n_head=16), "causal_lm"),
        "opt": (T.OPTConfig(), "causal_lm"),  # OPT-125M
        "opt_post_ln": (T.OPTConfig(num_hidden_layers=4, do_layer_norm_before=False), "causal_lm"),
        "bert": (T.BertConfig(), "base"),  # bert-base-uncased
        # FacebookAI/roberta-base
        "roberta": (T.RobertaConfig(max_position_embeddings=514, type_vocab_size=1), "base"),
        # google-t5/t5-base
        "t5": (T.T5Config(d_model=768, d_ff=3072, num_layers=12, num_heads=12), "seq2seq"),
        "bart": (
            T.BartConfig(
                d_model=768,
                encoder_layers=6,
                decoder_layers=6,
                encoder_attention_heads=12,
                decoder_attention_heads=12,
                encoder_ffn_dim=3072,
                decoder_ffn_dim=3072,
            ),
            "seq2seq",
        ),
        # deepseek-ai/DeepSeek-V2-Lite: no q_lora_rank, 1 dense layer first
        "deepseek_v2": (
            T.DeepseekV2Config(
                vocab_size=102400,
                hidden_size=2048,
                intermediate_size=10944,
                moe_intermediate_size=1408,
                num_hidden_layers=27,
                num_attention_heads=16,
                num_key_value_heads=16,
                n_routed_experts=64,
                num_experts_per_tok=6,
                n_shared_experts=2,
                first_k_dense_replace=1,
                q_lora_rank=None,
            ),
            "causal_lm",
        ),
        "deepseek_v3": (T.DeepseekV3Config(), "causal_lm"),  # DeepSeek-V3, 61 layers
        "mpt": (T.MptConfig(d_model=4096, n_layers=32, n_heads=32, vocab_size=50432), "causal_lm"),
        **modern_cases(),
    }


def modern_cases() -> dict[str, tuple[Any, str]]:
    """The 2024-26 model types (issue 9), at the published checkpoints' sizes."""
    return {
        # openai/gpt-oss-20b: 24 layers, 32 experts with biases, sinks, alternate sliding 128
        "gpt_oss": (
            T.GptOssConfig(num_hidden_layers=24, num_local_experts=32, num_experts_per_tok=4),
            "causal_lm",
        ),
        # meta-llama/Llama-4-Scout-17B-16E text_config: MoE every layer, chunked + NoPE layers
        "llama4_text": (
            T.Llama4TextConfig(
                num_hidden_layers=48, num_local_experts=16, interleave_moe_layer_step=1
            ),
            "causal_lm",
        ),
        # meta-llama/Llama-4-Maverick-17B-128E: 128 experts on every second layer (multimodal)
        "llama4": (
            T.Llama4Config(
                text_config={
                    "num_local_experts": 128,
                    "interleave_moe_layer_step": 2,
                    "num_hidden_layers": 48,
                }
            ),
            "text",
        ),
        # Qwen/Qwen3-Next-80B-A3B: 3 Gated DeltaNet : 1 gated attention, 512 experts
        "qwen3_next": (T.Qwen3NextConfig(intermediate_size=5120), "causal_lm"),
        # allenai/OLMo-2-1124-7B
        "olmo2": (
            T.Olmo2Config(vocab_size=100352, max_position_embeddings=4096, rms_norm_eps=1e-6),
            "causal_lm",
        ),
        "olmo": (T.OlmoConfig(vocab_size=50304), "causal_lm"),  # allenai/OLMo-7B-hf
        "olmoe": (T.OlmoeConfig(), "causal_lm"),  # allenai/OLMoE-1B-7B-0924
        # microsoft/Phi-3.5-MoE-instruct: attention and LM-head biases
        "phimoe": (T.PhimoeConfig(attention_bias=True, lm_head_bias=True), "causal_lm"),
        # zai-org/GLM-4.5-Air: 46 layers, 1 dense, 128 experts + 1 shared, q/k/v biases
        "glm4_moe": (T.Glm4MoeConfig(head_dim=128, attention_bias=True), "causal_lm"),
        # baidu/ERNIE-4.5-21B-A3B-PT
        "ernie4_5_moe": (T.Ernie4_5_MoeConfig(), "causal_lm"),
        # ai21labs/AI21-Jamba-Mini-1.5: attention every 8th layer, MoE every 2nd
        "jamba": (T.JambaConfig(), "causal_lm"),
        # tiiuae/Falcon-H1-7B-Base (architecture table of the transformers docs)
        "falcon_h1": (
            T.FalconH1Config(
                hidden_size=3072,
                num_hidden_layers=44,
                num_attention_heads=12,
                num_key_value_heads=2,
                head_dim=128,
                intermediate_size=12288,
                vocab_size=130049,
                mamba_d_ssm=3072,
                mamba_n_heads=24,
                mamba_d_head=128,
                mamba_d_state=256,
                mamba_rms_norm=True,
            ),
            "causal_lm",
        ),
        # ibm-granite/granite-4.0-h-small: 4 attention layers among 40, 72 experts top-10
        "granitemoehybrid": (
            T.GraniteMoeHybridConfig(
                vocab_size=100352,
                hidden_size=4096,
                intermediate_size=768,
                num_hidden_layers=40,
                num_attention_heads=32,
                num_key_value_heads=8,
                num_local_experts=72,
                num_experts_per_tok=10,
                shared_intermediate_size=8192,
                mamba_n_heads=128,
                mamba_d_head=64,
                mamba_d_state=128,
                layer_types=["attention" if i in (5, 15, 25, 35) else "mamba" for i in range(40)],
            ),
            "causal_lm",
        ),
        "mamba": (T.MambaConfig(hidden_size=2560, num_hidden_layers=64), "causal_lm"),  # 2.8B
        "mamba2": (T.Mamba2Config(), "causal_lm"),  # mistralai/Mamba-Codestral-7B-v0.1 widths
        # RWKV/rwkv-4-169m-pile
        "rwkv": (T.RwkvConfig(hidden_size=768, num_hidden_layers=12), "causal_lm"),
        # MiniMaxAI/MiniMax-Text-01 widths, 8 layers
        "minimax": (
            T.MiniMaxConfig(
                hidden_size=6144,
                num_hidden_layers=8,
                head_dim=128,
                num_attention_heads=64,
                intermediate_size=9216,
                num_local_experts=32,
            ),
            "causal_lm",
        ),
        # deepseek-ai/DeepSeek-V3.2-Exp: the lightning indexer in every layer
        "deepseek_v32": (T.DeepseekV32Config(), "causal_lm"),
        # CohereForAI/c4ai-command-r-v01 (per-head q/k norms off) and Command-R7B
        "cohere": (T.CohereConfig(), "causal_lm"),
        "cohere_qk_norm": (T.CohereConfig(num_hidden_layers=4, use_qk_norm=True), "causal_lm"),
        "cohere2": (
            T.Cohere2Config(
                hidden_size=4096,
                intermediate_size=14336,
                num_hidden_layers=32,
                num_attention_heads=32,
                num_key_value_heads=8,
            ),
            "causal_lm",
        ),
        "smollm3": (T.SmolLM3Config(), "causal_lm"),  # HuggingFaceTB/SmolLM3-3B
        "exaone4": (T.Exaone4Config(), "causal_lm"),
        "starcoder2": (T.Starcoder2Config(), "causal_lm"),  # bigcode/starcoder2-3b widths
        "granite": (T.GraniteConfig(), "causal_lm"),
        "granitemoe": (T.GraniteMoeConfig(), "causal_lm"),
        # google/gemma-3-4b-pt: Gemma3ForConditionalGeneration, the language model counted
        "gemma3": (
            T.Gemma3Config(
                text_config={
                    "hidden_size": 2560,
                    "intermediate_size": 10240,
                    "num_hidden_layers": 34,
                    "num_attention_heads": 8,
                    "num_key_value_heads": 4,
                }
            ),
            "text",
        ),
        # mistralai/Mistral-Small-3.1-24B-Base-2503 text_config
        "mistral3": (
            T.Mistral3Config(
                text_config={
                    "model_type": "mistral",
                    "hidden_size": 5120,
                    "intermediate_size": 32768,
                    "num_hidden_layers": 40,
                    "num_attention_heads": 32,
                    "num_key_value_heads": 8,
                    "head_dim": 128,
                    "vocab_size": 131072,
                    "sliding_window": None,
                }
            ),
            "text",
        ),
        # Qwen/Qwen2-VL-7B-Instruct text part
        "qwen2_vl": (
            T.Qwen2VLConfig(
                text_config={
                    "hidden_size": 3584,
                    "intermediate_size": 18944,
                    "num_hidden_layers": 28,
                    "num_attention_heads": 28,
                    "num_key_value_heads": 4,
                }
            ),
            "text",
        ),
        "qwen2_5_vl": (
            T.Qwen2_5_VLConfig(
                text_config={
                    "hidden_size": 2048,
                    "intermediate_size": 11008,
                    "num_hidden_layers": 36,
                    "num_attention_heads": 16,
                    "num_key_value_heads": 2,
                    "tie_word_embeddings": True,
                }
            ),
            "text",
        ),
    }


CASES = cases()


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for name, (config, _kind) in CASES.items():
        folder = tmp_path_factory.mktemp(name)
        config.save_pretrained(folder)
        out[name] = folder
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_count_equals_transformers_meta_model(case: str, saved: dict[str, Path]) -> None:
    config, kind = CASES[case]
    counts = count_params(load_model(str(saved[case])).spec)
    assert counts.total == meta_param_count(config, kind=kind)
    assert sum(counts.components.values()) == counts.total
    assert sum(counts.active_components.values()) == counts.active
    assert sum(layer.total for layer in counts.layers) <= counts.total


def test_every_supported_model_type_is_covered() -> None:
    from tests.test_encoders_oracle import ENCODER_TYPES
    from tfcli.loaders import SUPPORTED_MODEL_TYPES

    covered = {config.model_type for config, _ in CASES.values()} | ENCODER_TYPES
    assert set(SUPPORTED_MODEL_TYPES) - {"gemma3"} <= covered


def test_published_totals(saved: dict[str, Path]) -> None:
    # Meta's Llama-3-8B model card / safetensors index: 8,030,261,248 parameters.
    assert count_params(load_model(str(saved["llama"])).spec).total == 8_030_261_248
    # OpenAI GPT-2 small (124M): 124,439,808 parameters.
    assert count_params(load_model(str(saved["gpt2"])).spec).total == 124_439_808


def test_mixtral_active_parameters_against_transformers_modules(saved: dict[str, Path]) -> None:
    """Active = total - per MoE layer (experts - top_k) x one expert, with one expert's size
    taken from the transformers module itself (not from tfcli)."""
    import torch

    config, _ = CASES["mixtral"]
    with torch.device("meta"):
        model = T.AutoModelForCausalLM.from_config(config)
    experts = model.model.layers[0].mlp.experts
    per_expert = sum(p.numel() for p in experts.parameters()) // config.num_local_experts
    total = sum(p.numel() for p in model.parameters())
    unused = (config.num_local_experts - config.num_experts_per_tok) * per_expert
    expected_active = total - config.num_hidden_layers * unused
    assert count_params(load_model(str(saved["mixtral"])).spec).active == expected_active
