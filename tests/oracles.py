"""Oracles nobody here wrote (DESIGN.md section 5): transformers models and torch's counters.

Each helper imports torch/transformers lazily so that collecting the tests stays cheap.
"""

from __future__ import annotations

from typing import Any


def meta_param_count(config: Any, *, kind: str = "causal_lm") -> int:
    """Parameters of the real transformers model for ``config``, built on the meta device.

    ``kind`` picks the auto class: ``causal_lm`` (decoders), ``base`` (encoder-only models,
    counted as AutoModel with the pooler), ``seq2seq`` (T5, BART with LM head).
    ``model.parameters()`` de-duplicates tied weights, as a user would count them.
    """
    import torch
    import transformers

    auto = {
        "causal_lm": transformers.AutoModelForCausalLM,
        "base": transformers.AutoModel,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
    }[kind]
    with torch.device("meta"):
        model = auto.from_config(config)
    return sum(p.numel() for p in model.parameters())
