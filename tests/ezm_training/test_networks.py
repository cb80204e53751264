"""The world model: shapes, padding, gradients, task conditioning, normaliser, determinism, ONNX parity."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch

from ezm_training import losses
from ezm_training.config import EZMConfig
from ezm_training.networks import WorldModel, pair_min_weights

OBS_DIMS = (51, 64, 77)  # three tasks with different obs sizes, padded to 77
ACTION_DIM = 19  # every H1 task
TASKS = "h1-stand-v0,h1-walk-v0,h1-run-v0"



def make_model(seed: int = 0, size: str = "tiny") -> WorldModel:
    torch.manual_seed(seed)
    return WorldModel(EZMConfig.from_preset(size=size, tasks=TASKS), OBS_DIMS, ACTION_DIM)


def make_batch(batch: int = 6, seed: int = 1):
    """Padded observations (zeros beyond each task's own dim), task ids cycling over the 3 tasks, actions."""
    generator = torch.Generator().manual_seed(seed)
    task = torch.arange(batch) % len(OBS_DIMS)
    obs = torch.randn(batch, max(OBS_DIMS), generator=generator) * 3 + 1
    for row, t in enumerate(task.tolist()):
        obs[row, OBS_DIMS[t]:] = 0.0
    action = torch.rand(batch, ACTION_DIM, generator=generator) * 2 - 1
    return obs, task, action


def randomise(model: WorldModel, seed: int = 2) -> WorldModel:
    """Perturb every parameter (the zero-initialised heads too) and the normaliser, to test non-trivial outputs."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator))
        obs, task, _ = make_batch(64, seed)
        model.update_obs_stats(obs, task)
    return model


def test_shapes_for_every_task_size():
    model = make_model().eval()
    cfg = model.cfg
    obs, task, action = make_batch()
    initial = model.initial_inference(obs, task)
    batch, latent, bins, heads = len(task), cfg.latent_dim, cfg.value_support_bins, cfg.value_heads
    assert initial.latent.shape == (batch, latent)
    assert initial.value.shape == (batch,)
    assert initial.policy_mean.shape == initial.policy_std.shape == (batch, ACTION_DIM)
    assert initial.value_logits.shape == (heads, batch, bins)
    step = model.recurrent_inference(initial.latent, action, task)
    assert step.latent.shape == (batch, latent)
    assert step.reward.shape == step.value.shape == (batch,)
    assert step.reward_logits.shape == (batch, cfg.reward_support_bins)
    assert step.value_logits.shape == (heads, batch, bins)
    next_latent, reward_logits = model.next(initial.latent, action, task)
    assert torch.equal(next_latent, step.latent) and torch.equal(reward_logits, step.reward_logits)
    assert model.predict(model.project(initial.latent)).shape == (batch, cfg.projection_dim)
    assert torch.equal(model.value_logits(initial.latent, task), initial.value_logits)
    mean, std = model.policy_params(initial.latent, task)
    assert torch.equal(mean, initial.policy_mean) and torch.equal(std, initial.policy_std)
    assert torch.equal(model.obs_mask.sum(1), torch.tensor(OBS_DIMS, dtype=torch.float32))


def test_padded_dims_do_not_affect_the_output():
    model = randomise(make_model()).eval()
    obs, task, _ = make_batch()
    garbage = obs.clone()
    for row, t in enumerate(task.tolist()):
        garbage[row, OBS_DIMS[t]:] = 123.0
    torch.testing.assert_close(model.encode(garbage, task), model.encode(obs, task), rtol=0, atol=0)


def test_initial_policy_is_ez_v2_squashed_gaussian_at_init():
    model = make_model().eval()
    obs, task, _ = make_batch()
    out = model.initial_inference(obs, task)
    torch.testing.assert_close(out.policy_mean, torch.zeros_like(out.policy_mean))
    expected_std = torch.nn.functional.softplus(torch.tensor(1.0)) + 0.1  # ≈ 1.41, [EZ2] ValuePolicyNetwork
    torch.testing.assert_close(out.policy_std, expected_std.expand_as(out.policy_std))
    torch.testing.assert_close(model.recurrent_inference(out.latent, torch.zeros(6, ACTION_DIM), task).reward,
                               torch.zeros(6), atol=1e-5, rtol=0)  # zero-initialised reward head


def _total_loss(model: WorldModel, generator: torch.Generator) -> torch.Tensor:
    """Every output and every loss term of one unroll step, summed."""
    obs, task, action = make_batch()
    next_obs, _, _ = make_batch(seed=5)
    cfg = model.cfg
    initial = model.initial_inference(obs, task)
    step = model.recurrent_inference(initial.latent, action, task)
    terms = [
        losses.value_loss(initial.value_logits, torch.full((6,), 3.0), model.value_support)[0],
        losses.policy_loss(initial.policy_mean, initial.policy_std, action)[0],
        losses.entropy_loss(initial.policy_mean, initial.policy_std, 8, generator)[0],
        losses.reward_loss(step.reward_logits, torch.full((6,), 0.5), model.reward_support)[0],
        losses.consistency_loss(model.predict(model.project(step.latent)),
                                model.project(model.encode(next_obs, task)))[0],
        losses.path_consistency_loss(initial.value_logits, step.reward_logits, step.value_logits,
                                     cfg.discount, model.reward_support, model.value_support)[0],
        initial.value, step.reward, step.value, step.latent.sum(-1), step.policy_std.sum(-1),
    ]
    return sum(term.sum() for term in terms)


def test_gradients_reach_every_parameter():
    """After one SGD step. At init no gradient passes the zero-initialised output layers of the reward and
    policy heads ([EZ2] init_zero), so the reward trunk sees zero gradient on the very first step only."""
    model = make_model().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(0)
    _total_loss(model, generator).backward()
    optimizer.step()
    optimizer.zero_grad()
    _total_loss(model, generator).backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient: {missing}"
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_different_tasks_give_different_outputs():
    model = randomise(make_model()).eval()
    obs, _, action = make_batch()
    obs[:, 51:] = 0.0  # valid for every task
    outputs = [model.initial_inference(obs, torch.full((6,), t)) for t in range(3)]
    steps = [model.recurrent_inference(outputs[0].latent, action, torch.full((6,), t)) for t in range(3)]
    for a, b in itertools.combinations(range(3), 2):
        assert not torch.allclose(outputs[a].latent, outputs[b].latent)
        assert not torch.allclose(outputs[a].policy_mean, outputs[b].policy_mean)
        assert not torch.allclose(steps[a].latent, steps[b].latent)
        assert not torch.allclose(steps[a].reward, steps[b].reward)


def test_default_size_has_about_16m_parameters():
    cfg = EZMConfig()  # EZ-M size, 9 h1 tasks
    model = WorldModel(cfg, [51] * cfg.num_tasks, ACTION_DIM)
    print(f"\n{model}")
    counts = model.parameter_counts()
    assert 15.5e6 < counts["total"] < 16.5e6  # EZ-M: ≈16M ([EZM] model config)
    assert 6.0e6 < counts["value_policy"] < 6.4e6 and 2.6e6 < counts["reward"] < 2.9e6


def test_normaliser_statistics_and_count_round_trip_through_state_dict():
    model = make_model()
    obs, task, _ = make_batch(batch=9)
    model.update_obs_stats(obs, task)
    normalizer = model._representation.normalizer
    prior = model.cfg.obs_norm_prior_count
    rows_with_dim = np.array([(np.array(OBS_DIMS)[task.numpy()] > d).sum() for d in range(max(OBS_DIMS))])
    assert torch.equal(normalizer.count, torch.from_numpy(prior + rows_with_dim))
    # Dim 0 is real for all 9 rows: prior of `prior` N(0, 1) samples merged with the batch.
    x = obs[:, 0].double()
    mean = x.sum() / (prior + 9)
    second_moment = (prior * 1.0 + (x**2).sum()) / (prior + 9)
    torch.testing.assert_close(normalizer.mean[0].double(), mean, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(normalizer.var[0].double(), second_moment - mean**2, rtol=1e-5, atol=1e-6)
    assert normalizer.mean[77 - 1] != 0  # only task 2 (77 dims) has the last dim
    restored = make_model(seed=3)
    restored.load_state_dict(model.state_dict())
    for key in ("mean", "var", "count"):
        assert f"_representation.normalizer.{key}" in model.state_dict()
        assert torch.equal(getattr(restored._representation.normalizer, key), getattr(normalizer, key))
    assert torch.equal(restored.obs_mask, model.obs_mask)


def test_forward_never_changes_the_statistics():
    model = make_model().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    obs, task, _ = make_batch()
    model.initial_inference(obs, task)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_eval_mode_is_deterministic():
    model = randomise(make_model()).eval()
    obs, task, action = make_batch()
    latent = model.encode(obs, task)
    first = model.initial_inference(obs, task), model.recurrent_inference(latent, action, task)
    second = model.initial_inference(obs, task), model.recurrent_inference(latent, action, task)
    for a, b in zip(itertools.chain(*first), itertools.chain(*second)):
        assert torch.equal(a, b)


def test_batch_of_one_equals_a_row_of_a_batch():
    model = randomise(make_model()).eval()
    obs, task, action = make_batch()
    batched = model.initial_inference(obs, task)
    batched_step = model.recurrent_inference(batched.latent, action, task)
    for row in range(len(task)):
        single = model.initial_inference(obs[row:row + 1], task[row:row + 1])
        single_step = model.recurrent_inference(batched.latent[row:row + 1], action[row:row + 1], task[row:row + 1])
        for a, b in zip(itertools.chain(single, single_step), itertools.chain(batched, batched_step)):
            index = (slice(None), slice(row, row + 1)) if a.dim() == 3 else slice(row, row + 1)
            torch.testing.assert_close(a, b[index], rtol=1e-5, atol=1e-6)


def test_value_rule_is_the_expected_min_of_a_random_pair():
    for heads in (1, 2, 3, 5):
        values = torch.randn(heads, 4)
        pairs = list(itertools.combinations(range(heads), 2)) or [(0, 0)]
        brute = torch.stack([torch.minimum(values[i], values[j]) for i, j in pairs]).mean(0)
        rule = (torch.sort(values, dim=0).values * pair_min_weights(heads)[:, None]).sum(0)
        torch.testing.assert_close(rule, brute)
    model = randomise(make_model()).eval()
    obs, task, _ = make_batch()
    out = model.initial_inference(obs, task)
    decoded = model.value_support.decode(out.value_logits)
    assert torch.all(out.value >= decoded.min(0).values - 1e-5) and torch.all(out.value <= decoded.mean(0) + 1e-5)


def test_repr_lists_components_and_total():
    text = repr(make_model())
    for name in ("task_embedding", "representation", "dynamics", "reward", "value_policy", "projector",
                 "predictor", "total"):
        assert name in text


def test_single_task_model_has_no_task_embedding():
    torch.manual_seed(0)
    model = WorldModel(EZMConfig.from_preset("smoke"), [51], ACTION_DIM).eval()
    assert model.parameter_counts()["task_embedding"] == 0
    out = model.initial_inference(torch.randn(2, 51), torch.zeros(2, dtype=torch.int64))
    assert out.latent.shape == (2, model.cfg.latent_dim)


def test_onnx_export_matches_torch(tmp_path):
    """Both graphs through the TorchScript exporter (dynamo=False: ~1 s here, the dynamo exporter ~13 s)."""
    onnxruntime = pytest.importorskip("onnxruntime")
    model = randomise(make_model()).eval()

    class Initial(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, obs, task):
            return tuple(self.model.initial_inference(obs, task)[:4])

    class Recurrent(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, latent, action, task):
            return tuple(self.model.recurrent_inference(latent, action, task)[:5])

    obs, task, action = make_batch()
    latent = model.encode(obs, task).detach()
    graphs = {
        "initial": (Initial(), {"obs": obs, "task": task}),
        "recurrent": (Recurrent(), {"latent": latent, "action": action, "task": task}),
    }
    for name, (module, inputs) in graphs.items():
        path = tmp_path / f"{name}.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is deprecated
            torch.onnx.export(module, tuple(inputs.values()), str(path), input_names=list(inputs),
                              dynamic_axes={key: {0: "batch"} for key in inputs}, dynamo=False)
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for rows in (slice(0, 6), slice(2, 3)):  # the exported batch size and another one
            feed = {key: value[rows] for key, value in inputs.items()}
            got = session.run(None, {key: value.numpy() for key, value in feed.items()})
            with torch.no_grad():
                expected = module(*feed.values())
            for a, b in zip(got, expected):
                np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-5)
