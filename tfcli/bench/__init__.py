"""The built-in transformer and the benchmark; the only package that imports torch.

Modules: ``attention`` (the attention core: naive and SDPA backends), ``positions`` (RoPE,
ALiBi, sinusoidal, T5 relative bias), ``layers`` (norms, MLP, mixture of experts),
``model`` (attention modules, blocks, the model, ``build_model``), ``cache`` (the KV cache),
``hf_weights`` (copying transformers weights in, for the equivalence tests), and the bench:
``timing``, ``calibrate``, ``run``; ``--mixers``: ``mixer_specs`` (the kinds and their
one-layer specs, torch-free), ``local_attention`` (banded sliding-window and chunked cores)
and ``mixers`` (the per-kind sweep and its summary).
"""
