"""Property-based fuzzing of the CLI's input side (issue 12, DESIGN.md section 5.6 and 7).

Hypothesis draws config.json documents for every supported model_type (valid keys with
random, missing, extreme, wrongly typed and non-finite values, plus unknown keys), spec YAMLs
(tags, aliases, recursive anchors, nesting, odd scalars) and option values, and runs each
through ``tfcli.cli.main`` in-process. Every outcome must be exit 0 with strict JSON or exit 2
with one stderr line, never a traceback, each case under 5 s (``tests/fuzz_helpers.py``).

Profiles: ``ci`` (the default) is derandomised, a few hundred examples in all, under two
minutes on two cores; ``HYPOTHESIS_PROFILE=dev`` draws ten times more, randomly.

Known exceptions, filtered out with ``assume`` and listed (with the site) when
``TFCLI_FUZZ_LOG`` names a file: tracebacks raised inside ``tfcli/hf_mappings.py``, whose
mappers read raw config values before validation (the lead's declarative rewrite of the
mappers fixes those). In config.json documents layer counts stay small (or just past the
1,000,000 cap): some mappers build per-layer lists before any cap is checked. Spec YAMLs and
``--set`` draw depths up to the cap: the layer plan answers a million layers at once.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.fuzz_helpers import Outcome, check_contract, invoke
from tests.hf_configs import PUBLISHED_CONFIGS
from tfcli.loaders import SUPPORTED_MODEL_TYPES
from tfcli.spec import field_names

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "dev",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "dev" else 1

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "model_specs"

# ---- recording the mapper crashes we step over ----------------------------------------------


def _skip_mapper_crash(outcome: Outcome, document: str) -> None:
    """Filter out (and log) a traceback raised inside tfcli/hf_mappings.py."""
    if not outcome.mapper_crash:
        return
    log = os.environ.get("TFCLI_FUZZ_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            error = f"{type(outcome.error).__name__}: {outcome.error}"[:300]
            f.write(json.dumps({"site": outcome.crash_site, "error": error, "input": document}))
            f.write("\n")
    assume(False)


@contextmanager
def _folder() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="tfcli-fuzz-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# ---- values ---------------------------------------------------------------------------------

LAYER_KEYS = frozenset(
    {
        "num_hidden_layers",
        "n_layer",
        "num_layers",
        "n_layers",
        "num_decoder_layers",
        "encoder_layers",
        "decoder_layers",
        "first_k_dense_replace",
    }
)
"""Keys whose value becomes a layer count (drawn small, or just past the 1,000,000 cap)."""

NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
EXTREME_INTS = st.sampled_from([-(2**63), -1, 0, 1, 2**20 + 1, 2**24 + 1, 2**31, 2**62, 10**17])
SMALL_INTS = st.integers(min_value=-2, max_value=4096)
FLOATS = st.one_of(
    st.sampled_from([0.0, -1.0, 0.5, 1.5, 1e-300, 1e300, -0.0]),
    st.floats(allow_nan=False, allow_infinity=False, allow_subnormal=False, width=32),
)
STRINGS = st.sampled_from(
    ["", "abc", "silu", "gelu_new", "gelu", "relu", "swish", "bfloat16", "float16", "int3",
     "full_attention", "sliding_attention", "yarn", "linear", "gated-gelu", "x" * 5000]
)  # fmt: skip
SCALARS = st.one_of(SMALL_INTS, EXTREME_INTS, FLOATS, NON_FINITE, STRINGS, st.booleans(), st.none())
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["factor", "rope_type", "type", "x", "rope_theta"]), inner,
                        max_size=3),
    ),
    max_leaves=6,
)  # fmt: skip
PLAUSIBLE = st.one_of(
    st.integers(min_value=1, max_value=512),
    st.floats(min_value=1e-6, max_value=1e6, allow_subnormal=False),
    st.booleans(),
    st.sampled_from(["silu", "gelu", "bfloat16", "float32"]),
)
"""Values a real config could hold: most documents then stay valid and reach the output."""
LAYER_VALUES = st.one_of(
    st.integers(min_value=-2, max_value=64),
    st.sampled_from([1000, 1_000_001, 10**9 + 7 - 10**9 + 1_000_000, "12", 12.0, 1.5, None]),
)

COMMON_KEYS = [
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "intermediate_size",
    "head_dim",
    "max_position_embeddings",
    "rms_norm_eps",
    "layer_norm_eps",
    "layer_norm_epsilon",
    "hidden_act",
    "activation_function",
    "torch_dtype",
    "dtype",
    "rope_theta",
    "rope_scaling",
    "rope_parameters",
    "partial_rotary_factor",
    "sliding_window",
    "use_sliding_window",
    "sliding_window_pattern",
    "layer_types",
    "tie_word_embeddings",
    "attention_bias",
    "mlp_bias",
    "num_local_experts",
    "num_experts",
    "num_experts_per_tok",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
    "decoder_sparse_step",
    "mlp_only_layers",
    "first_k_dense_replace",
    "n_routed_experts",
    "n_shared_experts",
    "n_group",
    "topk_group",
    "q_lora_rank",
    "kv_lora_rank",
    "qk_nope_head_dim",
    "qk_rope_head_dim",
    "v_head_dim",
    "query_pre_attn_scalar",
    "attn_logit_softcapping",
    "final_logit_softcapping",
    "rotary_pct",
    "rotary_dim",
    "n_embd",
    "n_head",
    "n_layer",
    "n_positions",
    "n_inner",
    "d_model",
    "d_ff",
    "d_kv",
    "num_heads",
    "num_layers",
    "num_decoder_layers",
    "feed_forward_proj",
    "relative_attention_num_buckets",
    "relative_attention_max_distance",
    "encoder_layers",
    "decoder_layers",
    "encoder_attention_heads",
    "decoder_attention_heads",
    "encoder_ffn_dim",
    "decoder_ffn_dim",
    "ffn_dim",
    "word_embed_proj_dim",
    "type_vocab_size",
    "num_kv_heads",
    "multi_query",
    "new_decoder_architecture",
    "parallel_attn",
    "alibi",
    "n_heads",
    "expansion_ratio",
    "max_seq_len",
    "attn_config",
    "model_type",
]
UNKNOWN_KEYS = ("tfcli_unknown_key", "auto_map", "architectures", "_name_or_path")


def _base_configs() -> dict[str, dict[str, Any]]:
    """One published config.json per model_type (or ``{model_type}`` alone: class defaults)."""
    found: dict[str, dict[str, Any]] = {}
    for config in PUBLISHED_CONFIGS.values():
        found.setdefault(config["model_type"], config)
    return {mt: found.get(mt, {"model_type": mt}) for mt in sorted(SUPPORTED_MODEL_TYPES)}


BASE_CONFIGS = _base_configs()


@st.composite
def config_documents(draw: st.DrawFn) -> str:
    """A config.json text: a published config with keys changed, dropped and added."""
    model_type = draw(st.sampled_from(sorted(BASE_CONFIGS)))
    config = dict(BASE_CONFIGS[model_type])
    keys = sorted(set(config) | set(COMMON_KEYS)) + list(UNKNOWN_KEYS)
    for key in draw(st.lists(st.sampled_from(sorted(config)), max_size=2, unique=True)):
        if key != "model_type" or draw(st.booleans()):
            config.pop(key, None)
    values = draw(st.sampled_from([VALUES, PLAUSIBLE]))
    for key in draw(st.lists(st.sampled_from(keys), max_size=4, unique=True)):
        config[key] = draw(LAYER_VALUES if key in LAYER_KEYS else values)
    if draw(st.integers(0, 9)) == 0:  # sometimes not an object at all, or a deep one
        return json.dumps(draw(st.sampled_from([[config], "x", 1, None, {"a": [[[[[[]]]]]]}])))
    return json.dumps(config, allow_nan=True)


COMMANDS = st.sampled_from(
    [
        ("params", "--json"),
        ("flops", "--json"),
        ("flops", "--json", "--mode", "decode", "--context", "100"),
        ("kvcache", "--json"),
        ("kvcache", "--json", "--budget", "80GiB"),
        ("show", "--json"),
        ("params",),
        ("flops", "--mode", "train"),
        ("kvcache", "--budget", "24GiB"),
        ("show",),
    ]
)
"""Commands run on each drawn document; the last four render the human view (Rich)."""


@settings(max_examples=200 * SCALE)
@given(document=config_documents(), command=COMMANDS)
def test_config_json_documents(document: str, command: tuple[str, ...]) -> None:
    with _folder() as folder:
        path = folder / "config.json"
        path.write_text(document, encoding="utf-8")
        outcome = invoke(command[0], str(path), *command[1:])
    _skip_mapper_crash(outcome, document)
    check_contract(outcome, json_output="--json" in command)


# ---- spec YAML ------------------------------------------------------------------------------

YAML_BASES = ("gpt2", "llama-3.2-1b", "t5-base", "deepseek-v2-lite", "mixtral-8x7b", "gemma-2-9b")
NESTED = st.integers(1, 2000).map(lambda n: "[" * n + "]" * n)
YAML_SCALARS = st.one_of(
    st.sampled_from(
        [
            "!!int abc", "!!float abc", "!!timestamp x", "!!bool maybe", "!!binary aGVsbG8=",
            "!!set {a, b}", "!!omap [a: 1]", "!!python/object:os.system x", "!!str 12",
            ".nan", ".inf", "-.inf", "1e400", "1.0e+400", "190:20:30", "0x7fffffffffffffff",
            "1" + "0" * 5000, "-1", "0", "1.5", "~", "yes", "2001-12-14", "&a [1, *a]",
            "&b {x: *b}", "*undefined", "{a: 1, a: 2}", "[1, 2", "'" + "x" * 10000 + "'",
            "{factor: .nan}", "{factor: 8, rope_type: linear}", "[full, sliding]", "\t1",
        ]
    ),
    st.integers(-3, 5000).map(str),
    st.sampled_from(["1000000", "685230", "1000001", "999999"]),  # depths at the cap
    NESTED,
)  # fmt: skip
PLAUSIBLE_YAML = st.one_of(
    st.integers(1, 512).map(str),
    st.sampled_from(["true", "false", "1.0e-05", "10000.0", "null", "silu", "rmsnorm", "bf16"]),
)
BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"b{i}: &b{i} [{', '.join([f'*{p}'] * 10)}]\n"
    for i, p in enumerate(["a"] + [f"b{j}" for j in range(8)])
)


@st.composite
def spec_documents(draw: st.DrawFn) -> str:
    """A spec YAML text: a shipped spec with lines replaced, added, or the whole broken."""
    base = (SPECS / f"{draw(st.sampled_from(YAML_BASES))}.yaml").read_text(encoding="utf-8")
    lines = base.splitlines()
    values = draw(st.sampled_from([YAML_SCALARS, PLAUSIBLE_YAML]))
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from([*field_names(), "unknown_field", "<<"]))
        value = draw(values)
        lines = [line for line in lines if not line.startswith(f"{key}:")]
        lines.insert(draw(st.integers(0, len(lines))), f"{key}: {value}")
    text = "\n".join(lines) + "\n"
    wrap = draw(st.integers(0, 11))
    if wrap == 0:
        return BOMB
    if wrap == 1:
        return "- " + text.replace("\n", "\n  ")  # a list, not a mapping
    if wrap == 2:
        return text[: draw(st.integers(0, len(text)))]  # cut anywhere
    return text


@settings(max_examples=150 * SCALE)
@given(document=spec_documents(), command=COMMANDS)
def test_spec_yaml_documents(document: str, command: tuple[str, ...]) -> None:
    with _folder() as folder:
        path = folder / "fuzzed.yaml"
        path.write_text(document, encoding="utf-8")
        outcome = invoke(command[0], str(path), *command[1:])
    check_contract(outcome, json_output="--json" in command)


# ---- option values --------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.integers(-5, 10**6).map(str),
    st.sampled_from(
        ["0", "-1", "1" + "0" * 200, "1" + "0" * 5000, "abc", "", "1.5", "1e400", "nan",
         "inf", "-inf", "8k", "0x10", " 12 ", "١٢"]
    ),
)  # fmt: skip
SIZE_TEXT = st.sampled_from(
    ["80", "80GiB", "80GB", "24g", "1e400GB", "1e400", "-1GB", "0GB", "nanGB", "infGiB", "1.5TiB",
     "80 GiB", "80XB", "GiB", "1" + "0" * 200 + "GB", "1e9B", "10%", "0.1", "1e400%", "nan%"]
)  # fmt: skip
LIST_TEXT = st.one_of(NUMBER_TEXT, st.lists(NUMBER_TEXT, min_size=2, max_size=4).map(",".join))
"""One value or a sweep list (flops and kvcache take both)."""
SET_VALUES = st.one_of(YAML_SCALARS, st.integers(-2, 3000).map(str))


def _set_items() -> st.SearchStrategy[list[str]]:
    item = st.tuples(st.sampled_from([*field_names(), "bogus", ""]), SET_VALUES).map(
        lambda kv: (
            f"{kv[0]}={kv[1]}"
            if kv[0] not in ("num_layers", "num_encoder_layers") or not kv[1].isdigit()
            else f"{kv[0]}={min(int(kv[1][:6]), 3000)}"
        )
    )
    return st.lists(st.one_of(item, st.sampled_from(["noequals", "=1"])), max_size=2)


@st.composite
def option_lines(draw: st.DrawFn) -> list[str]:
    """A command line with random option values on a shipped model."""
    model = draw(st.sampled_from(["llama-3-8b", "t5-base", "deepseek-v3", "gemma-2-9b", "gpt2"]))
    command = draw(st.sampled_from(["params", "flops", "kvcache", "show", "compare"]))
    argv = [command, model] + (["gpt2"] if command == "compare" else [])
    options: dict[str, st.SearchStrategy[str]] = {
        "params": st.fixed_dictionaries({}, optional={"--dtype": STRINGS}),
        "show": st.fixed_dictionaries({}),
        "compare": st.fixed_dictionaries(
            {}, optional={"--seq": NUMBER_TEXT, "--batch": NUMBER_TEXT, "--dtype": STRINGS}
        ),
        "flops": st.fixed_dictionaries(
            {},
            optional={
                "--seq": LIST_TEXT,
                "--batch": LIST_TEXT,
                "--mfu": NUMBER_TEXT,
                "--mbu": st.sampled_from(["0.5", "0", "1.5", "nan", "inf", "-0.1"]),
                "--format": st.sampled_from(["table", "json", "csv", "markdown", "yaml"]),
                "--mode": st.sampled_from(["prefill", "decode", "train", "bogus"]),
                "--context": LIST_TEXT,
                "--attention": st.sampled_from(["causal", "full", "x"]),
                "--scaling": st.lists(NUMBER_TEXT, max_size=3).map(",".join),
                "--peak-tflops": NUMBER_TEXT,
                "--bandwidth": NUMBER_TEXT,
                "--hardware": st.sampled_from(["h100", "a100", "nope"]),
                "--encoder-seq": NUMBER_TEXT,
            },
        ),
        "kvcache": st.fixed_dictionaries(
            {},
            optional={
                "--seq": LIST_TEXT,
                "--batch": LIST_TEXT,
                "--mfu": st.sampled_from(["0.5", "0", "2", "nan"]),
                "--budget": SIZE_TEXT,
                "--reserve": SIZE_TEXT,
                "--tp": NUMBER_TEXT,
                "--block-size": NUMBER_TEXT,
                "--dtype": STRINGS,
                "--weights-dtype": STRINGS,
                "--convention": st.sampled_from(["vllm", "transformers", "x"]),
                "--batched-tokens": NUMBER_TEXT,
                "--hardware": st.sampled_from(["h100", "nope"]),
            },
        ),
    }[command]  # type: ignore[assignment]
    for option, value in draw(options).items():
        argv += [option, value]
    for item in draw(_set_items()):
        argv += ["--set", item]
    return [*argv, "--json"]


@settings(max_examples=150 * SCALE)
@given(argv=option_lines())
def test_option_values(argv: list[str]) -> None:
    check_contract(invoke(*argv))


# ---- bench options: refused before any work ------------------------------------------------

BAD_BENCH_OPTIONS = st.sampled_from(
    [
        ("--threads", "0"), ("--threads", "-1"), ("--threads", "100000"), ("--batch", "0"),
        ("--layers", "0"), ("--layers", "1000001"), ("--repeats", "0"), ("--repeats", "10000"),
        ("--warmup", "-1"), ("--seq", "0"), ("--seq", "1" + "0" * 200), ("--seq", "8k,x"),
        ("--context", "-5"), ("--plot", "out.txt"), ("--plot", "no-such-folder/p.png"),
        ("--backend", "fast"), ("--mode", "train"), ("--dtype", "int3"), ("--device", "tpu"),
        ("--sdpa-kernel", "magic"), ("--threads", "nan"), ("--batch", "1e400"),
    ]
)  # fmt: skip
GOOD_BENCH_OPTIONS = st.sampled_from(
    [("--seq", "512"), ("--layers", "1"), ("--repeats", "1"), ("--device", "cpu")]
)


@settings(max_examples=40 * SCALE)
@given(
    bad=st.lists(BAD_BENCH_OPTIONS, min_size=1, max_size=2),
    good=st.lists(GOOD_BENCH_OPTIONS, max_size=2),
)
def test_bench_options_refused_before_any_work(
    bad: list[tuple[str, str]], good: list[tuple[str, str]]
) -> None:
    argv = ["bench", "gpt2", *(x for pair in good + bad for x in pair), "--json"]
    with mock.patch("tfcli.loaders.load_model", side_effect=AssertionError("work started")):
        outcome = invoke(*argv)
    check_contract(outcome)
    assert outcome.code == 2
