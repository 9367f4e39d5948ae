"""One named regression test per input case of issue 12: bad input is one line and exit 2.

The mapper cases (raw config values read before validation) pass since the declarative
records of ``tfcli/hf`` check each key's type and range. The output side of the issue (ASCII
fallback, closed stdout, /dev/full) is tested elsewhere.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cli_helpers import REPO, assert_one_line_error, run_cli
from tests.fuzz_helpers import Outcome, check_contract, invoke, strict_json
from tfcli import loaders
from tfcli.errors import LoadError, SpecError
from tfcli.loaders import MAX_FILE_BYTES, load_model, parse_overrides
from tfcli.spec import MAX_LAYERS

SPEC_YAML = """\
name: tiny
family: custom
vocab_size: 1000
hidden_size: 64
num_layers: 2
num_heads: 4
intermediate_size: 128
"""


def one_line_error(outcome: Outcome, *fragments: str, max_seconds: float = 5.0) -> str:
    """Exit 2, one stderr line holding ``fragments``, no stdout, no traceback; the line."""
    check_contract(outcome, max_seconds=max_seconds)
    assert outcome.code == 2, (outcome.code, outcome.stdout[:300])
    line = outcome.stderr.strip()
    for fragment in fragments:
        assert fragment.lower() in line.lower(), (fragment, line)
    return line


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config_file(tmp_path: Path, **keys: object) -> str:
    """A config.json with ``keys`` (NaN/Infinity written as JSON extensions)."""
    return str(write(tmp_path / "config.json", json.dumps(keys, allow_nan=True)))


def spec_file(tmp_path: Path, extra: str = "", name: str = "spec.yaml") -> str:
    return str(write(tmp_path / name, SPEC_YAML + extra))


# ---- security: --verify never runs code --------------------------------------------------------

EVIL = """\
import pathlib
pathlib.Path(__file__).with_name("MARKER").write_text("evil.py ran")
from transformers import ViTConfig as EvilConfig, ViTModel as EvilModel
"""


@pytest.mark.slow
def test_verify_with_auto_map_never_prompts_and_never_runs_a_file(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    write(tmp_path / "evil.py", EVIL)
    auto_map = {name: "evil.EvilModel" for name in ("AutoModel", "AutoModelForCausalLM")}
    config = {
        "model_type": "vit",
        "_name_or_path": str(tmp_path),
        "auto_map": {"AutoConfig": "evil.EvilConfig", **auto_map},
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "intermediate_size": 128,
    }
    write(tmp_path / "config.json", json.dumps(config))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "tfcli", "params", "config.json", "--verify", "--json"],
        input="y\n" * 20,  # the answer that used to run evil.py
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert not (tmp_path / "MARKER").exists(), "evil.py was executed"
    assert "custom code" not in proc.stdout + proc.stderr
    assert "[y/N]" not in proc.stdout + proc.stderr
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model_type"] == "vit"  # stdout is one JSON document
    assert time.monotonic() - start < 60


def test_verify_strips_remote_code_keys() -> None:
    from tfcli.verify import without_remote_code

    clean = without_remote_code({"model_type": "vit", "auto_map": {}, "_name_or_path": "x"})
    assert clean == {"model_type": "vit"}


# ---- crashes in the mappers (lead's rewrite) ---------------------------------------------------


def test_zero_heads_with_head_dim(tmp_path: Path) -> None:
    one_line_error(
        invoke("params", config_file(tmp_path, model_type="llama", num_attention_heads=0,
                                      head_dim=64), "--json")
    )  # fmt: skip


def test_rms_norm_eps_string(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="llama", rms_norm_eps="abc")
    one_line_error(invoke("params", path, "--json"), "rms_norm_eps")


def test_hidden_act_list(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="llama", hidden_act=["silu"])
    one_line_error(invoke("params", path, "--json"), "hidden_act")


def test_torch_dtype_list(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="llama", torch_dtype=["bfloat16"])
    one_line_error(invoke("params", path, "--json"), "dtype")


def test_sliding_window_infinity(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="mistral", sliding_window=float("inf"))
    one_line_error(invoke("params", path, "--json"), "Infinity")


def test_num_hidden_layers_2_pow_63(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="llama", num_hidden_layers=2**63)
    one_line_error(invoke("params", path, "--json"), "digits")


@pytest.mark.parametrize(
    ("model_type", "key"),
    [
        ("qwen2_moe", "decoder_sparse_step"),
        ("gemma3_text", "sliding_window_pattern"),
        ("gemma2", "query_pre_attn_scalar"),
    ],
)
def test_zero_divisors(tmp_path: Path, model_type: str, key: str) -> None:
    path = config_file(tmp_path, model_type=model_type, **{key: 0})
    one_line_error(invoke("params", path, "--json"), key)


def test_t5_feed_forward_proj_number(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="t5", feed_forward_proj=5)
    one_line_error(invoke("params", path, "--json"), "feed_forward_proj")


def test_num_hidden_layers_10_pow_15_llama(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="llama", num_hidden_layers=10**15)
    one_line_error(invoke("params", path, "--json"), "num_hidden_layers", "1,000,000")


def _bounded_subprocess(*args: str, cwd: Path) -> subprocess.CompletedProcess[str] | None:
    """``python -m tfcli ARGS`` with 1 GiB of address space and 10 s; None when it hung."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2**30 + 2**29, 2**30 + 2**29))

    try:
        return subprocess.run(
            [sys.executable, "-m", "tfcli", *args],
            capture_output=True,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=10,
            preexec_fn=limit,
        )
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("model_type", ["gemma2", "qwen2_moe"])
def test_num_hidden_layers_10_pow_15_per_layer_mappers(tmp_path: Path, model_type: str) -> None:
    config_file(tmp_path, model_type=model_type, num_hidden_layers=10**15)
    proc = _bounded_subprocess("params", "config.json", "--json", cwd=tmp_path)
    assert proc is not None, "hung (the mapper builds a per-layer list first)"
    assert proc.returncode == 2, proc.stderr[-500:]


# ---- parsers -----------------------------------------------------------------------------------


def test_json_integer_over_4300_digits(tmp_path: Path) -> None:
    text = '{"model_type": "llama", "vocab_size": 1' + "0" * 5000 + "}"
    path = write(tmp_path / "config.json", text)
    one_line_error(invoke("params", str(path), "--json"), "digits")


def test_yaml_integer_over_4300_digits(tmp_path: Path) -> None:
    path = spec_file(tmp_path, "max_position_embeddings: 1" + "0" * 5000 + "\n")
    line = one_line_error(invoke("params", path, "--json"), "!!int")
    assert len(line) < 1000


@pytest.mark.parametrize("depth", [1000, 100_000])
def test_json_nesting_deep(tmp_path: Path, depth: int) -> None:
    path = write(tmp_path / "config.json", '{"a": ' * depth + "1" + "}" * depth)
    one_line_error(invoke("params", str(path), "--json"), "nested")


def test_json_nesting_past_the_document_limit(tmp_path: Path) -> None:
    text = '{"model_type": "llama", "x": ' + "[" * 40 + "]" * 40 + "}"
    path = write(tmp_path / "config.json", text)
    one_line_error(invoke("params", str(path), "--json"), "nested more than 32")


@pytest.mark.parametrize("flow", [True, False])
@pytest.mark.parametrize("c_loader", [True, False])
def test_yaml_nesting_1000_deep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flow: bool, c_loader: bool
) -> None:
    if not c_loader:  # the pure-Python fallback (PyYAML without libyaml)
        monkeypatch.setattr(loaders, "_SafeLoader", loaders.make_safe_loader(yaml.SafeLoader))
    depth = 1000
    if flow:
        body = "rope_scaling: " + "[" * depth + "]" * depth + "\n"
    else:
        body = "rope_scaling:\n" + "".join("  " * i + "- \n" for i in range(depth))
    path = spec_file(tmp_path, body)
    one_line_error(invoke("show", path, "--json"), "nest")


@pytest.mark.parametrize(
    ("value", "tag"),
    [("!!int abc", "!!int"), ("!!float abc", "!!float"), ("!!timestamp x", "!!timestamp"),
     ("!!bool maybe", "!!bool")],
)  # fmt: skip
def test_yaml_bad_tags(tmp_path: Path, value: str, tag: str) -> None:
    path = spec_file(tmp_path, f"norm_eps: {value}\n")
    one_line_error(invoke("show", path, "--json"), tag, "line 8")


def test_yaml_non_plain_values_refused(tmp_path: Path) -> None:
    path = spec_file(tmp_path, "rope_scaling: {factor: 2001-12-14}\n")
    one_line_error(invoke("show", path, "--json"), "date")


def test_yaml_recursive_anchor_show_json(tmp_path: Path) -> None:
    path = spec_file(tmp_path, "rope_scaling: &a {x: *a}\n")
    one_line_error(invoke("show", path, "--json"), "rope_scaling.x", "itself")


def test_yaml_python_tags_refused(tmp_path: Path) -> None:
    path = spec_file(tmp_path, "name: !!python/object/apply:os.system [echo hi]\n")
    one_line_error(invoke("show", path, "--json"), "malformed YAML")


# ---- huge numbers ------------------------------------------------------------------------------


def test_budget_1e400() -> None:
    one_line_error(invoke("kvcache", "llama-3-8b", "--budget", "1e400GB", "--json"), "too large")


def test_budget_needs_a_unit() -> None:
    one_line_error(invoke("kvcache", "llama-3-8b", "--budget", "80", "--json"), "80GiB", "80GB")


def test_reserve_1e400() -> None:
    argv = ("kvcache", "llama-3-8b", "--budget", "80GiB", "--reserve", "1e400", "--json")
    one_line_error(invoke(*argv), "--reserve")
    one_line_error(invoke("kvcache", "llama-3-8b", "--reserve", "1e400", "--json"), "--reserve")


@pytest.mark.parametrize("command", ["flops", "kvcache", "compare"])
def test_seq_1_followed_by_200_zeros(command: str) -> None:
    models = ("llama-3-8b", "gpt2") if command == "compare" else ("llama-3-8b",)
    line = one_line_error(invoke(command, *models, "--seq", "1" + "0" * 200, "--json"), "--seq")
    assert len(line) < 500


def test_scaling_lengths_bounded() -> None:
    one_line_error(invoke("flops", "llama-3-8b", "--scaling", "1" + "0" * 200), "--scaling")


def test_hidden_size_1e200_human_view(tmp_path: Path) -> None:
    path = spec_file(tmp_path, name="base.yaml").replace("base.yaml", "big.yaml")
    write(Path(path), SPEC_YAML.replace("hidden_size: 64", "hidden_size: 1.0e+200"))
    one_line_error(invoke("params", path), "hidden_size")
    config = config_file(tmp_path, model_type="llama", hidden_size=1e200)
    one_line_error(invoke("params", config), "hidden_size")


# ---- files and the hub -------------------------------------------------------------------------


def test_folder_without_permission(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    write(folder / "config.json", json.dumps({"model_type": "llama"}))
    real_stat = os.stat

    def denied(path: object, *args: object, **kwargs: object) -> os.stat_result:
        if str(path).startswith(str(folder) + os.sep):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", denied)
    one_line_error(invoke("params", str(folder), "--json"), "permission denied")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 folder")
def test_folder_mode_000(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    write(folder / "config.json", json.dumps({"model_type": "llama"}))
    folder.chmod(0)
    try:
        one_line_error(invoke("params", str(folder), "--json"), "permission")
    finally:
        folder.chmod(0o755)


def test_unreadable_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = config_file(tmp_path, model_type="llama")

    def denied(*args: object, **kwargs: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    one_line_error(invoke("params", path, "--json"), "permission denied")


def _hub_cache(root: Path) -> Path:
    repo = root / "models--test-org--tiny"
    snapshot = repo / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    write(snapshot / "config.json", json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    return repo / "refs" / "main"


def test_unreadable_refs_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    refs_main = _hub_cache(tmp_path)
    refs_main.mkdir()  # a folder where the hub's file should be: it cannot be read
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    one_line_error(invoke("params", "test-org/tiny", "--json"), "refs/main", "folder")


def test_refs_main_permission_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = pytest.importorskip("huggingface_hub")

    def denied(*args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", "refs/main")

    monkeypatch.setattr(hub, "try_to_load_from_cache", denied)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    one_line_error(invoke("params", "test-org/tiny", "--json"), "permission denied")


@pytest.mark.parametrize("ref", ["../good", "org/go od", "org/" + "x" * 300, "org/name-"])
def test_invalid_hub_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    line = one_line_error(invoke("params", ref, "--json"), "valid hub id")
    assert len(line) < 600


@pytest.mark.slow
def test_verify_yarn_without_factor(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    path = config_file(
        tmp_path, model_type="llama", hidden_size=64, num_attention_heads=4, intermediate_size=128,
        num_hidden_layers=1, vocab_size=100, rope_scaling={"rope_type": "yarn"},
    )  # fmt: skip
    outcome = invoke("params", path, "--verify", "--json")
    one_line_error(outcome, "transformers", "factor", max_seconds=60)


@pytest.mark.slow
def test_verify_vit_zero_heads(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    path = config_file(tmp_path, model_type="vit", num_attention_heads=0)
    outcome = invoke("params", path, "--verify", "--json")
    one_line_error(outcome, "ZeroDivisionError", max_seconds=60)


# ---- bench inputs ------------------------------------------------------------------------------


def test_bench_threads_0() -> None:
    one_line_error(invoke("bench", "gpt2", "--threads", "0", "--json"), "--threads")


@pytest.mark.parametrize("plot", ["out.txt", "missing-folder/out.png"])
def test_bench_plot_refused_before_any_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plot: str
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loaders, "load_model", _must_not_run)
    one_line_error(invoke("bench", "gpt2", "--plot", plot, "--json"), "--plot")


def _must_not_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("work started before the options were checked")


@pytest.fixture
def calibration_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytest.importorskip("torch")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    loaders._warned.clear()
    path = tmp_path / "tfcli" / "calibration.json"
    path.parent.mkdir()
    return path


def _good_entry() -> dict[str, object]:
    from dataclasses import fields

    from tfcli.bench.calibrate import GEMV_INNER_DIMS, Calibration

    entry: dict[str, object] = {f.name: 1.0 for f in fields(Calibration)}
    entry.update(device="cpu", dtype="float32", threads=2, head_dim=64, probe_flops_per_s=0.9)
    entry.update(decode_heads=8, decode_kv_heads=8, gemv_bytes_per_s=[1.0] * len(GEMV_INNER_DIMS))
    entry.update(matmul_spread=0.0, probe_spread=0.0, load_average=None)
    return entry


@pytest.mark.parametrize("bad", [0, "fast", None, -1.0, float("nan")])
def test_calibration_bad_value_is_measured_again(
    calibration_cache: Path, capsys: pytest.CaptureFixture[str], bad: object
) -> None:
    from tfcli.bench.calibrate import _from_cache

    assert _from_cache(_good_entry()) is not None
    assert _from_cache({**_good_entry(), "matmul_flops_per_s": bad}) is None
    assert "measuring again" in capsys.readouterr().err


def test_calibration_symlink_to_dev_zero(
    calibration_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tfcli.bench.calibrate import _load_all

    calibration_cache.symlink_to("/dev/zero")
    start = time.monotonic()
    assert _load_all() == {}
    assert time.monotonic() - start < 1
    assert "character device" in capsys.readouterr().err


# ---- hangs and unbounded work ------------------------------------------------------------------


def test_sexagesimal_layers_are_not_685230(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", SPEC_YAML.replace("num_layers: 2", "num_layers: 190:20:30"))
    one_line_error(invoke("params", str(path), "--json"), "num_layers", "190:20:30")


@pytest.mark.parametrize(
    ("field", "value"),
    [("num_layers", MAX_LAYERS + 1), ("hidden_size", 2**20 + 1), ("vocab_size", 2**24 + 1),
     ("num_heads", 2**20 + 1), ("intermediate_size", 2**20 + 1)],
)  # fmt: skip
def test_size_caps(field: str, value: int) -> None:
    one_line_error(invoke("params", "llama-3-8b", "--set", f"{field}={value}", "--json"), field)


def test_layer_cap_admits_a_million() -> None:
    """Issue 9 asks `--set num_layers=1000000` to answer: the cap must let it through."""
    assert load_model("llama-3-8b", overrides=["num_layers=1000000"]).spec.num_layers == 10**6
    for command in ("params", "flops", "kvcache"):
        outcome = invoke(command, "llama-3-8b", "--set", "num_layers=1000000", "--json")
        check_contract(outcome)
        assert outcome.code == 0, outcome.stderr


def test_fifo_returns_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "x.json"
    os.mkfifo(fifo)
    start = time.monotonic()
    run = run_cli("params", "x.json", cwd=tmp_path)
    assert time.monotonic() - start < 15
    assert_one_line_error(run, "FIFO")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_devices_behind_a_json_name(tmp_path: Path, device: str) -> None:
    (tmp_path / "x.json").symlink_to(device)
    start = time.monotonic()
    one_line_error(invoke("params", str(tmp_path / "x.json"), "--json"), "character device")
    assert time.monotonic() - start < 1


def test_file_over_the_size_cap(tmp_path: Path) -> None:
    text = '{"model_type": "llama", "x": "' + "a" * MAX_FILE_BYTES + '"}'
    path = write(tmp_path / "big.json", text)
    one_line_error(invoke("params", str(path), "--json"), "bytes")


def test_yaml_alias_bomb(tmp_path: Path) -> None:
    bomb = "".join(
        f"b{i}: &b{i} [{', '.join([f'*b{i - 1}' if i else 'x'] * 10)}]\n" for i in range(9)
    )
    text = SPEC_YAML + "rope_scaling:\n  " + bomb.replace("\n", "\n  ")
    path = write(tmp_path / "bomb.yaml", text)
    start = time.monotonic()
    one_line_error(invoke("show", str(path), "--json"), "alias")
    assert time.monotonic() - start < 2


def test_large_yaml_uses_the_c_loader(tmp_path: Path) -> None:
    if yaml.__with_libyaml__:
        assert issubclass(loaders._SafeLoader, yaml.CSafeLoader)
    lines = "".join(f"# padding line {i} {'x' * 60}\n" for i in range(50_000))  # ~3.7 MB
    path = write(tmp_path / "large.yaml", SPEC_YAML + lines)
    start = time.monotonic()
    assert invoke("params", str(path), "--json").code == 0
    assert time.monotonic() - start < 5


# ---- wrong numbers with exit 0 -----------------------------------------------------------------


def test_relative_attention_num_buckets_negative(tmp_path: Path) -> None:
    argv = ("params", "t5-base", "--set", "relative_attention_num_buckets=-5", "--json")
    one_line_error(invoke(*argv), "relative_attention_num_buckets")
    path = config_file(tmp_path, model_type="t5", relative_attention_num_buckets=-5)
    one_line_error(invoke("params", path, "--json"), "relative_attention_num_buckets")


@pytest.mark.parametrize(
    ("key", "value"), [("rope_theta", float("nan")), ("rms_norm_eps", float("-inf"))]
)
def test_non_finite_in_config_json(tmp_path: Path, key: str, value: float) -> None:
    path = config_file(tmp_path, model_type="llama", **{key: value})
    one_line_error(invoke("params", path, "--json"), "non-finite")


@pytest.mark.parametrize(("field", "value"), [("rope_theta", ".nan"), ("norm_eps", "-.inf")])
def test_non_finite_in_spec_yaml(tmp_path: Path, field: str, value: str) -> None:
    one_line_error(invoke("params", spec_file(tmp_path, f"{field}: {value}\n"), "--json"), field)
    one_line_error(invoke("params", "gpt2", "--set", f"{field}={value}", "--json"), field)


@pytest.mark.parametrize(
    "option", [("--peak-tflops", "nan"), ("--peak-tflops", "inf"), ("--bandwidth", "inf")]
)
def test_non_finite_device_options(option: tuple[str, str]) -> None:
    extra = ("--peak-tflops", "100") if option[0] == "--bandwidth" else ()
    one_line_error(invoke("flops", "llama-3-8b", *option, *extra, "--json"), option[0])
    one_line_error(invoke("flops", "llama-3-8b", "--hardware", "h100", *option, "--json"))


@pytest.mark.parametrize("value", ["1e308", "1e-300"])
def test_device_options_bounded(value: str) -> None:
    """1e308 TFLOP/s overflows to an infinite peak in the JSON; 1e-300 to infinite times."""
    for option in ("--peak-tflops", "--bandwidth"):
        argv = ("flops", "llama-3-8b", "--hardware", "h100", option, value, "--json")
        one_line_error(invoke(*argv), option)


@pytest.mark.parametrize("command", ["params", "flops", "kvcache"])
def test_set_dtype_int3(command: str) -> None:
    one_line_error(invoke(command, "llama-3-8b", "--set", "dtype=int3", "--json"), "dtype")


@pytest.mark.parametrize("item", ["norm_eps=-1", "attention_scale=-5", "norm_eps=0"])
def test_negative_eps_and_scale(item: str) -> None:
    one_line_error(invoke("params", "llama-3-8b", "--set", item, "--json"), item.split("=")[0])


def test_sliding_window_1_5_spec_and_set(tmp_path: Path) -> None:
    one_line_error(invoke("params", "mistral-7b", "--set", "sliding_window=1.5"), "sliding_window")
    path = spec_file(tmp_path, "sliding_window: 1.5\n")
    one_line_error(invoke("params", path), "sliding_window")


def test_sliding_window_1_5_config_json(tmp_path: Path) -> None:
    path = config_file(tmp_path, model_type="mistral", sliding_window=1.5)
    one_line_error(invoke("params", path, "--json"), "sliding_window")


@pytest.mark.parametrize("tp", ["3", "1000"])
def test_tp_must_divide_or_be_a_multiple_of_the_kv_heads(tp: str) -> None:
    one_line_error(invoke("kvcache", "llama-3-8b", "--tp", tp, "--json"), "--tp")
    assert invoke("kvcache", "llama-3-8b", "--tp", "16", "--json").code == 0


def test_other_counts_validated() -> None:
    for item in (
        "topk_groups=0",
        "moe_layer_step=0",
        "num_expert_groups=-1",
        "relative_attention_max_distance=0",
        "position_offset=-1",
        "parallel_norms=3",
    ):
        with pytest.raises(SpecError):
            load_model("deepseek-v3", overrides=[item])  # fmt: skip


def test_minimax_residual_factors_need_the_normed_residual() -> None:
    """The alpha/beta factors mean MiniMax's residual (the normed input): without
    residual_from_norm, or on a post-LN block, they are refused."""
    with pytest.raises(SpecError, match="need residual_from_norm"):
        load_model("llama-3-8b", overrides=["mlp_alpha=2.0"])
    with pytest.raises(SpecError, match="residual_from_norm is for"):
        load_model("llama-3-8b", overrides=["residual_from_norm=true", "norm_position=post"])
    spec = load_model("llama-3-8b", overrides=["residual_from_norm=true", "mlp_beta=0.5"]).spec
    assert (spec.residual_from_norm, spec.mlp_beta) == (True, 0.5)


# ---- lost or hidden results --------------------------------------------------------------------


@pytest.fixture
def specs_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "specs"
    folder.mkdir()
    write(folder / "good-one.yaml", SPEC_YAML.replace("tiny", "good-one"))
    write(folder / "broken.yaml", "vocab_size: [\n")
    write(folder / "wrong.yaml", SPEC_YAML + "no_such_field: 1\n")
    (folder / "folder.yaml").mkdir()
    loaders._warned.clear()
    return folder


def test_broken_spec_in_specs_dir_is_a_warning(specs_dir: Path) -> None:
    outcome = invoke("models", "--specs-dir", str(specs_dir), "--json")
    assert outcome.code == 0, outcome.stderr
    names = {row["model"] for row in json.loads(outcome.stdout)["models"]}
    assert {"good-one", "llama-3-8b"} <= names
    warnings = outcome.stderr.splitlines()
    assert len(warnings) == 3, warnings
    for fragment in ("broken.yaml", "wrong.yaml", "folder.yaml"):
        assert any(fragment in w and w.startswith("warning:") for w in warnings), fragment


def test_broken_spec_in_tfcli_specs_path(specs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TFCLI_SPECS_PATH", str(specs_dir))
    outcome = invoke("models", "--json")
    assert outcome.code == 0
    assert "good-one" in {row["model"] for row in json.loads(outcome.stdout)["models"]}


def test_unreadable_spec_in_specs_dir(specs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open

    def denied(path: object, *args: object, **kwargs: object) -> int:
        if str(path).endswith("good-one.yaml"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", denied)
    outcome = invoke("models", "--specs-dir", str(specs_dir), "--json")
    assert outcome.code == 0
    assert "permission denied" in outcome.stderr


def test_stale_specs_path_entry_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaders._warned.clear()
    monkeypatch.setenv("TFCLI_SPECS_PATH", os.pathsep.join([str(tmp_path / "gone"), ""]))
    outcome = invoke("params", "llama-3-8b", "--json")
    assert outcome.code == 0
    assert json.loads(outcome.stdout)["total_params"] == 8_030_261_248
    assert outcome.stderr.count("warning:") == 1 and "gone" in outcome.stderr


def test_upper_case_yaml_found(tmp_path: Path) -> None:
    write(tmp_path / "Shouty.YAML", SPEC_YAML)
    outcome = invoke("params", "shouty", "--specs-dir", str(tmp_path), "--json")
    assert outcome.code == 0, outcome.stderr
    assert invoke("params", str(tmp_path / "Shouty.YAML"), "--json").code == 0
    listed = invoke("models", "--specs-dir", str(tmp_path), "--json")
    assert "tiny" in {row["model"] for row in json.loads(listed.stdout)["models"]}


@pytest.mark.parametrize("where", ["yaml", "set", "json"])
def test_error_line_truncates_the_value(tmp_path: Path, where: str) -> None:
    huge = "x" * 3_000_000
    if where == "yaml":
        outcome = invoke("params", spec_file(tmp_path, f"activation: {huge}\n"))
    elif where == "set":
        outcome = invoke("params", "gpt2", "--set", f"activation={huge}")
    else:
        outcome = invoke("params", config_file(tmp_path, model_type="llama", hidden_act=huge))
    line = one_line_error(outcome)
    assert len(line) < 1500, len(line)


def test_unknown_key_is_truncated() -> None:
    with pytest.raises(SpecError) as err:
        parse_overrides(["y" * 100_000 + "=1"])
    assert len(err.value.message) < 500


def test_error_messages_are_one_line() -> None:
    error = LoadError("first\nsecond\r\nthird")
    assert "\n" not in error.message and "\r" not in error.message


def test_usage_error_truncates_the_value() -> None:
    """click's own messages ("'xxx…' is not a valid integer") are cut like ours."""
    line = one_line_error(invoke("flops", "t5-base", "--encoder-seq", "x" * 100_000, "--json"))
    assert len(line) < 500 and "not a valid int" in line


def test_long_quoted_values_are_cut_in_messages() -> None:
    error = LoadError("activation " + repr("g" * 100_000) + " is not supported")
    assert len(error.message) < 400 and error.message.endswith("is not supported")


def test_set_integer_over_4300_digits() -> None:
    line = one_line_error(invoke("params", "gpt2", "--set", "num_layers=1" + "0" * 5000))
    assert "5,001 digits" in line


def test_refs_main_fifo_does_not_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    os.mkfifo(_hub_cache(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    one_line_error(invoke("params", "test-org/tiny", "--json"), "FIFO")


def test_params_dtype_keeps_json() -> None:
    """Found by the fuzz: `--dtype` reused the output-format variable, so `--json` printed
    the table."""
    outcome = invoke("params", "llama-3-8b", "--dtype", "fp16", "--json")
    check_contract(outcome)
    assert json.loads(outcome.stdout)["total_params"] == 8_030_261_248


@pytest.mark.parametrize(
    "argv",
    [
        ("flops", "gpt2", "--seq", ",".join(["512"] * 300)),
        ("flops", "gpt2", "--seq", ",".join(str(n) for n in range(1, 201)), "--batch",
         ",".join(str(n) for n in range(1, 201))),
        ("kvcache", "gpt2", "--batch", ",".join(["1"] * 100_000)),
        ("flops", "gpt2", "--mode", "decode", "--context", ",".join(["1"] * 100_000)),
        ("kvcache", "gpt2", "--batch", "1" + "0" * 200),
    ],
)  # fmt: skip
def test_sweeps_are_bounded(argv: tuple[str, ...]) -> None:
    one_line_error(invoke(*argv, "--json"))


@pytest.mark.parametrize("value", ["nan", "inf", "0", "1.5"])
def test_mfu_mbu_fractions(value: str) -> None:
    one_line_error(invoke("flops", "gpt2", "--hardware", "h100", "--mfu", value, "--json"), "--mfu")
    one_line_error(invoke("kvcache", "gpt2", "--hardware", "h100", "--mbu", value, "--json"))


@pytest.mark.parametrize("model_type", ["gemma2", "gpt_oss", "qwen3_next", "jamba"])
def test_alternating_layers_at_the_cap_answer(tmp_path: Path, model_type: str) -> None:
    """Alternating layer patterns near MAX_LAYERS answer (the periodic layer-group path)."""
    path = config_file(tmp_path, model_type=model_type, num_hidden_layers=999_999)
    for command in ("params", "flops", "kvcache"):
        outcome = invoke(command, path, "--json", hang_seconds=6)
        check_contract(outcome)
        assert outcome.code == 0


def test_no_attention_layers_gives_no_nan() -> None:
    """Found by the fuzz: an all-Mamba config (granitemoehybrid's defaults) made the
    causal/full attention ratio 0/0 = NaN, and `flops --json` exit 1."""
    outcome = invoke("flops", "llama-3-8b", "--set", "mixer=mamba2", "--set", "ssm_state_size=16",
                     "--set", "ssm_inner_size=8192", "--set", "ssm_num_heads=64",
                     "--set", "conv_kernel=4", "--json")  # fmt: skip
    check_contract(outcome)
    assert outcome.code == 0, outcome.stderr
    assert strict_json(outcome.stdout)["other_convention"]["attention_ratio"] is None
