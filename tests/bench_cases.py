"""Small transformers configs (2 layers, small widths) for the built-in model's oracle tests."""

from __future__ import annotations

from typing import Any

SMALL = {
    "hidden_size": 64,
    "intermediate_size": 96,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 300,
}


def configs() -> dict[str, tuple[Any, str]]:
    """case -> (transformers config, kind: causal_lm / base / seq2seq)."""
    import transformers as T

    moe = {"num_experts_per_tok": 2, "moe_intermediate_size": 32}
    return {
        "llama": (T.LlamaConfig(**SMALL), "causal_lm"),
        "llama3_rope_scaling": (
            T.LlamaConfig(
                **SMALL,
                rope_parameters={
                    "rope_type": "llama3",
                    "rope_theta": 500000.0,
                    "factor": 8.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 16,  # small: every band is scaled
                },
            ),
            "causal_lm",
        ),
        "mistral": (T.MistralConfig(**SMALL, sliding_window=5), "causal_lm"),
        "mixtral": (
            T.MixtralConfig(**SMALL, num_local_experts=4, num_experts_per_tok=2),
            "causal_lm",
        ),
        "qwen2": (T.Qwen2Config(**SMALL), "causal_lm"),
        "qwen2_moe": (
            T.Qwen2MoeConfig(**SMALL, num_experts=4, shared_expert_intermediate_size=48, **moe),
            "causal_lm",
        ),
        "qwen3": (T.Qwen3Config(**SMALL, head_dim=24), "causal_lm"),
        "qwen3_moe": (
            T.Qwen3MoeConfig(**SMALL, head_dim=24, num_experts=4, **moe),
            "causal_lm",
        ),
        "gemma": (T.GemmaConfig(**SMALL, head_dim=16), "causal_lm"),
        "gemma2": (T.Gemma2Config(**SMALL, head_dim=16, sliding_window=5), "causal_lm"),
        "gemma3_text": (
            T.Gemma3TextConfig(
                **SMALL,
                head_dim=16,
                sliding_window=5,
                layer_types=["sliding_attention", "full_attention"],
            ),
            "causal_lm",
        ),
        "phi3": (T.Phi3Config(**SMALL, pad_token_id=0), "causal_lm"),
        "gpt2": (T.GPT2Config(n_embd=64, n_layer=2, n_head=4, vocab_size=300), "causal_lm"),
        "gptj": (
            T.GPTJConfig(n_embd=64, n_layer=2, n_head=4, rotary_dim=8, vocab_size=300),
            "causal_lm",
        ),
        "opt": (
            T.OPTConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                ffn_dim=96,
                word_embed_proj_dim=64,
                vocab_size=300,
            ),
            "causal_lm",
        ),
        "mpt": (
            T.MptConfig(d_model=64, n_layers=2, n_heads=4, expansion_ratio=2, vocab_size=300),
            "causal_lm",
        ),
        "gpt_neox": (
            T.GPTNeoXConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=96,
                vocab_size=300,
            ),
            "causal_lm",
        ),
        "falcon": (
            T.FalconConfig(
                hidden_size=64, num_hidden_layers=2, num_attention_heads=4, vocab_size=300
            ),
            "causal_lm",
        ),
        "falcon_new_arch": (
            T.FalconConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_kv_heads=2,
                new_decoder_architecture=True,
                vocab_size=300,
            ),
            "causal_lm",
        ),
        "bloom": (T.BloomConfig(hidden_size=64, n_layer=2, n_head=4, vocab_size=300), "causal_lm"),
        "bert": (
            T.BertConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=96,
                vocab_size=300,
            ),
            "base",
        ),
        "roberta": (
            T.RobertaConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=96,
                vocab_size=300,
            ),
            "base",
        ),
        # Longformer: band |i - j| <= 2, no global token (LongformerModel's default)
        "longformer": (
            T.LongformerConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=96,
                vocab_size=300,
                attention_window=4,
            ),
            "base",
        ),
        # BigBird's original_full path (block_sparse: tests/test_bench_sparse.py, one length
        # per model, as one short input switches BigBirdModel to original_full for good)
        "big_bird": (
            T.BigBirdConfig(
                hidden_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                intermediate_size=96,
                vocab_size=300,
                attention_type="original_full",
            ),
            "base",
        ),
        # global, local (|i - j| <= 2 of SEQ 12), global: GeGLU, no biases, two RoPE bases,
        # no attention norm in layer 0
        "modernbert": (
            T.ModernBertConfig(
                hidden_size=64,
                num_hidden_layers=3,
                num_attention_heads=4,
                intermediate_size=96,
                vocab_size=300,
                local_attention=4,
                global_attn_every_n_layers=2,
                pad_token_id=0,
                bos_token_id=1,
                eos_token_id=2,
                cls_token_id=1,
                sep_token_id=2,
            ),
            "base",
        ),
        "t5": (
            T.T5Config(d_model=64, d_ff=96, d_kv=16, num_layers=2, num_heads=4, vocab_size=300),
            "seq2seq",
        ),
        "t5_gated": (
            T.T5Config(
                d_model=64,
                d_ff=96,
                d_kv=16,
                num_layers=2,
                num_heads=4,
                vocab_size=300,
                feed_forward_proj="gated-gelu",
                tie_word_embeddings=False,
            ),
            "seq2seq",
        ),
        "bart": (
            T.BartConfig(
                d_model=64,
                encoder_layers=2,
                decoder_layers=2,
                encoder_attention_heads=4,
                decoder_attention_heads=4,
                encoder_ffn_dim=96,
                decoder_ffn_dim=96,
                vocab_size=300,
            ),
            "seq2seq",
        ),
        "deepseek_v2": (
            T.DeepseekV2Config(
                **{**SMALL, "num_key_value_heads": 4},
                first_k_dense_replace=1,
                n_routed_experts=4,
                n_shared_experts=1,
                q_lora_rank=None,
                kv_lora_rank=24,
                qk_nope_head_dim=16,
                qk_rope_head_dim=8,
                v_head_dim=16,
                **moe,
            ),
            "causal_lm",
        ),
        "deepseek_v3": (
            T.DeepseekV3Config(
                **{**SMALL, "num_key_value_heads": 4},
                first_k_dense_replace=1,
                n_routed_experts=8,
                n_group=2,
                topk_group=1,
                q_lora_rank=32,
                kv_lora_rank=24,
                qk_nope_head_dim=16,
                qk_rope_head_dim=8,
                v_head_dim=16,
                **moe,
            ),
            "causal_lm",
        ),
        "deepseek_v3_yarn": (
            T.DeepseekV3Config(
                **{**SMALL, "num_key_value_heads": 4},
                first_k_dense_replace=1,
                n_routed_experts=8,
                n_group=2,
                topk_group=1,
                q_lora_rank=32,
                kv_lora_rank=24,
                qk_nope_head_dim=16,
                qk_rope_head_dim=8,
                v_head_dim=16,
                **moe,
                rope_parameters={
                    "rope_type": "yarn",
                    "rope_theta": 10000.0,
                    "factor": 4.0,
                    "original_max_position_embeddings": 64,
                    "beta_fast": 32,
                    "beta_slow": 1,
                    "mscale": 0.9,
                    "mscale_all_dim": 1.0,
                },
            ),
            "causal_lm",
        ),
        "deepseek_v32_yarn": (
            T.DeepseekV32Config(
                **{**SMALL, "num_key_value_heads": 4},
                first_k_dense_replace=1,
                n_routed_experts=8,
                n_group=2,
                topk_group=1,
                q_lora_rank=32,
                kv_lora_rank=24,
                qk_nope_head_dim=16,
                qk_rope_head_dim=8,
                v_head_dim=16,
                **moe,
                index_n_heads=4,  # top-4 keys per query: lengths 5, 12, 29 select
                index_head_dim=16,
                index_topk=4,
                rope_parameters={
                    "rope_type": "yarn",
                    "rope_theta": 10000.0,
                    "factor": 4.0,
                    "original_max_position_embeddings": 64,
                    "beta_fast": 32,
                    "beta_slow": 1,
                    "mscale": 0.9,
                    "mscale_all_dim": 1.0,
                },
            ),
            "causal_lm",
        ),
        **shape_variants(),
    }


def shape_variants() -> dict[str, tuple[Any, str]]:
    """Other widths, head counts and depths of the same families, so that a mapping or a
    layer that only works for one shape is caught: wider and deeper stacks, MQA, odd head
    counts, and encoder-decoders whose encoder and decoder depths differ (distilbart-12-6 has
    12 and 6; T5 allows num_decoder_layers != num_layers)."""
    import transformers as T

    return {
        "llama_wide_gqa3": (
            T.LlamaConfig(
                hidden_size=96,
                intermediate_size=160,
                num_hidden_layers=3,
                num_attention_heads=6,
                num_key_value_heads=2,
                vocab_size=300,
            ),
            "causal_lm",
        ),
        "llama_deep_mqa": (
            T.LlamaConfig(
                hidden_size=32,
                intermediate_size=48,
                num_hidden_layers=4,
                num_attention_heads=4,
                num_key_value_heads=1,
                vocab_size=300,
            ),
            "causal_lm",
        ),
        "gpt2_wide": (T.GPT2Config(n_embd=96, n_layer=3, n_head=3, vocab_size=300), "causal_lm"),
        "gptj_wide": (
            T.GPTJConfig(n_embd=96, n_layer=3, n_head=6, rotary_dim=16, vocab_size=300),
            "causal_lm",
        ),
        "opt_deep": (
            T.OPTConfig(
                hidden_size=48,
                num_hidden_layers=3,
                num_attention_heads=3,
                ffn_dim=80,
                word_embed_proj_dim=48,
                vocab_size=300,
            ),
            "causal_lm",
        ),
        "mpt_wide": (
            T.MptConfig(d_model=96, n_layers=3, n_heads=6, expansion_ratio=4, vocab_size=300),
            "causal_lm",
        ),
        "roberta_deep": (
            T.RobertaConfig(
                hidden_size=48,
                num_hidden_layers=3,
                num_attention_heads=3,
                intermediate_size=80,
                vocab_size=300,
            ),
            "base",
        ),
        "bart_3enc_2dec": (
            T.BartConfig(
                d_model=64,
                encoder_layers=3,
                decoder_layers=2,
                encoder_attention_heads=4,
                decoder_attention_heads=4,
                encoder_ffn_dim=96,
                decoder_ffn_dim=96,
                vocab_size=300,
            ),
            "seq2seq",
        ),
        "bart_wide_2enc_3dec": (
            T.BartConfig(
                d_model=96,
                encoder_layers=2,
                decoder_layers=3,
                encoder_attention_heads=6,
                decoder_attention_heads=6,
                encoder_ffn_dim=128,
                decoder_ffn_dim=128,
                vocab_size=300,
            ),
            "seq2seq",
        ),
        "t5_3enc_1dec": (
            T.T5Config(
                d_model=48,
                d_ff=80,
                d_kv=12,
                num_layers=3,
                num_decoder_layers=1,
                num_heads=4,
                vocab_size=300,
            ),
            "seq2seq",
        ),
    }
