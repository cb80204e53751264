"""Sampled actions: K root candidates and the D children of an interior node, from squashed normals.

The policy is a tanh-squashed Gaussian, a = tanh(mean + std·ε) ([EZ2] ez/utils/distribution.py
SquashedNormal; [EZM] ez/mcts/cy_mcts.py `pi_sample`). Every sample is clipped to ±0.999 so that a later
atanh in the policy loss stays finite ([EZ2] cy_mcts.py `sample_actions`).

Shapes: B roots, W walkers, K candidates, D children per interior node, A action dims.
All noise comes from `rng` with explicit per-root keys [B] (see rng.py for why).
"""

from __future__ import annotations

import math

from ezm_training.search import rng
from ezm_training.search._arrays import Array, batch_index, device_of, namespace
from ezm_training.search._arrays import clip as clip_values

ACTION_CLIP = 0.999  # [EZ2] cy_mcts.py sample_actions: all_actions.clip(-0.999, 0.999)

# Trees with at most this many interior edges (B · (N + 1) · D) draw the noise of every edge at once
# (`child_noise_table`): one hash pass per search instead of one per phase step, about a sixth of a
# batch-1 search's bookkeeping. Bigger trees (training batches) draw only the rows they expand, as most
# of a big table would go unused. A row's draw is a pure function of (key, row): both give equal numbers.
EAGER_CHILD_NOISE_MAX_ROWS = 4096


def squashed_normal(mean: Array, std: Array, noise: Array, *, clip: float = ACTION_CLIP) -> Array:
    """clip(tanh(mean + std·noise), ±clip); all arguments broadcast to one shape."""
    xp = namespace(mean)
    return clip_values(xp.tanh(mean + std * noise), -clip, clip)


def sample_candidates(
    keys: Array,
    mean: Array,
    std: Array,
    *,
    num_candidates: int,
    num_policy_actions: int,
    widen_std_factor: float,
    widen: bool,
    clip: float = ACTION_CLIP,
) -> Array:
    """Root candidates [B, K, A] from the root policy mean/std [B, A].

    Candidates 0..P-1 (P = num_policy_actions) are drawn from π; the other K-P from the same Gaussian with
    its std multiplied by `widen_std_factor` ([EZ2] `policy_action_num` 4, `random_action_num` 12,
    `std_magnification` 3). With `widen=False` (evaluation, [EZ2] add_noise=False) all K come from π.
    Candidate k uses the same ε whether widened or not, so widening changes only the spread.
    """
    xp = namespace(mean)
    rows = xp.arange(num_candidates, dtype=xp.int64, device=device_of(mean))[None, :]  # [1, K]
    noise = rng.normal(keys, rng.STREAM_CANDIDATES, rows, mean.shape[-1], dtype=mean.dtype)  # [B, K, A]
    scale = std[:, None, :]
    if widen and num_policy_actions < num_candidates:
        widening = [1.0] * num_policy_actions + [widen_std_factor] * (num_candidates - num_policy_actions)
        scale = scale * xp.reshape(xp.asarray(widening, dtype=mean.dtype, device=device_of(mean)), (1, -1, 1))
    return squashed_normal(mean[:, None, :], scale, noise, clip=clip)


def proposal_prior_logits(
    keys: Array,
    *,
    num_candidates: int,
    num_policy_actions: int,
    widen_std_factor: float,
    action_dim: int,
    dtype,
) -> Array:
    """[B, K] root prior logits log π(u_k) − log q(u_k) of the candidates `sample_candidates` draws with
    widening, q = (P/K)·N(mean, std) + ((K−P)/K)·N(mean, w·std) the mixture they come from.

    Sampled MuZero (Hubert et al., 2021) corrects a search over samples of a proposal q by the ratio π/q;
    [EZ2]/[EZM] use a uniform prior (logit 0) instead, under which a widened candidate counts as much as
    one from π. In pre-tanh space (the tanh Jacobian is the same for both densities and cancels) with
    z = u − mean in units of std, per dimension log N(u; mean, w·std) − log π(u) = z²/2·(1 − 1/w²) − log w,
    so the std itself cancels and the logits depend on the candidate noise only; they are re-derived from
    the same keys as the candidates.
    """
    xp = namespace(keys)
    rows = xp.arange(num_candidates, dtype=xp.int64, device=device_of(keys))[None, :]
    noise = rng.normal(keys, rng.STREAM_CANDIDATES, rows, action_dim, dtype=dtype)  # [B, K, A]
    factor = [1.0] * num_policy_actions + [widen_std_factor] * (num_candidates - num_policy_actions)
    factor = xp.reshape(xp.asarray(factor, dtype=dtype, device=device_of(keys)), (1, -1, 1))
    z = noise * factor
    log_wide_over_pi = xp.sum(0.5 * z * z * (1.0 - 1.0 / widen_std_factor**2), axis=-1) \
        - action_dim * math.log(widen_std_factor)
    share_pi = num_policy_actions / num_candidates
    # log π − log q = −log(share_pi + (1 − share_pi)·exp(log N_w − log π)), computed as a stable logaddexp
    a = xp.full(log_wide_over_pi.shape, math.log(share_pi), dtype=dtype, device=device_of(keys))
    b = log_wide_over_pi + math.log(1.0 - share_pi)
    high = xp.maximum(a, b)
    return -(high + xp.log(xp.exp(a - high) + xp.exp(b - high)))


def child_noise_table(keys: Array, *, num_nodes: int, children_per_node: int, action_dim: int, dtype) -> Array | None:
    """[B, num_nodes · D, A] the normals of every interior edge (row node · D + slot), exactly as
    `sample_child_actions` draws them one row at a time; None when the table would exceed
    EAGER_CHILD_NOISE_MAX_ROWS rows, so that the caller draws lazily."""
    num_rows = num_nodes * children_per_node
    if keys.shape[0] * num_rows > EAGER_CHILD_NOISE_MAX_ROWS:
        return None
    xp = namespace(keys)
    rows = xp.arange(num_rows, dtype=xp.int64, device=device_of(keys))[None, :]
    return rng.normal(keys, rng.STREAM_CHILDREN, rows, action_dim, dtype=dtype)


def sample_child_actions(
    keys: Array,
    parent: Array,
    slot: Array,
    mean: Array,
    std: Array,
    *,
    children_per_node: int,
    clip: float = ACTION_CLIP,
    noise_table: Array | None = None,
) -> Array:
    """The action [B, W, A] on edge (parent, slot) of interior nodes, from the parent's own π, not widened.

    parent, slot: [B, W] int64 node index and child slot; mean, std: [B, W, A] the parent's policy.
    noise_table: `child_noise_table`'s rows, or None to draw the rows needed here.
    [EZ2] samples the `leaf_num` = D children of a node when it is expanded. Here the action of slot s is a
    pure function of (key, parent, s), so computing it when the slot is first expanded gives exactly
    the action eager sampling would have stored, while drawing noise only for slots the search expands.
    """
    rows = parent * children_per_node + slot  # [B, W]: one row of A numbers per edge
    if noise_table is None:
        noise = rng.normal(keys, rng.STREAM_CHILDREN, rows, mean.shape[-1], dtype=mean.dtype)
    else:
        noise = noise_table[batch_index(rows, 2), rows]
    return squashed_normal(mean, std, noise, clip=clip)
