"""The built-in model equals transformers (DESIGN.md oracle 4): same weights, same logits.

For each case a small transformers model with random weights is built (eager attention and
eager experts), its weights are copied into the built-in model of the spec tfcli's loader
derives from the same config, and the outputs are compared in float32 with
``torch.testing.assert_close``'s default tolerances: logits for decoders and
encoder-decoders, the last hidden state (and the pooler output) for encoders; both attention
backends; and the KV-cache path (prefill, then one-token steps) against transformers' full
forward and against our own.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.bench_cases import configs  # noqa: E402
from tfcli.bench.cache import KVCache  # noqa: E402
from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import Transformer, build_model  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402
from tfcli.spec import ModelSpec  # noqa: E402

CASES = configs()
SEQ = 12
LENGTHS = (1, 5, 12, 29)
"""Lengths of the full-forward comparison: one token, shorter and longer than the sliding
windows (5), and a length no tile size divides."""
PREFILL = 8  # longer than the sliding windows (5): the cache is trimmed before decoding
PREFILLS = (1, PREFILL)
"""Prompt lengths of the cached path: decoding from the first token on, and after a prompt
longer than the window."""
AUTO = {
    "causal_lm": transformers.AutoModelForCausalLM,
    "base": transformers.AutoModel,
    "seq2seq": transformers.AutoModelForSeq2SeqLM,
}
BACKENDS = ["naive", "sdpa"]


def config_json(config: Any) -> dict[str, Any]:
    """The config.json a hub checkout would hold for ``config``.

    transformers 5 always ties T5's head and keeps the v1.1 "untied, unscaled" head only as
    ``scale_decoder_outputs=False``; the published v1.1 config.json says
    ``tie_word_embeddings: false``, which is what tfcli reads.
    """
    data = config.to_dict()
    if data.get("model_type") == "t5" and data.get("scale_decoder_outputs") is False:
        data["tie_word_embeddings"] = False
    return data


def loaded_spec(case: str) -> ModelSpec:
    config, _kind = CASES[case]
    return spec_from_hf_config(config_json(config), name=case).spec


@functools.cache
def pair(case: str) -> tuple[Any, Transformer, str]:
    """(transformers model, built-in model with its weights, kind), built once per case."""
    config, kind = CASES[case]
    torch.manual_seed(0)
    hf = (
        AUTO[kind]
        .from_config(config, attn_implementation="eager", experts_implementation="eager")
        .eval()
    )
    with torch.no_grad():  # random, non-trivial norms and biases
        for name, param in hf.named_parameters():
            if name.endswith("bias") or "norm" in name.lower():
                param.add_(0.1 * torch.randn_like(param))
    spec = loaded_spec(case)  # as the loader reads it: no fix-ups
    ours = build_model(spec).eval()
    load_hf_weights(ours, hf)
    return hf, ours, kind


def reference(hf: Any, kind: str, ids: Any, dec: Any) -> Any:
    """transformers' full forward: logits, or the last hidden state of an encoder."""
    with torch.no_grad():
        if kind == "seq2seq":
            return hf(input_ids=ids, decoder_input_ids=dec).logits
        if kind == "base":
            return hf(input_ids=ids).last_hidden_state
        return hf(input_ids=ids).logits


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_same_outputs_as_transformers(case: str, backend: str) -> None:
    hf, ours, kind = pair(case)
    ours.set_backend(backend)
    torch.manual_seed(1)
    for length in LENGTHS:
        ids = torch.randint(3, 300, (2, length))
        dec = torch.randint(3, 300, (2, max(1, length // 2)))
        expected = reference(hf, kind, ids, dec)
        with torch.no_grad():
            got = ours(ids, decoder_input_ids=dec) if kind == "seq2seq" else ours(ids)
        torch.testing.assert_close(got, expected, msg=lambda m, n=length: f"length {n}: {m}")
        if ours.pooler is not None:
            with torch.no_grad():
                pooled = hf(input_ids=ids).pooler_output
            torch.testing.assert_close(ours.pooled(got), pooled)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][1] != "base"])
def test_cached_decoding_matches_the_full_forward(case: str, backend: str) -> None:
    """Prefill, then one token at a time: the concatenated logits equal transformers' full
    forward (and ours) over the whole sequence."""
    hf, ours, kind = pair(case)
    ours.set_backend(backend)
    torch.manual_seed(2)
    ids = torch.randint(3, 300, (1, SEQ))
    for prefill in PREFILLS:
        cache = KVCache()
        with torch.no_grad():
            if kind == "seq2seq":
                dec = torch.randint(3, 300, (1, 6))
                expected = reference(hf, kind, ids, dec)
                memory = ours.encode(ids)
                full = ours(ids, decoder_input_ids=dec, memory=memory)
                first = min(prefill, 3)
                steps = [ours(ids, decoder_input_ids=dec[:, :first], memory=memory, cache=cache)]
                for t in range(first, dec.shape[1]):
                    token = dec[:, t : t + 1]
                    steps.append(ours(ids, decoder_input_ids=token, memory=memory, cache=cache))
            else:
                expected = reference(hf, kind, ids, None)
                full = ours(ids)
                steps = [ours(ids[:, :prefill], cache=cache)]
                for t in range(prefill, SEQ):
                    steps.append(ours(ids[:, t : t + 1], cache=cache))
        incremental = torch.cat(steps, dim=1)
        torch.testing.assert_close(incremental, full)
        torch.testing.assert_close(incremental, expected)


@pytest.mark.parametrize(
    ("causal", "window", "q_offset", "key_offset", "s_q", "s_k"),
    [
        (True, None, 0, 0, 7, 7),  # prefill: SDPA's is_causal
        (False, None, 0, 0, 7, 7),  # encoder: no mask
        (True, 3, 0, 0, 7, 7),  # sliding window
        (True, None, 6, 0, 1, 7),  # decode: one query sees every key (no mask at all)
        (True, 3, 9, 7, 1, 3),  # decode on a trimmed sliding cache
        (True, None, 4, 0, 3, 7),  # chunked prefill
    ],
)
@pytest.mark.parametrize("kv_heads", [4, 2, 1])
def test_attention_core_backends_agree(
    causal: bool,
    window: int | None,
    q_offset: int,
    key_offset: int,
    s_q: int,
    s_k: int,
    kv_heads: int,
) -> None:
    """naive (grouped matmul, explicit mask) == SDPA (enable_gqa, is_causal / bool mask),
    and both equal attention written out with K/V repeated per query head."""
    from tfcli.bench.attention import attention_core, attention_mask

    torch.manual_seed(3)
    q = torch.randn(2, 4, s_q, 8)
    k, v = torch.randn(2, kv_heads, s_k, 8), torch.randn(2, kv_heads, s_k, 8)
    bias = torch.randn(4, s_q, s_k)
    kwargs = {"causal": causal, "window": window, "q_offset": q_offset, "key_offset": key_offset}
    for b in (None, bias):
        naive = attention_core(q, k, v, backend="naive", bias=b, **kwargs)
        sdpa = attention_core(q, k, v, backend="sdpa", bias=b, **kwargs)
        repeat = 4 // kv_heads
        scores = q @ k.repeat_interleave(repeat, 1).transpose(-1, -2) / 8**0.5
        scores = scores if b is None else scores + b
        mask = attention_mask(s_q, s_k, device=q.device, **kwargs)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        written_out = scores.softmax(-1) @ v.repeat_interleave(repeat, 1)
        torch.testing.assert_close(naive, written_out)
        torch.testing.assert_close(sdpa, written_out)


@pytest.mark.parametrize("case", ["llama", "deepseek_v3", "bloom"])
def test_attention_parts_compose_to_the_sublayer(case: str) -> None:
    """The bench times project_qkv, core and project_out separately: together they are the
    attention sublayer."""
    _hf, ours, _kind = pair(case)
    ours.set_backend("sdpa")
    attention = ours.block(0).attention
    x = torch.randn(2, 6, ours.spec.hidden_size)
    positions = torch.arange(6)
    bias = ours.position_bias(0, 6, 6, 0, x.device)
    with torch.no_grad():
        q, k, v = attention.project_qkv(x, positions)
        parts = attention.project_out(attention.core(q, k, v, bias=bias))
        torch.testing.assert_close(parts, attention(x, positions, bias=bias))


def test_every_classic_model_type_has_a_weight_mapping_and_a_case() -> None:
    """Every model_type of the classic records (``tfcli.hf.types.RECORDS``) maps onto the
    built-in model and is compared above. The 2025 records (``tfcli.hf.modern``: granite,
    olmo, qwen3_next, gpt_oss, ...) and the multimodal wrappers wait for their mixers in the
    bench (issue 10, part 1)."""
    from tfcli.bench.hf_weights import MAPPERS, SEQ2SEQ_MAPPERS
    from tfcli.hf.types import RECORDS

    read = set(RECORDS)
    assert read <= set(MAPPERS) | set(SEQ2SEQ_MAPPERS)
    assert read <= {loaded_spec(case).family for case in CASES}
