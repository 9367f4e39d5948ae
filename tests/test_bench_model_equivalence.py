"""The built-in model equals transformers (DESIGN.md oracle 4): same weights, same logits.

For each case a small transformers model with random weights is built (eager attention and
eager experts), its weights are copied into the built-in model of the spec tfcli's loader
derives from the same config, and the outputs are compared in float32 with
``torch.testing.assert_close``'s default tolerances: logits for decoders and
encoder-decoders, the last hidden state for encoders; both attention backends; and the
KV-cache path (prefill, then one-token steps) against the full forward.
"""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from tests.bench_cases import configs  # noqa: E402
from tfcli.bench.cache import KVCache  # noqa: E402
from tfcli.bench.hf_weights import load_hf_weights  # noqa: E402
from tfcli.bench.model import build_model  # noqa: E402
from tfcli.loaders import spec_from_hf_config  # noqa: E402

CASES = configs()
SEQ = 12
AUTO = {
    "causal_lm": transformers.AutoModelForCausalLM,
    "base": transformers.AutoModel,
    "seq2seq": transformers.AutoModelForSeq2SeqLM,
}


def pair(case: str) -> tuple[Any, Any, str]:
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
    spec = spec_from_hf_config(config.to_dict(), name=case).spec
    ours = build_model(spec).eval()
    load_hf_weights(ours, hf)
    return hf, ours, kind


def reference(hf: Any, kind: str, ids: Any, dec: Any) -> Any:
    with torch.no_grad():
        if kind == "seq2seq":
            return hf(input_ids=ids, decoder_input_ids=dec).logits
        if kind == "base":
            return hf(input_ids=ids).last_hidden_state
        return hf(input_ids=ids).logits


@pytest.mark.parametrize("backend", ["naive", "sdpa"])
@pytest.mark.parametrize("case", list(CASES))
def test_same_outputs_as_transformers(case: str, backend: str) -> None:
    hf, ours, kind = pair(case)
    ours.set_backend(backend)
    ids = torch.randint(3, 300, (2, SEQ))
    dec = torch.randint(3, 300, (2, SEQ // 2))
    expected = reference(hf, kind, ids, dec)
    with torch.no_grad():
        got = ours(ids, decoder_input_ids=dec) if kind == "seq2seq" else ours(ids)
    torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("case", [c for c in CASES if CASES[c][1] != "base"])
def test_cached_decoding_matches_the_full_forward(case: str) -> None:
    _hf, ours, kind = pair(case)
    ids = torch.randint(3, 300, (1, SEQ))
    with torch.no_grad():
        if kind == "seq2seq":
            memory = ours.encode(ids)
            dec = torch.randint(3, 300, (1, 6))
            full = ours(ids, decoder_input_ids=dec, memory=memory)
            cache = KVCache()
            steps = [ours(ids, decoder_input_ids=dec[:, :3], memory=memory, cache=cache)]
            for t in range(3, 6):
                steps.append(
                    ours(ids, decoder_input_ids=dec[:, t : t + 1], memory=memory, cache=cache)
                )
        else:
            full = ours(ids)
            cache = KVCache()
            steps = [ours(ids[:, :8], cache=cache)]
            for t in range(8, SEQ):
                steps.append(ours(ids[:, t : t + 1], cache=cache))
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
