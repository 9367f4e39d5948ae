"""The KV cache of the built-in model: what each attention layer keeps between steps.

* standard layers keep K and V, each (B, KVH, S, D);
* sliding-window layers keep at most the last ``w`` tokens (tfcli's "window" rule: the keys
  the next query attends, itself included; see ``tfcli.memory``);
* MLA layers keep the compressed latent (B, S, kv_lora_rank) and the RoPE key
  (B, S, qk_rope_head_dim), and decompress them on every step;
* DeepSeek-V3.2's MLA layers also keep the indexer keys (B, S, index_head_dim);
* cross-attention layers keep the encoder's K and V once;
* state-mixer layers keep a ``MixerState`` (conv columns and a recurrent state) that does not
  grow with the tokens: ``state_nbytes()``, apart from ``nbytes()``.

``nbytes()`` sums the bytes of every cached tensor: the figure ``tfcli kvcache`` predicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from tfcli.bench.state_mixers import MixerState


@dataclass
class LayerCache:
    """One layer's cached tensors; ``first`` is K or the latent, ``second`` V or the RoPE key;
    ``start`` is the absolute position of the first cached token."""

    first: Tensor | None = None
    second: Tensor | None = None
    start: int = 0
    indexer: Tensor | None = None
    """DeepSeek-V3.2's indexer keys (B, S, index_head_dim)."""

    def append_indexer(self, keys: Tensor) -> Tensor:
        """Append new indexer keys (B, S, D_I) and return all of them."""
        self.indexer = keys if self.indexer is None else torch.cat((self.indexer, keys), dim=1)
        return self.indexer

    def append(self, first: Tensor, second: Tensor, *, seq_dim: int) -> None:
        """Append new tokens along ``seq_dim``."""
        if self.first is None or self.second is None:
            self.first, self.second = first, second
        else:
            self.first = torch.cat((self.first, first), dim=seq_dim)
            self.second = torch.cat((self.second, second), dim=seq_dim)

    def trim(self, *, seq_dim: int, window: int | None) -> None:
        """Keep only the last ``window`` tokens (sliding layers), after attending."""
        if window is None or self.first is None or self.second is None:
            return
        extra = self.first.shape[seq_dim] - window
        if extra > 0:
            self.first = self.first.narrow(seq_dim, extra, window).contiguous()
            self.second = self.second.narrow(seq_dim, extra, window).contiguous()
            self.start += extra

    def nbytes(self) -> int:
        kept = (self.first, self.second, self.indexer)
        return sum(t.numel() * t.element_size() for t in kept if t is not None)


@dataclass
class KVCache:
    """Per-layer caches of the decoder (self-attention) and of cross-attention."""

    self_attention: dict[int, LayerCache] = field(default_factory=dict)
    cross_attention: dict[int, LayerCache] = field(default_factory=dict)
    states: dict[int, MixerState] = field(default_factory=dict)
    """Per-sequence states of the state-mixer layers (Gated DeltaNet, Mamba, RWKV)."""
    length: int = 0
    """Tokens already processed (the absolute position of the next token)."""

    def state(self, index: int) -> MixerState:
        return self.states.setdefault(index, MixerState())

    def state_nbytes(self) -> int:
        """Bytes of the state mixers' fixed-size states (not counted by ``nbytes``)."""
        return sum(state.nbytes() for state in self.states.values())

    def layer(self, index: int) -> LayerCache:
        return self.self_attention.setdefault(index, LayerCache())

    def cross(self, index: int) -> LayerCache:
        return self.cross_attention.setdefault(index, LayerCache())

    def nbytes(self) -> int:
        """Bytes of every cached tensor (self and cross attention)."""
        layers = [*self.self_attention.values(), *self.cross_attention.values()]
        return sum(layer.nbytes() for layer in layers)
