"""tfcli.flops, tfcli.hardware, tfcli.roofline and `tfcli flops`: properties, golden values
from published formulas, and the command as a user runs it (oracles: test_flops_oracle.py)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests.cli_helpers import assert_one_line_error, run_cli
from tests.specs_for_tests import llama_like
from tfcli.cli import app
from tfcli.errors import UsageError
from tfcli.flops import (
    attended_pairs,
    decode_flops,
    forward_flops,
    kaplan_forward_flops_per_token,
    non_embedding_params,
    palm_training_flops_per_token,
    scaling_table,
    training_flops,
)
from tfcli.hardware import PRESETS, lookup_hardware, resolve_hardware
from tfcli.loaders import load_model, shipped_specs
from tfcli.memory import kv_cache_bytes, weight_bytes
from tfcli.params import count_params
from tfcli.roofline import decode_roofline, prefill_roofline, training_roofline
from tfcli.spec import ModelSpec

sizes = st.integers(min_value=1, max_value=5000)
windows = st.one_of(st.none(), st.integers(1, 70))


def gpt_like(**changes: object) -> ModelSpec:
    """GPT-2 small's shape (openai-community/gpt2 config.json): MHA, plain GELU MLP, tied."""
    base: dict[str, object] = {
        "name": "gpt-like",
        "family": "gpt2",
        "vocab_size": 50257,
        "hidden_size": 768,
        "num_layers": 12,
        "num_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 1024,
        "position_type": "learned",
        "attention_qkv_bias": True,
        "attention_out_bias": True,
        "mlp_bias": True,
    }
    base.update(changes)
    return ModelSpec(**base)  # type: ignore[arg-type]


def moe_like(**changes: object) -> ModelSpec:
    """Mixtral-8x7B's shape (mistralai/Mixtral-8x7B-v0.1 config.json)."""
    return llama_like(
        name="moe-like",
        vocab_size=32000,
        num_experts=8,
        num_experts_per_token=2,
        **changes,
    )


# ---- the pair counter ------------------------------------------------------------------------


def brute_pairs(seq: int, *, causal: bool, window: int | None, context: int) -> int:
    """Count pairs one by one: causal masks keys after the query and beyond the window; full
    multiplies every present key (a sliding cache keeps w - 1 past tokens)."""
    if not causal:
        cached = context if window is None else min(context, window - 1)
        return seq * (cached + seq)
    total = 0
    for i in range(seq):
        position = context + i
        for j in range(context + seq):
            if j > position or (window is not None and position - j >= window):
                continue
            total += 1
    return total


@given(st.integers(1, 60), windows, st.integers(0, 40))
def test_pairs_match_brute_force(seq: int, window: int | None, context: int) -> None:
    for causal in (True, False):
        expected = brute_pairs(seq, causal=causal, window=window, context=context)
        assert attended_pairs(seq, causal=causal, window=window, context=context) == expected


@given(sizes)
def test_causal_plus_strictly_upper_is_full(seq: int) -> None:
    strictly_upper = brute_upper = seq * (seq - 1) // 2
    assert attended_pairs(seq, causal=True) + strictly_upper == attended_pairs(seq, causal=False)
    assert attended_pairs(seq, causal=True) == seq * (seq + 1) // 2
    assert brute_upper == attended_pairs(seq, causal=False) - attended_pairs(seq, causal=True)


@given(sizes, sizes)
def test_sliding_window_bounded_by_causal(seq: int, window: int) -> None:
    sliding = attended_pairs(seq, causal=True, window=window)
    assert sliding <= attended_pairs(seq, causal=True)
    assert sliding <= seq * window
    if window >= seq:
        assert sliding == attended_pairs(seq, causal=True)
    else:  # closed form: a triangle of the first w queries, then w keys each
        assert sliding == window * (window + 1) // 2 + (seq - window) * window


@given(sizes, sizes, windows)
def test_decode_with_cache_is_difference_of_prefills(
    context: int, new: int, window: int | None
) -> None:
    both = attended_pairs(context + new, causal=True, window=window)
    alone = attended_pairs(context, causal=True, window=window)
    assert attended_pairs(new, causal=True, window=window, context=context) == both - alone
    expected_one = context + 1 if window is None else min(context + 1, window)
    assert attended_pairs(1, causal=True, window=window, context=context) == expected_one


def test_cross_attention_pairs_are_seq_times_encoder_seq() -> None:
    assert attended_pairs(7, causal=False, keys=512) == 7 * 512


def test_bad_pair_arguments_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        attended_pairs(-1, causal=True)
    with pytest.raises(UsageError):
        attended_pairs(4, causal=True, window=0)


# ---- forward FLOPs ---------------------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 300), st.sampled_from(["d", "m", "s"]))
def test_flops_affine_in_layers(a: int, b: int, seq: int, kind: str) -> None:
    make = {
        "d": lambda n: llama_like(num_layers=n),
        "m": lambda n: moe_like(num_layers=n),
        "s": lambda n: llama_like(num_layers=n, sliding_window=64),
    }[kind]

    def total(layers: int) -> int:
        return forward_flops(make(layers), seq).total

    per_layer = total(2) - total(1)
    assert total(a) - total(b) == (a - b) * per_layer


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 8), st.integers(1, 400))
def test_flops_linear_in_batch(batch: int, seq: int) -> None:
    for spec in (llama_like(), moe_like(), gpt_like()):
        one = forward_flops(spec, seq)
        many = forward_flops(spec, seq, batch=batch)
        assert many.total == batch * one.total
        assert many.components == {k: batch * v for k, v in one.components.items()}


@pytest.mark.parametrize("name", [name for name, _ in shipped_specs()])
def test_components_and_layers_sum_to_total_for_every_shipped_spec(name: str) -> None:
    spec = load_model(name).spec
    for attention in ("causal", "full"):
        count = forward_flops(spec, 1000, attention=attention, encoder_seq=300)
        assert sum(count.components.values()) == count.total
        heads = count.components.get("lm_head", 0) + count.components.get("pooler", 0)
        assert sum(layer.total for layer in count.layers) + heads == count.total
        assert count.attention_flops == sum(layer.attention for layer in count.layers) + sum(
            v
            for k, v in count.components.items()
            if k.startswith("cross_attention.") and k.endswith((".scores", ".av"))
        )
        has_attention = any(run.plan.mixer in ("attention", "mla") for run in spec.layer_runs)
        assert (0 < count.attention_share < 1) if has_attention else count.attention_share == 0
        assert all(isinstance(v, int) and v > 0 for v in count.components.values())
        assert count.elementwise > 0 and "elementwise" not in count.components


def test_mha_spec_equals_textbook_formula() -> None:
    """MHA with kv_heads = heads, gated MLP: per layer 4 x 2 t h^2 (q, k, v, o) + 3 x 2 t h f;
    attention 2 x 2 x pairs x h (QK^T and AV over all heads); LM head 2 t h V."""
    h, f, s, v, n = 1024, 4096, 512, 1000, 3
    spec = llama_like(
        hidden_size=h,
        num_heads=16,
        num_kv_heads=16,
        intermediate_size=f,
        vocab_size=v,
        num_layers=n,
    )
    pairs = s * (s + 1) // 2
    per_layer = 8 * s * h * h + 3 * 2 * s * h * f + 4 * pairs * h
    assert forward_flops(spec, s).total == n * per_layer + 2 * s * h * v
    gqa = forward_flops(llama_like(hidden_size=h, num_heads=16, num_kv_heads=16), s)
    mha = forward_flops(llama_like(hidden_size=h, num_heads=16, num_kv_heads=None), s)
    assert gqa.components == mha.components


def test_chinchilla_appendix_f_formula() -> None:
    """Hoffmann et al. 2022 (Chinchilla), Appendix F, per forward pass: embeddings 2 s V d;
    per layer q/k/v 2 x 3 s d (kH), logits 2 s^2 (kH), softmax 3 H s^2, softmax @ values
    2 s^2 (kH), final linear 2 s (kH) d, dense block 2 s (d f + d f); logits 2 s d V.
    tfcli's full convention equals it minus the embedding term (a lookup, not a matmul) and
    the softmax (elementwise line), for an MHA model with a plain MLP."""
    spec = gpt_like(position_type="none")
    s, d, f, vocab, heads = 2048, 768, 3072, 50257, 12
    k_h = (d // heads) * heads
    attention = (
        2 * 3 * s * d * k_h
        + 2 * s * s * k_h
        + 3 * heads * s * s
        + 2 * s * s * k_h
        + 2 * s * k_h * d
    )
    dense = 2 * s * (d * f + d * f)
    chinchilla = 2 * s * vocab * d + 12 * (attention + dense) + 2 * s * d * vocab
    ours = forward_flops(spec, s, attention="full").total
    assert ours == chinchilla - 2 * s * vocab * d - 12 * 3 * heads * s * s


def test_kaplan_and_palm_differ_from_ours_by_named_terms_only() -> None:
    """Kaplan et al. 2020 Table 1 (2N + 2 n_layer n_ctx d_attn per token) and PaLM appendix B
    (6N + 12 L H Q T per training token) against tfcli for Llama-3-8B (untied head, no biases).
    N includes the norm weights, which are not matmuls: 2N over-counts 2 x norms. Kaplan's
    causal average uses n_ctx keys per query where the exact causal mean is (s + 1) / 2 x 2:
    tfcli has 2 L d_attn more per token. PaLM counts full attention, as tfcli's full count."""
    spec = load_model("llama-3-8b").spec
    counts = count_params(spec)
    n = non_embedding_params(counts.components)
    assert n == counts.total - 128256 * 4096
    norms = sum(v for k, v in counts.components.items() if "norm" in k)
    s = 8192
    d_attn = 32 * 128
    causal = forward_flops(spec, s).total
    assert causal == s * (kaplan_forward_flops_per_token(n, spec, s) - 2 * norms + 2 * 32 * d_attn)
    full = forward_flops(spec, s, attention="full").total
    assert 3 * full == s * (palm_training_flops_per_token(n, spec, s) - 6 * norms)


def test_llama_3_8b_attention_at_128k() -> None:
    """At 128K with causal pairs, attention is 2 x 2 x s(s+1)/2 x 4096 x 32 layers: about 70%
    of the forward pass (the question `tfcli flops llama-3-8b --seq 131072` answers)."""
    spec = llama_like()
    s = 131072
    count = forward_flops(spec, s)
    assert count.attention_flops == 32 * 4 * (s * (s + 1) // 2) * 4096
    assert 0.69 < count.attention_share < 0.70
    shares = [forward_flops(spec, n).attention_share for n in (2048, 8192, 32768, 131072)]
    assert shares == sorted(shares)


def test_full_convention_doubles_attention_minus_diagonal() -> None:
    spec = llama_like()
    causal = forward_flops(spec, 1000).attention_flops
    full = forward_flops(spec, 1000, attention="full").attention_flops
    assert full * 1001 == causal * 2000


def test_encoder_is_bidirectional_whatever_the_convention() -> None:
    spec = load_model("bert-base").spec
    assert forward_flops(spec, 512).total == forward_flops(spec, 512, attention="full").total
    assert forward_flops(spec, 512).attention_convention == "full"
    assert all(layer.pairs == 512 * 512 for layer in forward_flops(spec, 512).layers)


def test_logits_last_saves_all_but_one_row_of_the_head() -> None:
    spec = llama_like()
    all_rows = forward_flops(spec, 100, batch=3).total
    last = forward_flops(spec, 100, batch=3, logits="last").total
    assert all_rows - last == 3 * 99 * 2 * 4096 * 128256


def test_moe_counts_the_experts_each_token_uses() -> None:
    spec = moe_like()
    count = forward_flops(spec, 10)
    assert count.components["moe.router"] == 32 * 2 * 10 * 4096 * 8
    assert count.components["moe.routed_experts"] == 32 * 2 * 3 * 2 * 10 * 4096 * 14336
    dense_equivalent = forward_flops(llama_like(vocab_size=32000), 10)
    # top-2 of 8 experts of the dense width: twice the MLP, plus the router.
    assert count.total == (
        dense_equivalent.total + dense_equivalent.components["mlp"] + count.components["moe.router"]
    )


def test_shared_experts_gate_and_dense_first_layers() -> None:
    spec = moe_like(
        num_shared_experts=1,
        moe_intermediate_size=1024,
        shared_expert_gate=True,
        first_dense_layers=2,
        num_layers=4,
    )
    count = forward_flops(spec, 8)
    assert count.components["mlp"] == 2 * 3 * 2 * 8 * 4096 * 14336
    assert count.components["moe.shared_experts"] == 2 * 3 * 2 * 8 * 4096 * 1024
    assert count.components["moe.shared_expert_gate"] == 2 * 2 * 8 * 4096
    assert [layer.mlp for layer in count.layers][:2] == [3 * 2 * 8 * 4096 * 14336] * 2


def test_encoder_decoder_cross_attention_and_encoder_seq() -> None:
    spec = load_model("t5-base").spec
    count = forward_flops(spec, 100, encoder_seq=400)
    h, layers = 768, 12
    assert count.components["cross_attention.k_proj"] == layers * 2 * 400 * h * h
    assert count.components["cross_attention.q_proj"] == layers * 2 * 100 * h * h
    assert count.components["cross_attention.scores"] == layers * 2 * 12 * 100 * 400 * 64
    encoder_layers = [layer for layer in count.layers if layer.stack == "encoder"]
    assert [layer.pairs for layer in encoder_layers] == [400 * 400] * 12


def test_decode_with_and_without_cache() -> None:
    spec = llama_like()
    cost = decode_flops(spec, 8191)
    assert cost.with_cache.seq == 1 and cost.with_cache.context == 8191
    assert all(layer.pairs == 8192 for layer in cost.with_cache.layers)
    assert cost.without_cache.total == forward_flops(spec, 8192, logits="last").total
    assert cost.saving == cost.without_cache.total / cost.with_cache.total > 1000
    # Per new token, a cache turns O(L) projections into O(1): the with-cache step costs what
    # the difference of two prefills costs, except the LM head (last position in both).
    a = forward_flops(spec, 8192, logits="last").total
    b = forward_flops(spec, 8191, logits="last").total
    assert cost.with_cache.total == a - b + 2 * 4096 * 128256


def test_decode_of_encoder_decoder_keeps_cross_kv_and_encoder() -> None:
    spec = load_model("t5-base").spec
    step = decode_flops(spec, 50, encoder_seq=400).with_cache
    assert "cross_attention.k_proj" not in step.components
    assert all(layer.stack == "decoder" for layer in step.layers)
    again = decode_flops(spec, 50, encoder_seq=400).without_cache
    assert again.components["cross_attention.k_proj"] == 12 * 2 * 400 * 768 * 768
    with pytest.raises(UsageError, match="encoder-only"):
        decode_flops(load_model("bert-base").spec, 10)


def test_training_is_three_forwards_four_with_recompute() -> None:
    forward = forward_flops(llama_like(), 2048)
    assert training_flops(forward) == 3 * forward.total
    assert training_flops(forward, recompute=True) == 4 * forward.total


def test_sliding_layers_cap_pairs_and_full_ignores_the_window() -> None:
    spec = llama_like(sliding_window=4096)
    count = forward_flops(spec, 32768)
    expected_pairs = attended_pairs(32768, causal=True, window=4096)
    assert all(layer.pairs == expected_pairs for layer in count.layers)
    full = forward_flops(spec, 32768, attention="full")
    assert all(layer.pairs == 32768 * 32768 for layer in full.layers)
    hybrid = load_model("gemma-2-9b").spec
    kinds = {layer.kind: layer.pairs for layer in forward_flops(hybrid, 8192).layers}
    assert kinds == {
        "sliding": attended_pairs(8192, causal=True, window=4096),
        "full": attended_pairs(8192, causal=True),
    }


def test_scaling_table_rows() -> None:
    rows = scaling_table(llama_like(), (131072, 2048, 8192, 2048))
    assert [row.seq for row in rows] == [2048, 8192, 131072]
    assert [row.attention_share for row in rows] == sorted(row.attention_share for row in rows)
    assert rows[-1].total == forward_flops(llama_like(), 131072).total


@pytest.mark.parametrize(
    "kwargs", [{"seq": 0}, {"seq": 8, "batch": 0}, {"seq": 8, "attention": "half"}]
)
def test_bad_forward_arguments_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        forward_flops(llama_like(), **kwargs)  # type: ignore[arg-type]


# ---- hardware and roofline -------------------------------------------------------------------


def test_hardware_presets_are_the_dense_datasheet_figures() -> None:
    """Dense (no 2:4 sparsity) tensor peaks from the vendors' datasheets."""
    h100 = lookup_hardware("H100")
    assert h100.peak_for("bf16") == 989.4e12 and h100.peak_for("fp8") == 1978.9e12
    assert h100.bandwidth_bytes_per_s == 3.35e12
    assert lookup_hardware("a100").peak_for("bf16") == 312e12
    assert lookup_hardware("A100 80GB").bandwidth_bytes_per_s == 2.039e12
    assert lookup_hardware("mi300x").peak_for("bf16") == 1307.4e12
    assert lookup_hardware("L4").peak_for("fp8") == 242.5e12
    assert lookup_hardware("rtx_4090").peak_for("fp16") == 165.2e12
    assert lookup_hardware("h200").memory_bytes == 141 * 2**30
    for preset in PRESETS:
        assert preset.source and preset.peak_for("bf16") > preset.peak_flops.get("fp32", 0)
        assert lookup_hardware(preset.name.upper()) is preset


def test_unknown_hardware_suggests_a_preset() -> None:
    with pytest.raises(UsageError, match="did you mean"):
        lookup_hardware("h1000")
    with pytest.raises(UsageError, match="fp8"):
        lookup_hardware("a100").peak_for("fp8")


def test_custom_hardware_and_overrides() -> None:
    assert resolve_hardware(None) is None
    custom = resolve_hardware(None, peak_tflops=100, bandwidth_gb_per_s=500, dtype="bf16")
    assert custom is not None and custom.peak_for("bf16") == 100e12
    assert custom.bandwidth_bytes_per_s == 500e9
    tuned = resolve_hardware("h100", peak_tflops=700, dtype="bf16")
    assert tuned is not None and tuned.peak_for("bf16") == 700e12
    assert tuned.bandwidth_bytes_per_s == 3.35e12
    with pytest.raises(UsageError):
        resolve_hardware(None, bandwidth_gb_per_s=100)
    with pytest.raises(UsageError):
        resolve_hardware(None, peak_tflops=-1)


def test_roofline_decode_is_memory_bound_prefill_compute_bound() -> None:
    spec = load_model("llama-3-8b").spec
    counts = count_params(spec)
    h100 = lookup_hardware("h100")
    decode = decode_roofline(spec, decode_flops(spec, 8192), counts, h100, dtype="bf16", batch=1)
    weights = weight_bytes(counts.total, "bf16")
    assert decode.bytes_moved == weights + kv_cache_bytes(spec, 8192, dtype="bf16")
    assert decode.bound == "memory"
    assert decode.seconds == pytest.approx(decode.bytes_moved / 3.35e12)
    assert decode.intensity == pytest.approx(decode.flops / decode.bytes_moved)
    prefill = prefill_roofline(forward_flops(spec, 8192), counts, h100, dtype="bf16", spec=spec)
    assert prefill.bound == "compute"
    assert prefill.seconds == pytest.approx(prefill.flops / 989.4e12)
    train = training_roofline(forward_flops(spec, 8192), counts, h100, dtype="bf16")
    assert train.flops == 3 * forward_flops(spec, 8192).total
    assert sum(train.bytes_parts.values()) == train.bytes_moved == 3 * weights


def test_moe_decode_reads_only_the_experts_it_touches() -> None:
    spec = load_model("mixtral-8x7b").spec
    counts = count_params(spec)
    one = decode_roofline(
        spec, decode_flops(spec, 100), counts, lookup_hardware("h100"), dtype="bf16", batch=1
    )
    weights_one = one.bytes_parts["weights read"]
    assert weights_one < weight_bytes(counts.total, "bf16")
    # one token reads top-2 of 8 experts per layer: the active parameters
    assert weights_one == weight_bytes(counts.active, "bf16")


# ---- the command -------------------------------------------------------------------------------


def test_cli_json_is_one_document_with_raw_integers() -> None:
    result = CliRunner().invoke(app, ["flops", "llama-3-8b", "--seq", "4096", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert sum(doc["components_flops"].values()) == doc["forward_flops"]
    assert isinstance(doc["forward_flops"], int)
    assert doc["conventions"]["attention"] == "causal"
    assert doc["other_convention"]["attention"] == "full"
    assert doc["other_convention"]["attention_ratio"] == pytest.approx(2 * 4096 / 4097)
    assert [row["seq"] for row in doc["scaling"]] == [2048, 4096, 8192, 32768, 131072]
    assert doc["scaling"][0]["naive_score_bytes_per_layer"] == 32 * 2048 * 2048 * 4


def test_cli_human_output_answers_the_128k_question() -> None:
    run = run_cli("flops", "llama-3-8b", "--seq", "131072")
    assert run.code == 0, run.stderr
    first_lines = run.stdout.splitlines()[:5]
    assert any("attention (QK^T + AV) is 69.6% of the forward pass" in x for x in first_lines)
    assert "causal s(s+1)/2" in run.stdout and "counted full instead: 82.1%" in run.stdout
    assert "multiply-accumulate is 2 FLOPs" in run.stdout and "SI units" in run.stdout
    assert "warning:" in run.stderr and "8,192" in run.stderr  # past the trained context


def test_cli_decode_train_hardware_and_explain() -> None:
    decode = run_cli(
        "flops",
        "llama-3-8b",
        "--mode",
        "decode",
        "--context",
        "8191",
        "--hardware",
        "H100",
        "--json",
    )
    doc = json.loads(decode.stdout)
    spec = load_model("llama-3-8b").spec
    assert doc["forward_flops"] == decode_flops(spec, 8191).with_cache.total
    assert doc["decode"]["saving_factor"] > 1000
    assert doc["roofline"]["bound"] == "memory"
    train = json.loads(run_cli("flops", "gpt2", "--mode", "train", "--recompute", "--json").stdout)
    assert train["train_step_flops"] == 4 * train["forward_flops"]
    explain = run_cli(
        "flops", "mixtral-8x7b", "--explain", "--peak-tflops", "100", "--bandwidth", "1000"
    )
    assert explain.code == 0, explain.stderr
    for text in ("Kaplan et al. 2020", "PaLM", "moe.router", "Roofline on custom"):
        assert text in explain.stdout


def test_cli_set_override_is_a_what_if() -> None:
    base = json.loads(run_cli("flops", "llama-3-8b", "--json").stdout)
    mha = json.loads(run_cli("flops", "llama-3-8b", "--set", "num_kv_heads=32", "--json").stdout)
    assert (
        mha["components_flops"]["attention.k_proj"]
        == 4 * base["components_flops"]["attention.k_proj"]
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--seq", "0"], "--seq"),
        (["--batch", "-1"], "--batch"),
        (["--hardware", "h1000"], "did you mean"),
        (["--attention", "half"], "--attention"),
        (["--mode", "inference"], "--mode"),
        (["--context", "100"], "--mode decode"),
        (["--recompute"], "--mode train"),
        (["--encoder-seq", "100"], "encoder-decoder"),
        (["--peak-tflops", "-5"], "--peak-tflops"),
        (["--bandwidth", "100"], "--peak-tflops"),
        (["--dtype", "fp7"], "dtype"),
        (["--hardware", "a100", "--dtype", "fp8"], "fp8"),
        (["--scaling", "1k,zero"], "--scaling"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(args: list[str], fragment: str) -> None:
    assert_one_line_error(run_cli("flops", "llama-3-8b", *args), fragment)


def test_cli_decode_of_an_encoder_is_one_line_exit_2() -> None:
    assert_one_line_error(run_cli("flops", "bert-base", "--mode", "decode"), "encoder-only")


def test_megatron_state_layer_formulas_as_megatron_writes_them() -> None:
    """megatron/training/training.py (hybrid_flops): mamba_layer_flops and gdn_layer_flops,
    transcribed with the published Qwen3-Next-80B and Granite-4.0-H-Small dimensions."""
    from tfcli.flops import megatron_gdn_layer_flops, megatron_mamba_layer_flops
    from tfcli.loaders import load_model

    b, s = 1, 4096
    qwen = load_model("qwen3-next-80b-a3b").spec
    h, qk_dim, v_dim, hv, dv, k = 2048, 16 * 128, 32 * 128, 32, 128, 4
    gdn = (
        2
        * b
        * s
        * (
            h * (2 * qk_dim + 2 * v_dim + 2 * hv)
            + k * (2 * qk_dim + v_dim)
            + hv * dv**2 * 4
            + h * v_dim
        )
    )
    assert megatron_gdn_layer_flops(qwen, b * s) == gdn
    granite = load_model("granite-4.0-h-small").spec
    h, state, groups, heads = granite.hidden_size, 128, 1, 128
    d_in = 2 * h
    mamba = (
        2 * b * s * h * (2 * d_in + 2 * groups * state + heads)
        + 7 * b * s * d_in * state
        + 2 * b * s * d_in * h
    )
    assert (granite.ssm_state_size, granite.ssm_groups, granite.ssm_num_heads) == (128, 1, 128)
    assert megatron_mamba_layer_flops(granite, b * s) == mamba
