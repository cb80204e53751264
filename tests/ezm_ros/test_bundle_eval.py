"""ezm-bundle-eval: the torch-free planner in the loop with the real simulator, reproducible per seed, with
the deadline and the int8 graphs taking effect in the returns it reports."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ezm_ros.bundle import RuntimeSettings, load_bundle
from sim_bridge.bundle_eval import evaluate_bundle, main
from ezm_ros.planner import PlannerSettings

STEPS = 40  # per episode: enough for the untrained robot to move, short enough for CI


def evaluate(path, precision="fp32", **settings):
    bundle = load_bundle(path, RuntimeSettings(precision=precision))
    assert bundle.graph_files == ((f"initial.{precision}.onnx", f"recurrent.{precision}.onnx") if precision == "int8"
                                  else ("initial.onnx", "recurrent.onnx"))
    return evaluate_bundle(bundle, ["h1-stand-v0", "h1-walk-v0"], episodes=2, seed=3,
                           settings=PlannerSettings(warmup_searches=2, **settings), max_steps=STEPS)


def test_evaluation_is_reproducible_and_precision_matters(int8_bundle):
    # No deadline: on a loaded machine the 12 ms one cuts searches, and what is tested here is not timing.
    first, again = evaluate(int8_bundle, deadline_ms=1e6), evaluate(int8_bundle, deadline_ms=1e6)
    int8 = evaluate(int8_bundle, "int8", deadline_ms=1e6)
    budget = load_bundle(int8_bundle).manifest.search["num_simulations"]
    assert [r.mean_return for r in first] == [r.mean_return for r in again]
    for result in first + int8:
        assert result.episodes == 2 and 1 <= result.mean_length <= STEPS and np.isfinite(result.mean_return)
        assert result.mean_simulations == budget and result.cut_fraction == 0 and result.fallbacks == 0
        assert result.success_bar in (800.0, 700.0)
    assert [r.precision for r in int8] == ["int8", "int8"]


def test_a_deadline_too_short_to_plan_holds_every_step(int8_bundle):
    for result in evaluate(int8_bundle, deadline_ms=1e-6):
        steps = round(result.mean_length * result.episodes)
        assert result.mean_simulations == 0 and result.cut_fraction == 1.0 and result.fallbacks == steps


def test_command_line_writes_the_table(int8_bundle, tmp_path, capsys):
    code = main([str(int8_bundle), "--tasks", "walk", "--episodes", "1", "--precision", "fp32", "int8",
                 "--max-steps", str(STEPS), "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| h1-walk-v0 | fp32 |" in out and "| h1-walk-v0 | int8 |" in out
    with open(tmp_path / "bundle_eval.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["env_id"], row["precision"]) for row in rows] == [("h1-walk-v0", "fp32"), ("h1-walk-v0", "int8")]
    assert json.loads((tmp_path / "bundle_eval.json").read_text())[0]["episodes"] == 1


def test_command_line_names_what_is_wrong_before_any_episode(int8_bundle, tiny_bundle, tmp_path, capsys):
    assert main([str(int8_bundle), "--tasks", "fly"]) == 1
    assert "task 'fly' is not in this bundle; it knows h1-stand-v0, h1-walk-v0" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 1
    assert "missing file manifest.json" in capsys.readouterr().err
    assert main([str(tiny_bundle), "--precision", "fp32", "int8"]) == 1  # fp32 would have run first
    captured = capsys.readouterr()
    assert "this bundle has no int8 graphs" in captured.err and "episodes" not in captured.err
    with pytest.raises(SystemExit):
        main([str(int8_bundle), "--max-steps", "0"])


def test_probe_runs_through_a_bundle(tiny_bundle, tmp_path, capsys):
    """ezm-probe on a bundle: the onnxruntime graphs and the manifest's search settings, written out."""
    import json

    from ezm_training.probe import main as probe_main

    assert probe_main([str(tiny_bundle), "--bundle", "--tasks", "h1-stand-v0", "--states", "2", "--horizon", "3",
                       "--stride", "2", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "probe.json").read_text())[0]
    assert summary["env_id"] == "h1-stand-v0" and summary["states"] == 2
    assert summary["random_rank"] == (summary["candidates"] - 1) / 2
    assert "rank corr." in capsys.readouterr().out
