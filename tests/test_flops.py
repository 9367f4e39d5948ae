"""Properties and hand-checkable values of tfcli.flops (the oracle tests are separate)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.specs_for_tests import llama_like
from tfcli.flops import attended_pairs, decode_flops, forward_flops, training_flops

sizes = st.integers(min_value=1, max_value=5000)


def brute_pairs(seq: int, *, causal: bool, window: int | None, context: int) -> int:
    total = 0
    for i in range(seq):
        position = context + i
        for j in range(context + seq):
            if causal and j > position:
                continue
            if causal and window is not None and position - j >= window:
                continue
            total += 1
    return total


@given(st.integers(1, 60), st.one_of(st.none(), st.integers(1, 70)), st.integers(0, 40))
def test_pairs_match_brute_force(seq: int, window: int | None, context: int) -> None:
    for causal in (True, False):
        expected = brute_pairs(
            seq, causal=causal, window=window if causal else None, context=context
        )
        assert attended_pairs(seq, causal=causal, window=window, context=context) == expected


@given(sizes)
def test_causal_plus_strict_upper_is_full(seq: int) -> None:
    strictly_upper = seq * (seq - 1) // 2
    assert attended_pairs(seq, causal=True) + strictly_upper == attended_pairs(seq, causal=False)
    assert attended_pairs(seq, causal=True) == seq * (seq + 1) // 2


@given(sizes, sizes)
def test_sliding_window_bounded_by_causal(seq: int, window: int) -> None:
    sliding = attended_pairs(seq, causal=True, window=window)
    assert sliding <= attended_pairs(seq, causal=True)
    assert sliding <= seq * window
    if window >= seq:
        assert sliding == attended_pairs(seq, causal=True)


@given(sizes, sizes)
def test_decode_with_cache_is_difference_of_prefills(context: int, new: int) -> None:
    both = attended_pairs(context + new, causal=True)
    assert attended_pairs(new, causal=True, context=context) == both - attended_pairs(
        context, causal=True
    )
    assert attended_pairs(1, causal=True, context=context) == context + 1


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 300))
def test_flops_affine_in_layers(a: int, b: int, seq: int) -> None:
    def total(layers: int) -> int:
        return forward_flops(llama_like(num_layers=layers), seq).total

    per_layer = total(2) - total(1)
    assert total(a) - total(b) == (a - b) * per_layer


def test_components_sum_to_total() -> None:
    count = forward_flops(llama_like(), 4096)
    assert sum(count.components.values()) == count.total
    assert sum(layer.total for layer in count.layers) + count.components["lm_head"] == count.total


def test_mha_spec_equals_textbook_formula() -> None:
    """MHA with kv heads = heads: per layer 8 t h^2 (q, k, v, o) + 4 t h f... in gated form
    3 matrices; attention 2 x 2 x pairs x h (QK^T and AV over all heads)."""
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


def test_llama_3_8b_attention_share_grows_with_length() -> None:
    spec = llama_like()
    shares = [forward_flops(spec, s).attention_share for s in (2048, 8192, 32768, 131072)]
    assert shares == sorted(shares)
    # At 128K with causal pairs, attention is 2 x 2 x s(s+1)/2 x 4096 x 32 layers out of the total.
    s = 131072
    attention = 32 * 4 * (s * (s + 1) // 2) * 4096
    assert forward_flops(spec, s).attention_flops == attention


def test_full_convention_doubles_attention_minus_diagonal() -> None:
    spec = llama_like()
    causal = forward_flops(spec, 1000).attention_flops
    full = forward_flops(spec, 1000, attention="full").attention_flops
    assert full * 1001 == causal * 2000


def test_decode_saving_and_training() -> None:
    spec = llama_like()
    cost = decode_flops(spec, 8191)
    assert cost.with_cache.seq == 1
    assert cost.saving > 1000
    forward = forward_flops(spec, 2048)
    assert training_flops(forward) == 3 * forward.total
    assert training_flops(forward, recompute=True) == 4 * forward.total


def test_sliding_layers_cap_pairs() -> None:
    spec = llama_like(sliding_window=4096)
    count = forward_flops(spec, 32768)
    expected_pairs = attended_pairs(32768, causal=True, window=4096)
    assert all(layer.pairs == expected_pairs for layer in count.layers)
    full = forward_flops(spec, 32768, attention="full")
    assert all(layer.pairs == 32768 * 32768 for layer in full.layers)
