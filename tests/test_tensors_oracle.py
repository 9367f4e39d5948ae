"""Parameter tensors against transformers on the meta device, exact (DESIGN.md oracle 1).

``tfcli.tensors.parameter_tensors`` derives the tensors from ``tfcli.shapes``; for every
model type of tests/test_params_oracle.py and tests/test_encoders_oracle.py the multiset of
their shapes equals the shapes of ``model.parameters()`` of the transformers model built from
the same config (the tensor count is what AdamW's ``step`` scalars follow, dim 0 what FSDP2
pads). Names are tfcli's; shapes are compared, each tensor's dims in order.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

transformers = pytest.importorskip("transformers")
pytest.importorskip("torch")

from tests.oracles import VISION_PARAMETER  # noqa: E402
from tests.test_encoders_oracle import PARAM_CASES  # noqa: E402
from tests.test_params_oracle import CASES  # noqa: E402
from tfcli.loaders import load_model  # noqa: E402
from tfcli.tensors import parameter_tensors  # noqa: E402

ALL = {**CASES, **{name: (config, "base") for name, config in PARAM_CASES.items()}}


def meta_shapes(config: Any, kind: str) -> Counter[tuple[int, ...]]:
    """Shapes of the transformers model's parameters (the language model's, for ``text``)."""
    import torch

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
            model = transformers.AutoModelForImageTextToText.from_config(config)
    return Counter(
        tuple(p.shape)
        for name, p in model.named_parameters()
        if kind != "text" or not VISION_PARAMETER.search(name)
    )


@pytest.mark.parametrize("case", list(ALL))
def test_parameter_tensors_are_transformers_parameters(case: str, tmp_path: Path) -> None:
    config, kind = ALL[case]
    config.save_pretrained(tmp_path)
    ours = Counter(t.shape for t in parameter_tensors(load_model(str(tmp_path)).spec))
    theirs = meta_shapes(config, kind)
    assert ours == theirs, {"only tfcli": ours - theirs, "only transformers": theirs - ours}
