"""EZMConfig: presets, CLI overrides, JSON, hash, derived values."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ezm_training.config import MODEL_SIZES, PRESETS, TASK_SETS, ConfigError, EZMConfig


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("size", [None, *sorted(MODEL_SIZES)])
def test_presets_and_sizes_resolve(preset, size):
    cfg = EZMConfig.from_preset(preset, size=size)
    expected_size = size or PRESETS[preset].get("size", "default")
    for key, value in MODEL_SIZES[expected_size].items():
        assert getattr(cfg, key) == value
    for key, value in PRESETS[preset].items():
        if key != "size" and key not in MODEL_SIZES[expected_size]:
            assert getattr(cfg, key) == value


def test_default_is_the_ezm_multitask_config():
    cfg = EZMConfig()
    assert cfg == EZMConfig.from_preset("default")
    assert cfg.task_ids == TASK_SETS["h1-medium"] and cfg.num_tasks == 9
    assert (cfg.latent_dim, cfg.num_blocks, cfg.value_heads, cfg.lr, cfg.discount) == (512, 3, 5, 1e-4, 0.99)
    assert cfg.value_support.bins == 51 and cfg.value_support.max == 299.0


def test_task_sets():
    assert len(TASK_SETS["h1-medium"]) == 9 and len(TASK_SETS["h1-all14"]) == 14
    assert TASK_SETS["h1-all14"][:9] == TASK_SETS["h1-medium"]
    for ids in TASK_SETS.values():
        assert len(set(ids)) == len(ids)
        assert all(task.startswith("h1-") and task.endswith("-v0") for task in ids)
    assert EZMConfig(tasks="h1-walk-v0, h1-run-v0").task_ids == ("h1-walk-v0", "h1-run-v0")


def test_derived_values():
    cfg = EZMConfig(tasks="h1-all14")
    assert cfg.effective_batch_size == 504 and cfg.batch_size_per_task == 36  # [EZM] 512 -> 36 × 14
    assert cfg.lr_decay_step == 540_000 and cfg.num_widened_actions == 12
    assert cfg.task_embedding_dim == 128
    assert EZMConfig(tasks="h1-stand").task_embedding_dim == 0  # [EZM] single task: no embedding


def test_from_cli_coerces_to_field_types():
    cfg = EZMConfig.from_cli(["--preset", "smoke", "--size=small", "lr=3e-4", "training_steps=6e5",
                              "head_dims=256,128", "compile=true", "tasks=h1-locomotion", "precision=bf16",
                              "transitions_per_task=1_000_000"])
    assert cfg.lr == 3e-4 and isinstance(cfg.lr, float)
    assert cfg.training_steps == 600_000 and isinstance(cfg.training_steps, int)
    assert cfg.head_dims == (256, 128)
    assert cfg.compile is True
    assert cfg.latent_dim == MODEL_SIZES["small"]["latent_dim"]
    assert cfg.device == "cpu"  # from the smoke preset
    assert cfg.num_tasks == 3 and cfg.transitions_per_task == 1_000_000


def test_unknown_key_gets_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean lr"):
        EZMConfig.from_cli(["lrr=1e-3"])
    with pytest.raises(ConfigError, match="did you mean num_simulations"):
        EZMConfig.from_cli(["num_simulation=16"])
    with pytest.raises(ConfigError, match="did you mean smoke"):
        EZMConfig.from_cli(["--preset", "smoek"])
    with pytest.raises(ConfigError, match="h1-medium"):
        EZMConfig.from_cli(["tasks=h1-medum"])


@pytest.mark.parametrize("argv", [["training_steps=1.5"], ["compile=maybe"], ["lr=fast"], ["--seed", "3"],
                                  ["precision=fp8"], ["lr=-1"], ["seed"]])
def test_bad_values_are_rejected(argv):
    with pytest.raises(ConfigError):
        EZMConfig.from_cli(argv)


def test_json_round_trip():
    for cfg in (EZMConfig(), EZMConfig.from_preset("smoke", head_dims=(7, 9), tasks="h1-walk-v0,h1-run-v0")):
        text = cfg.to_json()
        again = EZMConfig.from_json(text)
        assert again == cfg and again.head_dims == cfg.head_dims and isinstance(again.head_dims, tuple)
        assert again.to_json() == text


def test_hash_is_stable_and_sensitive():
    cfg = EZMConfig()
    assert cfg.hash() == EZMConfig().hash() == EZMConfig.from_json(cfg.to_json()).hash()
    assert len(cfg.hash()) == 12
    assert cfg.replace(lr=3e-4).hash() != cfg.hash()
    # Same digest in a fresh interpreter (no dependence on PYTHONHASHSEED or dict order).
    code = "from ezm_training.config import EZMConfig; print(EZMConfig().hash())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == cfg.hash()


def test_config_is_frozen_and_every_field_has_a_default():
    cfg = EZMConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert all(field.default is not dataclasses.MISSING for field in dataclasses.fields(EZMConfig))


def test_reanalysis_gets_its_own_simulation_budget():
    cfg = EZMConfig.from_preset("smoke", reanalyze_simulations=6)
    assert cfg.reanalyze_search_kwargs == {**cfg.search_kwargs, "num_simulations": 6}
    assert EZMConfig.from_preset("smoke").reanalyze_search_kwargs == EZMConfig.from_preset("smoke").search_kwargs
    with pytest.raises(ConfigError, match="reanalyze_simulations 2 must be 0 .* or >= num_top_actions 4"):
        EZMConfig.from_preset("smoke", reanalyze_simulations=2)


def test_the_cpu_preset_overlaps_collection_and_reanalyses_with_the_acting_budget():
    # A reanalysis budget of one visit per candidate drove the policy std to its cap (docs/design.md).
    cpu = EZMConfig.from_preset("cpu")
    assert cpu.collector_process and cpu.reanalyze_search_kwargs["num_simulations"] == cpu.num_simulations
    assert not EZMConfig().collector_process and EZMConfig().reanalyze_simulations == 0  # EZ-M's own defaults


@pytest.mark.parametrize("override, reason", [
    ("action_clip=1.0", "action_clip must be a number in"),  # atanh(1) is infinite
    ("widen_std_factor=0.5", "widen_std_factor must be"),
    ("num_simulations=100000", "num_simulations must be an integer in"),
    ("reanalyze_simulations=100000", "num_simulations must be an integer in"),
    ("discount=1.5", "discount must be"),
])
def test_search_settings_the_planner_would_refuse_are_refused_by_the_config(override, reason):
    """One table (ezm_training.search.settings) for both: a run that trains can always be deployed."""
    from ezm_training.search import settings  # ezm_ros.manifest checks a bundle's search against it

    with pytest.raises(ConfigError, match=reason):
        EZMConfig.from_cli(["--preset", "cpu", override])
    key, value = override.split("=")
    key = "num_simulations" if key == "reanalyze_simulations" else key
    kind = settings.RANGES[key][0]
    assert settings.problems({key: kind(float(value))})  # what the loader reports for the same value


def test_engine_fields_at_their_defaults_leave_the_hash_of_older_configs_alone():
    # A run saved before the engine fields existed (docs/runs/h1-locomotion-cpu) keeps its hash: its run dir
    # and the model id of every bundle exported from it.
    saved = json.loads((Path(__file__).resolve().parents[2] / "docs/runs/h1-locomotion-cpu/config.json").read_text())
    assert "engine" not in saved
    assert EZMConfig.from_json(json.dumps(saved)).hash() == "5ec86a5e7d02"
    cfg = EZMConfig.from_preset("smoke")
    assert cfg.replace(engine="ray").hash() != cfg.hash()  # the engine of a run is part of what it is


@pytest.mark.parametrize("overrides, message", [
    (dict(engine="spark"), "engine must be one of"),
    (dict(engine="ray", collector_process=True), "collector_process is the local engine's"),
    (dict(engine="ray", reanalyze_workers=0), "reanalyze_workers >= 1"),
])
def test_an_engine_the_trainer_cannot_run_is_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        EZMConfig.from_preset("smoke", **overrides)
