"""Training-memory oracle: PyTorch's own MemTracker on a transformers model (DESIGN.md section 5,
item 5). Imports torch and transformers lazily.

One steady-state step is tracked: a first step creates the optimizer state, then
``forward -> backward -> optimizer.step() -> zero_grad(set_to_none=True)`` runs under
``MemTracker`` inside ``FakeTensorMode`` on device cpu (no real memory, no compute).

One patch makes fake mode behave as a real run does: transformers 5 looks at ``position_ids``
to detect packed sequences, and under fake tensors it cannot read them, so it assumes packing
and materialises an s x s mask (and, with a mask, copies K/V for GQA). A real run finds no
packing and uses SDPA's ``is_causal``. The oracle tells transformers what a real run finds
(``find_packed_sequence_indices -> None``); tests/test_train_oracle_fake.py checks that fake
and real runs then agree byte for byte.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Measured:
    params: int
    buffers: int
    grads: int
    optimizer: int
    activations: int
    """Activation bytes alive at the end of the forward pass (loss computed)."""
    peak: int
    peak_forward: int
    peak_backward: int
    peak_optimizer: int


def _no_packing() -> Any:
    import transformers.masking_utils as mu

    original = mu.find_packed_sequence_indices

    @contextlib.contextmanager
    def patched() -> Any:
        mu.find_packed_sequence_indices = lambda position_ids: None
        try:
            yield
        finally:
            mu.find_packed_sequence_indices = original

    return patched()


def build_model(config: Any, *, impl: str, precision: str, kind: str = "causal_lm") -> Any:
    import torch
    import transformers

    auto = {
        "causal_lm": transformers.AutoModelForCausalLM,
        "base": transformers.AutoModel,
        "seq2seq": transformers.AutoModelForSeq2SeqLM,
    }[kind]
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    return auto.from_config(config, attn_implementation=impl, dtype=dtype)


def measure(
    config: Any,
    *,
    batch: int,
    seq: int,
    impl: str = "sdpa",
    precision: str = "fp32",
    optimizer: str = "adamw",
    recompute: str = "none",
    kind: str = "causal_lm",
    fake: bool = True,
) -> Measured:
    """MemTracker's figures for one steady-state training step of ``config``."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.mem_tracker import MemTracker

    cpu = torch.device("cpu")
    mode = FakeTensorMode() if fake else contextlib.nullcontext()
    with mode, _no_packing():
        model = build_model(config, impl=impl, precision=precision, kind=kind)
        if recompute == "full":
            model.gradient_checkpointing_enable()
        model.train()
        if optimizer == "adamw":
            opt = torch.optim.AdamW(model.parameters(), foreach=False)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, foreach=False)
        ids = torch.randint(0, config.vocab_size, (batch, seq))

        def forward() -> Any:
            autocast = (
                torch.autocast("cpu", dtype=torch.bfloat16)
                if precision == "bf16-mixed"
                else contextlib.nullcontext()
            )
            with autocast:
                if kind == "seq2seq":
                    return model(input_ids=ids, decoder_input_ids=ids, labels=ids).loss
                if kind == "base":
                    out = model(input_ids=ids).last_hidden_state
                    return out.float().pow(2).mean()
                return model(input_ids=ids, labels=ids).loss

        loss = forward()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        del loss

        tracker = MemTracker()
        tracker.track_external(model, opt)
        phases: dict[str, int] = {}
        with tracker:
            loss = forward()
            after_forward = tracker.get_tracker_snapshot()[cpu]
            phases["forward"] = tracker.get_tracker_snapshot("peak")[cpu]["Total"]
            loss.backward()
            del loss
            phases["backward"] = tracker.get_tracker_snapshot("peak")[cpu]["Total"]
            opt.step()
            peak_snap = tracker.get_tracker_snapshot("peak")[cpu]
            step_snap = tracker.get_tracker_snapshot()[cpu]
            opt.zero_grad(set_to_none=True)
        keys = {
            str(k.value) if hasattr(k, "value") else str(k): v for k, v in after_forward.items()
        }
        step_keys = {
            str(k.value) if hasattr(k, "value") else str(k): v for k, v in step_snap.items()
        }
    return Measured(
        params=keys["Parameter"],
        buffers=keys["Buffer"],
        grads=step_keys["Gradient"],
        optimizer=keys["Optstate"],
        activations=keys["Activation"],
        peak=peak_snap["Total"],
        peak_forward=phases["forward"],
        peak_backward=phases["backward"],
        peak_optimizer=peak_snap["Total"],
    )
