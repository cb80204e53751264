"""Tests of ezm_training.search: known answers, the batched schedule, RNG design, backends, anytime use."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from array_api_compat import array_namespace

from ezm_training.search import (
    RecurrentOutput,
    RootOutput,
    gumbel_search,
    phase_schedule,
    root_keys,
)
from ezm_training.search import rng
from ezm_training.search.qtransforms import mixed_value
from ezm_training.search.sampling import sample_candidates, sample_child_actions
from ezm_training.search.seq_halving import PhaseStep

LATENT, ACTION = 12, 4
DISCOUNT = 0.99


# ---------------------------------------------------------------- models


class RowModel:
    """A small nonlinear model built from broadcasts and sums only (no BLAS matmul), so every row is
    computed the same way whatever the batch size; framework-agnostic like the search."""

    def __init__(self, seed: int = 0, to=np.asarray):
        g = np.random.default_rng(seed)
        self.w1 = to(g.normal(size=(LATENT + ACTION, LATENT)).astype(np.float32) * 0.5)
        self.w_reward = to(g.normal(size=(LATENT,)).astype(np.float32))
        self.w_value = to(g.normal(size=(LATENT,)).astype(np.float32))

    def policy(self, latent):
        xp = array_namespace(latent)
        return 0.8 * latent[:, :ACTION], 0.3 + 0.2 * xp.tanh(latent[:, ACTION : 2 * ACTION]) ** 2

    def __call__(self, latent, action):
        xp = array_namespace(latent)
        x = xp.concat([latent, action], axis=-1)
        h = xp.tanh(xp.sum(x[:, :, None] * self.w1[None], axis=1))
        mean, std = self.policy(h)
        return RecurrentOutput(h, xp.sum(h * self.w_reward, axis=-1), xp.sum(h * self.w_value, axis=-1), mean, std)

    def root(self, latent):
        xp = array_namespace(latent)
        mean, std = self.policy(latent)
        return RootOutput(latent, xp.sum(latent * self.w_value, axis=-1), mean, std)


def bandit(num_roots: int, seed: int = 0):
    """Reward -|a - target|^2 at the root, 0 everywhere below, values 0: Q(root, a) = reward(a) exactly.

    The latent is [is_root, target (A)], so each root has its own best action.
    """
    g = np.random.default_rng(seed)
    targets = g.uniform(-0.8, 0.8, size=(num_roots, ACTION)).astype(np.float32)
    latent = np.concatenate([np.ones((num_roots, 1), np.float32), targets], axis=1)

    def recurrent_fn(latent, action):
        is_root, target = latent[:, 0], latent[:, 1:]
        reward = -is_root * np.sum((action - target) ** 2, axis=-1)
        zeros = np.zeros(latent.shape[0], np.float32)
        next_latent = np.concatenate([zeros[:, None], target], axis=1)
        return RecurrentOutput(next_latent, reward, zeros, np.zeros_like(action), np.ones_like(action))

    root = RootOutput(latent, np.zeros(num_roots, np.float32), np.zeros((num_roots, ACTION), np.float32),
                      np.ones((num_roots, ACTION), np.float32))
    return root, recurrent_fn, targets


class CallLog:
    """Wraps a recurrent_fn and records each call's inputs."""

    def __init__(self, fn):
        self.fn, self.latents, self.actions = fn, [], []

    def __call__(self, latent, action):
        self.latents.append(latent)
        self.actions.append(action)
        return self.fn(latent, action)

    @property
    def rows(self):
        return [a.shape[0] for a in self.actions]


def random_roots(num_roots: int, model: RowModel, seed: int = 1):
    latent = np.random.default_rng(seed).normal(size=(num_roots, LATENT)).astype(np.float32)
    return model.root(latent)


# ---------------------------------------------------------------- known answers


def test_search_picks_best_candidate_on_bandit():
    root, recurrent_fn, targets = bandit(num_roots=8)
    out = gumbel_search(root, recurrent_fn, root_keys(0, 8, like=root.value), discount=DISCOUNT)
    reward = -np.sum((out.candidate_actions - targets[:, None, :]) ** 2, axis=-1)
    np.testing.assert_array_equal(out.action_index, np.argmax(reward, axis=-1))
    np.testing.assert_array_equal(out.action, out.candidate_actions[np.arange(8), out.action_index])
    np.testing.assert_allclose(out.q_values, reward, rtol=1e-6, atol=1e-6)


def test_improved_policy_equals_closed_form_on_bandit():
    root, recurrent_fn, targets = bandit(num_roots=8, seed=3)
    out = gumbel_search(root, recurrent_fn, 7, discount=DISCOUNT, c_visit=50.0, c_scale=0.1, value_minmax_delta=0.01)
    reward = -np.sum((out.candidate_actions - targets[:, None, :]) ** 2, axis=-1).astype(np.float64)
    # Backed-up values in the tree: Q(root, c) = reward(c) <= 0, the interior Qs 0 + γ·0 = 0, and the root's
    # own step γ·reward(c), which lies inside [min reward, 0]. So the min/max range is [min reward, 0].
    low, high = reward.min(-1, keepdims=True), 0.0
    q_hat = np.clip((reward - low) / np.maximum(high - low, 0.01), 0.0, 1.0)
    sigma = (50.0 + out.visit_counts.max(-1, keepdims=True)) * 0.1 * q_hat
    expected = np.exp(sigma - sigma.max(-1, keepdims=True))
    expected /= expected.sum(-1, keepdims=True)
    np.testing.assert_allclose(out.improved_policy, expected, rtol=1e-5, atol=1e-6)


def test_root_value_is_mean_of_backups_including_network_value():
    root, recurrent_fn, targets = bandit(num_roots=4, seed=5)
    root = RootOutput(root.latent, np.full(4, 2.0, np.float32), root.policy_mean, root.policy_std)
    out = gumbel_search(root, recurrent_fn, 0, num_simulations=16, num_candidates=8, discount=DISCOUNT)
    # Each simulation backs Q(root, c) = reward(c) up to the root; the root starts with its value 2.
    backups = np.sum(out.visit_counts * out.q_values, axis=-1)
    np.testing.assert_allclose(out.root_value, (2.0 + backups) / 17.0, rtol=1e-5)


def test_mixed_value_formula():
    q = np.array([[1.0, 3.0, 100.0]], np.float32)
    visits = np.array([[1, 3, 0]])
    expected = (0.5 + 4 * (1.0 + 3.0) / 2) / (1 + 4)  # uniform prior: mean over visited children
    np.testing.assert_allclose(mixed_value(np.array([0.5], np.float32), q, visits), [expected], rtol=1e-6)
    np.testing.assert_allclose(mixed_value(np.array([0.5], np.float32), q, np.zeros_like(visits)), [0.5])


def test_interior_children_come_from_the_nodes_own_policy():
    model = RowModel()
    log = CallLog(model)

    def narrow(latent, action):  # the model's policy with a tiny std: children sit at tanh(mean)
        out = log(latent, action)
        return RecurrentOutput(out.latent, out.reward, out.value, out.policy_mean, np.full_like(out.policy_std, 1e-6))

    gumbel_search(random_roots(2, model), narrow, 0, num_simulations=32, num_candidates=16)
    for latent, action in zip(log.latents[1:], log.actions[1:]):  # calls after the first expand interior slots
        parent_mean, _ = model.policy(latent)  # the input latent of a call is the parent's latent
        np.testing.assert_allclose(action, np.clip(np.tanh(parent_mean), -0.999, 0.999), atol=1e-4)


class _Node:
    def __init__(self, index, latent, reward, value, mean, std):
        self.index, self.latent, self.reward, self.raw = index, latent, float(reward), float(value)
        self.mean, self.std = mean, std
        self.visits, self.value_sum, self.children = 0, 0.0, {}


def sequential_reference(model, root, key, *, num_simulations, num_candidates, defer_min_max,
                         children_per_node=2, discount=0.99, c_visit=50.0, c_scale=0.1, delta=0.01):
    """One root, one simulation at a time in [EZ2] order, with plain Python nodes and float64 statistics.

    With defer_min_max the min/max statistics take a step's backups only when the step ends, the one
    documented difference of the batched search; the batched search must then match it exactly.
    """
    candidates = sample_candidates(key, root.policy_mean, root.policy_std, num_candidates=num_candidates,
                                   num_policy_actions=4, widen_std_factor=3.0, widen=True)[0]
    tree = _Node(0, root.latent[0], 0.0, root.value[0], root.policy_mean[0], root.policy_std[0])
    tree.visits, tree.value_sum = 1, float(root.value[0])
    stats = {"low": np.inf, "high": -np.inf}

    def sigma_of(node, num_slots):
        q = [c.reward + discount * c.value_sum / c.visits if (c := node.children.get(s)) else None
             for s in range(num_slots)]
        visits = [node.children[s].visits if s in node.children else 0 for s in range(num_slots)]
        seen = [x for x in q if x is not None]
        v_mix = (node.raw + sum(visits) * np.mean(seen)) / (1 + sum(visits)) if seen else node.raw
        completed = np.array([v_mix if x is None else x for x in q])
        q_hat = np.clip((completed - stats["low"]) / max(stats["high"] - stats["low"], delta), 0.0, 1.0)
        return completed, (c_visit + max(visits)) * c_scale * q_hat, np.array(visits)

    survivors = list(range(num_candidates))
    simulation = 0
    for step in phase_schedule(num_simulations, num_candidates):
        if step.halve_before:
            sigma = sigma_of(tree, num_candidates)[1]
            survivors = sorted(survivors, key=lambda a: -sigma[a])[: step.num_survivors]  # stable
        pending = []
        for _ in range(step.num_visited):
            slot = min(survivors, key=lambda a: tree.children[a].visits if a in tree.children else 0)
            path, parent = [tree], tree
            while slot in parent.children:
                parent = parent.children[slot]
                path.append(parent)
                _, sigma, visits = sigma_of(parent, children_per_node)
                pi_prime = np.exp(sigma - sigma.max()) / np.exp(sigma - sigma.max()).sum()
                slot = int(np.argmax(pi_prime - visits / (1 + parent.visits)))
            if parent is tree:
                action = candidates[slot]
            else:
                action = sample_child_actions(key, np.array([[parent.index]]), np.array([[slot]]),
                                              parent.mean[None, None], parent.std[None, None],
                                              children_per_node=children_per_node)[0, 0]
            simulation += 1
            out = model(parent.latent[None], action[None])
            leaf = _Node(simulation, out.latent[0], out.reward[0], out.value[0], out.policy_mean[0], out.policy_std[0])
            parent.children[slot] = leaf
            value = leaf.raw
            for node in reversed(path + [leaf]):
                node.value_sum += value
                node.visits += 1
                value = node.reward + discount * value
                pending.append(value)
                if not defer_min_max:
                    stats["low"], stats["high"] = min(stats["low"], value), max(stats["high"], value)
        stats["low"], stats["high"] = min(stats["low"], *pending), max(stats["high"], *pending)
    completed, sigma, visits = sigma_of(tree, num_candidates)
    best_visits = max(visits[a] for a in survivors)
    action_index = max((a for a in survivors if visits[a] == best_visits), key=lambda a: sigma[a])  # first max
    improved = np.exp(sigma - sigma.max()) / np.exp(sigma - sigma.max()).sum()
    return action_index, improved, tree.value_sum / tree.visits, completed, visits


@pytest.mark.parametrize(("num_simulations", "num_candidates"), [(32, 16), (20, 8)])
def test_batched_steps_equal_sequential_order_with_deferred_min_max(num_simulations, num_candidates):
    model = RowModel()
    roots = random_roots(6, model, seed=2)
    keys = root_keys(4, 6, like=roots.value)
    out = gumbel_search(roots, model, keys, num_simulations=num_simulations, num_candidates=num_candidates)
    for b in range(6):
        one = RootOutput(*[x[b : b + 1] for x in roots.__dict__.values()])
        action_index, improved, root_value, completed, visits = sequential_reference(
            model, one, keys[b : b + 1], num_simulations=num_simulations, num_candidates=num_candidates,
            defer_min_max=True)
        assert out.action_index[b] == action_index
        np.testing.assert_array_equal(out.visit_counts[b], visits)
        np.testing.assert_allclose(out.improved_policy[b], improved, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(out.q_values[b], completed, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out.root_value[b], root_value, rtol=1e-5)


# ---------------------------------------------------------------- schedule and budget


@pytest.mark.parametrize(
    ("num_simulations", "num_candidates", "widths"),
    [
        (32, 16, [16, 8, 4, 4]),
        (16, 8, [8, 4, 2, 2]),
        (8, 4, [4, 2, 2]),
        (64, 16, [16, 8, 8, 4, 4, 4, 4] + [2] * 8),
        (20, 16, [16, 4]),  # budget-truncated second phase: the top 4 of the 8 survivors
        (8, 16, [8]),  # fewer simulations than candidates
    ],
)
def test_sequential_halving_spends_budget_exactly(num_simulations, num_candidates, widths):
    num_roots = 3
    model = RowModel()
    log = CallLog(model)
    out = gumbel_search(random_roots(num_roots, model), log, 0,
                        num_simulations=num_simulations, num_candidates=num_candidates)
    assert log.rows == [num_roots * w for w in widths]
    assert out.simulations_done == num_simulations
    np.testing.assert_array_equal(out.visit_counts.sum(-1), num_simulations)
    assert out.improved_policy.shape == (num_roots, num_candidates)


def test_phase_schedule_for_ez_defaults():
    assert phase_schedule(32, 16) == (
        PhaseStep(num_survivors=16, num_visited=16, prior_visits=0, halve_before=False),
        PhaseStep(num_survivors=8, num_visited=8, prior_visits=1, halve_before=True),
        PhaseStep(num_survivors=4, num_visited=4, prior_visits=2, halve_before=True),
        PhaseStep(num_survivors=4, num_visited=4, prior_visits=3, halve_before=False),
    )
    assert [s.num_visited for s in phase_schedule(5, 1)] == [1] * 5


def test_only_top_considered_candidates_are_visited_with_gumbel_noise():
    model = RowModel()
    log = CallLog(model)
    out = gumbel_search(random_roots(3, model), log, 0, num_top_actions=4, gumbel_scale=1.0)
    assert log.rows[0] == 3 * 4
    np.testing.assert_array_equal((out.visit_counts > 0).sum(-1), 4)
    np.testing.assert_array_equal(out.visit_counts.sum(-1), 32)


# ---------------------------------------------------------------- RNG and backends


def test_batch_of_roots_equals_one_root_at_a_time():
    model = RowModel()
    roots = random_roots(5, model)
    keys = root_keys(11, 5, like=roots.value)
    batched = gumbel_search(roots, model, keys)
    for b in range(5):
        one = RootOutput(*[x[b : b + 1] for x in roots.__dict__.values()])
        single = gumbel_search(one, model, keys[b : b + 1])
        np.testing.assert_array_equal(single.candidate_actions[0], batched.candidate_actions[b])
        np.testing.assert_array_equal(single.action_index[0], batched.action_index[b])
        np.testing.assert_array_equal(single.visit_counts[0], batched.visit_counts[b])
        np.testing.assert_allclose(single.improved_policy[0], batched.improved_policy[b], rtol=1e-6)
        np.testing.assert_allclose(single.root_value[0], batched.root_value[b], rtol=1e-6)


def test_eager_and_lazy_child_noise_give_the_same_search(monkeypatch):
    # Small trees draw every interior edge's noise up front, big ones only the expanded edges' rows.
    from ezm_training.search import sampling

    model = RowModel()
    roots = random_roots(3, model)
    eager = gumbel_search(roots, model, 5, num_simulations=64)
    monkeypatch.setattr(sampling, "EAGER_CHILD_NOISE_MAX_ROWS", 0)
    lazy = gumbel_search(roots, model, 5, num_simulations=64)
    for name in ("action", "action_index", "improved_policy", "root_value", "q_values", "visit_counts"):
        np.testing.assert_array_equal(getattr(eager, name), getattr(lazy, name))


def test_same_seed_same_result_different_seed_different_candidates():
    model = RowModel()
    roots = random_roots(4, model)
    first, again, other = (gumbel_search(roots, model, seed) for seed in (3, 3, 4))
    for name in ("candidate_actions", "action_index", "improved_policy", "root_value", "q_values", "visit_counts"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.allclose(first.candidate_actions, other.candidate_actions)


def test_widening_scales_the_same_noise_of_the_last_candidates():
    model = RowModel()
    roots = random_roots(3, model)
    roots = RootOutput(roots.latent, roots.value, roots.policy_mean * 0.1, np.full_like(roots.policy_std, 0.1))
    train = gumbel_search(roots, model, 0, num_simulations=16, widen=True)
    evaluate = gumbel_search(roots, model, 0, num_simulations=16, widen=False)
    np.testing.assert_array_equal(train.candidate_actions[:, :4], evaluate.candidate_actions[:, :4])
    mean = roots.policy_mean[:, None, :]
    np.testing.assert_allclose(np.arctanh(train.candidate_actions[:, 4:]) - mean,
                               3.0 * (np.arctanh(evaluate.candidate_actions[:, 4:]) - mean), rtol=1e-3, atol=1e-4)


def test_rng_draws_are_standard_and_backend_neutral():
    torch = pytest.importorskip("torch")
    rows = np.arange(1000, dtype=np.int64)[None, :]
    keys_np = root_keys(5, 3, like=np.zeros(1))
    keys_t = root_keys(5, 3, like=torch.zeros(1))
    np.testing.assert_array_equal(keys_np, keys_t.numpy())
    z = rng.normal(keys_np, rng.STREAM_CANDIDATES, rows, 19, dtype=np.float32)  # [3, 1000, 19]
    z_t = rng.normal(keys_t, rng.STREAM_CANDIDATES, torch.from_numpy(rows), 19, dtype=torch.float32)
    np.testing.assert_allclose(z, z_t.numpy(), rtol=1e-5, atol=1e-5)
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
    assert abs(np.corrcoef(z[0].ravel(), z[1].ravel())[0, 1]) < 0.03  # roots draw independent streams
    assert abs(np.corrcoef(z[0, :, 0], z[0, :, 10])[0, 1]) < 0.1  # the cosine and sine of one pair
    assert abs(np.corrcoef(z[0, :-1].ravel(), z[0, 1:].ravel())[0, 1]) < 0.03  # neighbouring rows too
    u = rng.uniform(keys_np, rng.STREAM_GUMBEL, rows[:, :1], 100000, dtype=np.float64)
    assert np.all((u > 0) & (u < 1)) and abs(u.mean() - 0.5) < 0.01


def lowbias32(x: int) -> int:
    """Chris Wellons' lowbias32 on Python ints, written from its definition: the reference for rng's hash."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) % 2**32
    x ^= x >> 15
    x = (x * 0x846CA68B) % 2**32
    return x ^ (x >> 16)


def test_rng_hash_is_lowbias32_on_every_backend():
    """The hash behind every search key and draw: a change would silently change every seeded search."""
    torch = pytest.importorskip("torch")
    values = [0, 1, 2, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 2**32 - 1]
    want = [lowbias32(v) for v in values]
    assert [rng._mix32(v) for v in values] == want
    assert rng._mix32(np.array(values, np.int64)).tolist() == want
    assert rng._mix32(torch.tensor(values, dtype=torch.int64)).tolist() == want


def test_numpy_and_torch_backends_agree():
    torch = pytest.importorskip("torch")
    model_np = RowModel()
    model_t = RowModel(to=torch.from_numpy)
    roots = random_roots(6, model_np)
    roots_t = RootOutput(*[torch.from_numpy(np.ascontiguousarray(x)) for x in roots.__dict__.values()])
    out_np = gumbel_search(roots, model_np, 9)
    with torch.no_grad():
        out_t = gumbel_search(roots_t, model_t, 9)
    assert out_t.simulations_done == out_np.simulations_done
    np.testing.assert_array_equal(out_t.action_index.numpy(), out_np.action_index)
    np.testing.assert_array_equal(out_t.visit_counts.numpy(), out_np.visit_counts)
    for name in ("candidate_actions", "action", "improved_policy", "root_value", "q_values"):
        np.testing.assert_allclose(getattr(out_t, name).numpy(), getattr(out_np, name), rtol=1e-4, atol=1e-5)


def test_search_imports_without_torch():
    code = "import sys, ezm_training.search; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------- anytime


def test_stop_after_first_phase_returns_valid_result():
    model = RowModel()
    log = CallLog(model)
    out = gumbel_search(random_roots(4, model), log, 0, should_stop=lambda done: done >= 16)
    assert out.simulations_done == 16 and log.rows == [4 * 16]
    np.testing.assert_array_equal(out.visit_counts, 1)
    np.testing.assert_array_equal(out.action, out.candidate_actions[np.arange(4), out.action_index])
    # With one visit each, the choice is the best completed Q.
    np.testing.assert_array_equal(out.action_index, np.argmax(out.q_values, axis=-1))


def test_first_step_always_runs_and_stops_are_checked_between_steps():
    model = RowModel()
    seen = []

    def stop_now(done):
        seen.append(done)
        return True

    assert gumbel_search(random_roots(2, model), model, 0, should_stop=stop_now).simulations_done == 16
    assert seen == [16]
    stopped = gumbel_search(random_roots(2, model), model, 0, should_stop=lambda done: done >= 24)
    assert stopped.simulations_done == 24
    np.testing.assert_array_equal(stopped.visit_counts.sum(-1), 24)


def test_fast_namespaces_keep_the_array_api_meaning():
    """The numpy and torch namespaces of `_arrays.namespace` swap some functions for faster or traceable ones;
    every form of call must still give what array_api_compat's own functions give."""
    torch = pytest.importorskip("torch")
    import array_api_compat.numpy as compat_np
    import array_api_compat.torch as compat_torch

    from ezm_training.search._arrays import device_of, namespace

    x = np.array([[1.0, -2.0, np.nan], [0.0, 3.0, -1.5]], np.float32)
    calls = [
        ("sum", dict(axis=None)), ("sum", dict(axis=1)), ("sum", dict(axis=(0, 1))), ("sum", dict(axis=())),
        ("sum", dict(axis=-1, keepdims=True)), ("max", dict(axis=None)), ("max", dict(axis=0)),
        ("max", dict(axis=())), ("min", dict(axis=1, keepdims=True)), ("min", dict(axis=(0, 1))),
        ("expand_dims", dict(axis=0)), ("expand_dims", dict(axis=-1)), ("sign", {}),
        ("clip", dict(min=-1.0, max=2.0)), ("clip", dict(min=0.5)), ("clip", dict(max=0.0)),
    ]
    for array, fast, compat in ((x, namespace(x), compat_np), (torch.from_numpy(x), namespace(torch.zeros(1)),
                                                               compat_torch)):
        for name, kwargs in calls:
            np.testing.assert_array_equal(np.asarray(getattr(fast, name)(array, **kwargs)),
                                          np.asarray(getattr(compat, name)(array, **kwargs)), err_msg=f"{name} {kwargs}")
        dev = device_of(array)
        index = fast.asarray([[1, 0], [2, 2]], dtype=fast.int64, device=dev)
        for fast_result, compat_result in (
                (fast.zeros((2, 3), dtype=fast.float32, device=dev), compat.zeros((2, 3), dtype=compat.float32, device=dev)),
                (fast.zeros_like(array), compat.zeros_like(array)),
                (fast.full((2,), 7, dtype=fast.int64, device=dev), compat.full((2,), 7, dtype=compat.int64, device=dev)),
                (fast.arange(2, 9, dtype=fast.int64, device=dev), compat.arange(2, 9, dtype=compat.int64, device=dev)),
                (fast.take_along_axis(array, index, axis=-1), compat.take_along_axis(array, index, axis=-1))):
            assert fast_result.dtype == compat_result.dtype and tuple(fast_result.shape) == tuple(compat_result.shape)
            np.testing.assert_array_equal(np.asarray(fast_result), np.asarray(compat_result))
        finite = fast.clip(array[:, :2], min=-1.0, max=2.0)
        converted = fast.astype(finite, fast.float64)
        assert converted.dtype == fast.float64 and converted is not finite
        np.testing.assert_array_equal(np.asarray(fast.astype(finite, fast.int64, device="cpu")),
                                      np.asarray(compat.astype(finite, compat.int64, device="cpu")))
