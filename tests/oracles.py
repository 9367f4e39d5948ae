"""Oracles nobody here wrote (DESIGN.md section 5): transformers models and torch's counters.

Each helper imports torch/transformers lazily so that collecting the tests stays cheap.
"""

from __future__ import annotations

import re
from typing import Any


def meta_param_count(config: Any, *, kind: str = "causal_lm") -> int:
    """Parameters of the real transformers model for ``config``, built on the meta device.

    ``kind`` picks the auto class: ``causal_lm`` (decoders), ``base`` (encoder-only models,
    counted as AutoModel with the pooler), ``seq2seq`` (T5, BART with LM head), ``text`` (a
    multimodal checkpoint built as AutoModelForCausalLM, counting its language model and LM
    head only: every parameter outside the vision tower and the multi-modal projector).
    ``model.parameters()`` de-duplicates tied weights, as a user would count them.
    """
    import torch
    import transformers

    auto = {
        "causal_lm": transformers.AutoModelForCausalLM,
        "text": transformers.AutoModelForCausalLM,
        "base": transformers.AutoModel,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
    }[kind]
    with torch.device("meta"):
        try:
            model = auto.from_config(config)
        except ValueError:  # a vision-language wrapper that is not a causal LM class
            if kind != "text":
                raise
            model = transformers.AutoModelForImageTextToText.from_config(config)
    if kind == "text":
        return sum(
            p.numel() for name, p in model.named_parameters() if not VISION_PARAMETER.search(name)
        )
    return sum(p.numel() for p in model.parameters())


VISION_PARAMETER = re.compile(r"vision|visual|multi_modal_projector|patch_embed")
"""Names of the parameters a multimodal checkpoint holds outside its language model."""
