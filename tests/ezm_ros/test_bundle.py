"""Loading a model bundle: a good one loads warm and passes its self-test; every broken one is refused
with a message that names the problem. The bundle is the conftest's tiny export (needs torch to make)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ezm_ros.bundle import RuntimeSettings, load_bundle, read_manifest
from ezm_ros.manifest import (
    INITIAL_FILE,
    MANIFEST_FILE,
    PARITY_FILE,
    RECURRENT_FILE,
    BundleError,
    Manifest,
    file_sha256,
    robot_mismatches,
    sealed,
)


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    """A private copy of the session's tiny bundle, to break."""
    return shutil.copytree(tiny_bundle, tmp_path / "bundle")


def edit_manifest(path, edit) -> None:
    """Edit and reseal: the loader's checks must refuse a bad value on its own, not by its checksum (an
    unkeyed checksum anyone can recompute)."""
    data = json.loads((path / MANIFEST_FILE).read_text())
    edit(data)
    (path / MANIFEST_FILE).write_text(json.dumps(sealed(data)))


def rehash(path, name) -> None:
    """Make the manifest agree with the current bytes of `name` (as if the exporter had written them)."""
    def edit(data):
        data["files"][name] = {"size": (path / name).stat().st_size, "sha256": file_sha256(path / name)}
    edit_manifest(path, edit)


def test_good_bundle_loads_and_runs(tiny_bundle):
    bundle = load_bundle(tiny_bundle)
    manifest = bundle.manifest
    errors = bundle.self_test()
    assert max(errors.values()) <= 1e-5
    task = manifest.tasks[-1]
    obs = np.zeros((2, manifest.obs_dim), np.float32)
    root = bundle.initial(obs, np.full(2, task.index))
    assert root.latent.shape == (2, manifest.latent_dim) and root.value.shape == (2,)
    assert root.policy_mean.shape == root.policy_std.shape == (2, manifest.action_dim)
    step = bundle.recurrent(root.latent, np.zeros((2, manifest.action_dim)), np.full(2, task.index))
    assert step.latent.shape == (2, manifest.latent_dim) and step.reward.shape == step.value.shape == (2,)
    # The hot-path callable reuses its output buffers and agrees with the copying call.
    fn = bundle.recurrent_fn(task.index)
    out = fn(root.latent, np.zeros((2, manifest.action_dim), np.float32))
    np.testing.assert_array_equal(out.value, step.value)
    assert manifest.task(task.env_id) is task and manifest.task(task.index) is task
    with pytest.raises(BundleError, match="not in this bundle"):
        manifest.task("h1-fly-v0")


@pytest.mark.parametrize(("breakage", "message"), [
    (lambda p: (p / MANIFEST_FILE).unlink(), "missing file manifest.json"),
    (lambda p: (p / RECURRENT_FILE).unlink(), "missing file recurrent.onnx"),
    (lambda p: (p / INITIAL_FILE).write_bytes((p / INITIAL_FILE).read_bytes()[:1000]),
     r"initial.onnx is truncated: 1000 of \d+ bytes"),
    (lambda p: (p / RECURRENT_FILE).write_bytes((p / RECURRENT_FILE).read_bytes() + b"x"), "it changed after export"),
    (lambda p: (p / RECURRENT_FILE).write_bytes(bytes([255 - b for b in (p / RECURRENT_FILE).read_bytes()[:64]])
                                               + (p / RECURRENT_FILE).read_bytes()[64:]),
     "recurrent.onnx sha256 mismatch"),
    (lambda p: ((p / INITIAL_FILE).write_bytes((p / INITIAL_FILE).read_bytes()[:5000]), rehash(p, INITIAL_FILE)),
     "initial.onnx is not a loadable ONNX model"),
    (lambda p: edit_manifest(p, lambda d: d.update(format_version=2)), "format version 2 is not supported"),
    (lambda p: (p / MANIFEST_FILE).write_text("{ not json"), "manifest.json is not valid JSON"),
    (lambda p: edit_manifest(p, lambda d: d.pop("robot")), "field robot is missing"),
    (lambda p: edit_manifest(p, lambda d: d["search"].pop("c_visit")), "search lacks c_visit"),
    (lambda p: edit_manifest(p, lambda d: d.update(obs_dim=d["obs_dim"] + 1)),
     r"initial.onnx input obs has shape \['batch', \d+\]; the manifest says \['batch', \d+\]"),
    (lambda p: edit_manifest(p, lambda d: d.update(latent_dim=d["latent_dim"] * 2)),
     "initial.onnx output latent has shape"),
    # Hostile or absurd manifests (issue 14): each refused with its reason, none crashes the loader.
    (lambda p: (p / MANIFEST_FILE).write_bytes(b"\xff\xfe" + (p / MANIFEST_FILE).read_bytes()), "is not UTF-8 text"),
    (lambda p: (p / MANIFEST_FILE).write_text("[" * 200_000 + "]" * 200_000), "nested too deeply"),
    (lambda p: edit_manifest(p, lambda d: d.update(discount=10 ** 400)), "discount is out of range"),
    (lambda p: edit_manifest(p, lambda d: d["robot"]["ctrl_high"].__setitem__(0, 10 ** 400)), "out of range"),
    (lambda p: edit_manifest(p, lambda d: d["files"].pop(PARITY_FILE)), r"does not list \['parity.npz'\]"),
    (lambda p: edit_manifest(p, lambda d: d["files"][PARITY_FILE].update(size=3 << 30)),
     "listed with 3221225472 bytes, over the 1024 MiB"),
    (lambda p: (p / MANIFEST_FILE).write_text((p / MANIFEST_FILE).read_text().replace('"discount": 0.99',
                                                                                      '"discount": NaN', 1)),
     "holds NaN: every number of a manifest is finite"),
    (lambda p: edit_manifest(p, lambda d: d["search"].update(num_simulations=10 ** 9)),
     r"search.num_simulations must be an integer in \[1, 4096\], got 1000000000"),
    (lambda p: edit_manifest(p, lambda d: d["search"].update(num_simulations=0)), "search.num_simulations must be"),
    (lambda p: edit_manifest(p, lambda d: d["search"].update(num_simulations=32.5)), "search.num_simulations must"),
    (lambda p: edit_manifest(p, lambda d: d["search"].update(num_simulations="32")), "search.num_simulations must"),
    (lambda p: edit_manifest(p, lambda d: d["search"].update(action_clip=5)), "search.action_clip must be"),
    (lambda p: edit_manifest(p, lambda d: d["search"].update(c_visit=-50)), "search.c_visit must be"),
    (lambda p: edit_manifest(p, lambda d: d["robot"]["hold_action"].__setitem__(0, 5.0)),
     r"hold_action must be a normalised action, in \[-1, 1\]"),
    (lambda p: edit_manifest(p, lambda d: d["robot"].update(control_dt_s=-1)), "control_dt_s must be in"),
    (lambda p: edit_manifest(p, lambda d: d.update(model_id="x" * 10_000_000)), "model_id must have 1 to 256"),
    (lambda p: (p / MANIFEST_FILE).write_bytes(b" " * (17 << 20)), "is over 16 MiB: not a manifest"),
    (lambda p: edit_manifest(p, lambda d: d["files"].update({"../../outside/secret.bin": d["files"][PARITY_FILE]})),
     r"files lists \['../../outside/secret.bin'\], which are not bundle files"),
    (lambda p: edit_manifest(p, lambda d: d["files"].update({"/proc/self/environ": d["files"][PARITY_FILE]})),
     "which are not bundle files"),
    (lambda p: edit_manifest(p, lambda d: d["files"].pop(PARITY_FILE)), r"does not list \['parity.npz'\]"),
    (lambda p: edit_manifest(p, lambda d: d["files"][PARITY_FILE].update(size=3 << 30)),
     "listed with 3221225472 bytes, over the 1024 MiB"),
    (lambda p: (p / MANIFEST_FILE).write_text((p / MANIFEST_FILE).read_text().replace('"discount": 0.99',
                                                                                      '"discount": 1e400', 1)),
     "out of float range"),
])
def test_broken_bundle_is_refused_with_its_message(bundle_copy, breakage, message):
    breakage(bundle_copy)
    with pytest.raises(BundleError, match=message):
        load_bundle(bundle_copy)


def test_parity_self_test_catches_a_different_model(bundle_copy):
    with np.load(bundle_copy / PARITY_FILE) as data:
        arrays = {key: data[key] for key in data.files}
    arrays["recurrent.out.value"] = arrays["recurrent.out.value"] + 0.01  # as if the graphs were from another model
    np.savez(bundle_copy / PARITY_FILE, **arrays)
    rehash(bundle_copy, PARITY_FILE)
    with pytest.raises(BundleError, match="parity self-test failed: recurrent output value"):
        load_bundle(bundle_copy)
    load_bundle(bundle_copy, self_test=False)  # the check can be skipped deliberately


def test_cuda_needs_the_gpu_build(tiny_bundle):
    import onnxruntime

    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        pytest.skip("onnxruntime-gpu is installed")
    with pytest.raises(BundleError, match="needs onnxruntime-gpu"):
        load_bundle(tiny_bundle, RuntimeSettings(device="cuda"))


def test_robot_contract_diff_names_every_difference(tiny_bundle):
    robot = Manifest.from_json((tiny_bundle / MANIFEST_FILE).read_text()).robot
    assert robot_mismatches(robot, robot.joint_names, robot.ctrl_low, robot.ctrl_high) == []
    swapped = (robot.joint_names[1], robot.joint_names[0]) + robot.joint_names[2:]
    lines = robot_mismatches(robot, swapped, robot.ctrl_low, robot.ctrl_high)
    assert len(lines) == 3 and "joint 0" in lines[1] and "joint 1" in lines[2]
    high = list(robot.ctrl_high)
    high[3] += 0.1
    (line,) = robot_mismatches(robot, robot.joint_names, robot.ctrl_low, high)
    assert f"ctrl high of {robot.joint_names[3]}" in line


def test_a_precision_the_bundle_or_device_cannot_run_is_refused(tiny_bundle, int8_bundle):
    with pytest.raises(BundleError, match="this bundle has no int8 graphs.*ezm-export --int8"):
        load_bundle(tiny_bundle, RuntimeSettings(precision="int8"))
    with pytest.raises(BundleError, match="unknown precision 'fp16'"):
        load_bundle(int8_bundle, RuntimeSettings(precision="fp16"))
    with pytest.raises(BundleError, match="'int8' is for CPUs"):
        load_bundle(int8_bundle, RuntimeSettings(device="cuda", precision="int8"))
    with pytest.raises(BundleError, match="unknown device 'gpu'"):
        load_bundle(int8_bundle, RuntimeSettings(device="gpu", precision="int8"))
    assert load_bundle(int8_bundle, RuntimeSettings(precision="int8")).graph_files == (
        "initial.int8.onnx", "recurrent.int8.onnx")


def test_broken_int8_bundle_is_refused_with_its_message(int8_bundle, tmp_path):
    copy = shutil.copytree(int8_bundle, tmp_path / "bundle")
    graph = copy / "recurrent.int8.onnx"
    graph.write_bytes(graph.read_bytes()[:-10])
    for precision in ("fp32", "int8"):  # every listed file is checked, whichever graphs are asked for
        with pytest.raises(BundleError, match="recurrent.int8.onnx is truncated"):
            load_bundle(copy, RuntimeSettings(precision=precision))
    shutil.copy(int8_bundle / "recurrent.int8.onnx", graph)
    exported = (copy / MANIFEST_FILE).read_text()
    for edit, message in ((lambda d: d["int8"]["parity_max_abs_error"].pop("recurrent.value"),
                           "field int8.parity_max_abs_error.recurrent.value is missing"),
                          (lambda d: d["int8"]["search_agreement"].update(same_candidate="most"),
                           "field int8.search_agreement.same_candidate should be float")):
        edit_manifest(copy, edit)
        with pytest.raises(BundleError, match=message):
            load_bundle(copy)  # a bad int8 object spoils the manifest, whichever graphs are asked for
        (copy / MANIFEST_FILE).write_text(exported)
    edit_manifest(copy, lambda d: d.pop("int8"))  # a manifest that lists int8 files without describing them
    with pytest.raises(BundleError, match="this bundle has no int8 graphs"):
        load_bundle(copy, RuntimeSettings(precision="int8"))


def test_a_graph_in_the_slot_of_the_other_precision_is_refused_by_its_operators(int8_bundle, tmp_path):
    """A manifest consistent with its files (sizes, hashes, seal) but with the int8 graph in the float32 slot, or
    the other way round, used to load; the operators give the graph's kind away."""
    for slot, impostor, precision in ((RECURRENT_FILE, "recurrent.int8.onnx", "fp32"),
                                      ("initial.int8.onnx", INITIAL_FILE, "int8")):
        copy = shutil.copytree(int8_bundle, tmp_path / f"swapped_{precision}")
        shutil.copy(int8_bundle / impostor, copy / slot)
        rehash(copy, slot)
        wrong = "int8" if precision == "fp32" else "fp32"
        with pytest.raises(BundleError, match=f"{slot} is an {wrong} graph .*listed as the {precision} graph"):
            load_bundle(copy, RuntimeSettings(precision=precision))
    garbage = shutil.copytree(int8_bundle, tmp_path / "garbage")
    (garbage / RECURRENT_FILE).write_bytes(b"\xff" * 64)  # no protobuf at all, hashed as if exported
    rehash(garbage, RECURRENT_FILE)
    with pytest.raises(BundleError, match=f"{RECURRENT_FILE} is not a loadable ONNX model"):
        load_bundle(garbage)


def test_int8_self_test_allows_twice_the_exporters_error(int8_bundle, tmp_path, monkeypatch):
    import ezm_ros.bundle as bundle_module

    monkeypatch.setattr(bundle_module, "INT8_SELF_TEST_SLACK", 0.0)
    copy = shutil.copytree(int8_bundle, tmp_path / "bundle")
    measured = load_bundle(copy, RuntimeSettings(precision="int8")).self_test()

    def recorded_as(fraction):  # as if the exporter's integer kernels had been this much closer to torch
        def edit(data):
            data["int8"]["parity_max_abs_error"] = {key: error * fraction for key, error in measured.items()}
        return edit

    edit_manifest(copy, recorded_as(1 / 1.5))  # ours are 1.5 x the exporter's: within the factor 2
    load_bundle(copy, RuntimeSettings(precision="int8"))
    edit_manifest(copy, recorded_as(1 / 2.5))  # 2.5 x: refused, naming both onnxruntime versions
    with pytest.raises(BundleError, match=r"parity self-test failed: .*int8.onnx.*onnxruntime .* round differently"):
        load_bundle(copy, RuntimeSettings(precision="int8"))
    load_bundle(copy)  # the float32 graphs are unaffected


def test_the_bundles_action_map_is_the_simulators(tiny_bundle):
    # The planner maps actions with the manifest (no MuJoCo on a robot); bit for bit what the simulator does.
    from sim_bridge.h1.actuators import ActionMap
    from sim_bridge.h1.model import build_h1_model

    robot = Manifest.from_json((tiny_bundle / MANIFEST_FILE).read_text()).robot
    simulator = ActionMap.from_model(build_h1_model())
    actions = np.random.default_rng(0).uniform(-1, 1, size=(64, len(robot.joint_names)))
    for dtype in (np.float32, np.float64):
        a = actions.astype(dtype)
        assert robot.to_ctrl(a).dtype == simulator.to_ctrl(a).dtype
        np.testing.assert_array_equal(robot.to_ctrl(a), simulator.to_ctrl(a))


def test_task_names_and_robot_coordinates_come_from_the_manifest(tiny_bundle):
    manifest = Manifest.from_json((tiny_bundle / MANIFEST_FILE).read_text())
    assert manifest.robot.coordinates_size == 51  # qpos 7 + 19 and qvel 6 + 19 of the H1
    for spec in manifest.tasks:
        assert spec.env_id == f"h1-{spec.name}-v0"
        # sit_hard observes its chair, reach its hand and goal: both need the simulator's task_state
        scene = spec.obs_size > manifest.robot.coordinates_size
        assert scene == (spec.name in ("sit_hard", "reach")), spec.name


def test_task_names_accept_short_names_and_env_ids_of_known_tasks_only():
    from ezm_ros.task_names import TaskNameError, short_task_name

    known = {"stand": "h1-stand-v0", "walk": "h1-walk-v0"}
    assert short_task_name(" walk ", known) == short_task_name("h1-walk-v0", known) == "walk"
    for unknown in ("run", "h1-run-v0", "", "h1-walk-v1"):
        with pytest.raises(TaskNameError, match="known: stand, walk"):
            short_task_name(unknown, known)


def test_every_flipped_bit_of_the_manifest_is_refused_or_harmless(bundle_copy):
    """A fuzz of the loader over 400 one-bit flips of the manifest (seeded): each is refused with a BundleError,
    or it parses to the very same manifest (a flip the JSON cannot see). Before the manifest's own checksum,
    56 of 120 flips loaded silently, hold_action among them."""
    original = (bundle_copy / MANIFEST_FILE).read_bytes()
    reference = Manifest.from_json(original.decode())
    rng = np.random.default_rng(0)
    outcomes = {"refused": 0, "same": 0}
    for bit in rng.choice(len(original) * 8, size=400, replace=False):
        flipped = bytearray(original)
        flipped[bit // 8] ^= 1 << (bit % 8)
        (bundle_copy / MANIFEST_FILE).write_bytes(bytes(flipped))
        try:
            manifest = read_manifest(bundle_copy)
        except BundleError:
            outcomes["refused"] += 1
            continue
        assert manifest == reference, f"bit {bit} changed the manifest and it loaded"
        outcomes["same"] += 1
    assert outcomes["refused"] >= 390, outcomes
    (bundle_copy / MANIFEST_FILE).write_bytes(original)
    missing = json.loads(original)
    missing.pop("manifest_sha256")
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(missing))
    with pytest.raises(BundleError, match="has no manifest_sha256"):
        read_manifest(bundle_copy)
