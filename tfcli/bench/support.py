"""Which spec features the built-in model builds yet: one list, checked before allocating.

The estimates cover more layer kinds than the bench's torch layers do; a spec with a feature
listed here is refused with one line (``BenchError``) instead of building a different model.

torch is not imported here.
"""

from __future__ import annotations

from tfcli.errors import BenchError
from tfcli.plan import ATTENTION_MIXERS, STATE_MIXERS
from tfcli.spec import ModelSpec

BUILT_MIXERS = (*ATTENTION_MIXERS, *STATE_MIXERS)
"""``LayerPlan.mixer`` values the built-in model builds (state mixers: tfcli.bench.state_mixers;
MiniMax's lightning layers with its normed-input residual, ModelSpec.residual_from_norm)."""


def missing_features(spec: ModelSpec) -> list[str]:
    """Features of ``spec`` the built-in model does not implement (empty when it can build)."""
    missing: list[str] = []
    kinds = {run.plan.mixer for run in spec.layer_runs}
    missing += sorted(f"{k} layers" for k in kinds - set(BUILT_MIXERS))
    return missing


def check_buildable(spec: ModelSpec) -> None:
    """Raise ``BenchError`` naming what the built-in model cannot build for ``spec``."""
    missing = missing_features(spec)
    if missing:
        raise BenchError(
            f"the built-in model does not build {', '.join(missing)} yet: tfcli bench cannot "
            f"time {spec.name}",
            hint="tfcli params / flops / kvcache cover it (flops --attention full: as "
            "transformers executes it); tfcli params --verify counts it with transformers",
        )


def check_timeable(spec: ModelSpec, layers: int, mode: str = "prefill") -> None:
    """Raise ``BenchError`` when a prefill timing would meet a layer without attention in
    the first ``layers``: the prefill timing of ``tfcli bench`` (and ``--dist``) times
    attention cores and blocks with attention. Decode (``mode`` decode) steps every built
    layer, state mixers included (``tfcli.bench.decode``)."""
    kinds = sorted({k for k in spec.layer_kinds[:layers] if k in STATE_MIXERS})
    if kinds and mode != "decode":
        raise BenchError(
            f"tfcli bench times attention layers; the first {layers} layer(s) of {spec.name} "
            f"include {', '.join(kinds)} layers",
            hint=_mixers_hint(spec.name, kinds),
        )


def _mixers_hint(name: str, kinds: list[str]) -> str:
    from tfcli.bench.mixer_specs import SPEC_KIND, STATE_MIXERS

    names = {SPEC_KIND[mixer]: mixer for mixer in STATE_MIXERS}  # layer kind -> --mixers name
    timed = [names[k] for k in kinds if k in names]
    if timed:
        return (
            f"time those layers with tfcli bench {name} --mixers full,{','.join(timed)} "
            f"(prefill) or tfcli bench {name} --mode decode; tfcli flops / kvcache estimate "
            "them"
        )
    return f"tfcli bench {name} --mode decode times them; tfcli flops / kvcache estimate them"
