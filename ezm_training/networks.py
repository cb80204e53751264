"""The EZ-M world model in one file.

Every component is conditioned on a learned task embedding e ([EZM] `task_embedding_choice`, all True):

  representation  obs -> s          normalise(obs) ⊕ e -> Linear -> LN -> tanh -> blocks
  dynamics        (s, a) -> s'       s + MLP(LN(s ⊕ e ⊕ a)) -> blocks            (raw action, as [EZM])
  reward          (s, a) -> logits   its own trunk like dynamics on s ⊕ e ⊕ embed(a ⊕ e) -> MLP head
  value, policy   s -> H value logits, (mean, std)    shared blocks on s ⊕ e -> LN -> H value MLPs + policy MLP
  projector, predictor               the SimSiam branch of the temporal consistency loss

Sources: [EZM] liushaohuai5/EfficientZero_Multitask @ 4c1428f, ez/agents/models/state_model.py and
ez/agents/ez_humanoid_bench_state.py (reward from (s, a) in parallel with the dynamics:
`reward_parallel: True`); [EZ2] Shengjiewang-Jason/EfficientZeroV2 @ 12b9e77. Where this file differs
from them (LayerNorm for BatchNorm, EZ V2's policy std, the masked normaliser and its saved count, a
deterministic value-ensemble rule, the max-norm lookup) docs/design.md says why.

Observations arrive zero-padded to the largest obs dim of the task set (the multi-task env pads, as
[EZM] does). The model needs no mask input: each task's obs dim is fixed, so the model keeps a
[num_tasks, D] mask buffer and looks it up by task id. Callers cannot pass an inconsistent mask, padded
dims stay exactly zero after normalisation, and the exported graphs keep two inputs (obs, task).

Shapes: B batch, D padded obs dim, A action dim, L latent, E task embedding, H value heads, S bins.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ezm_training.config import EZMConfig

# The squashed-Gaussian head's last layer starts at zero, so the initial policy is mean 0 and the std
# its parameterisation gives at x = 0 (EZMConfig.policy_std_param):
#   "softplus"  EZ V2 ([EZ2] ez/agents/models/__init__.py, ValuePolicyNetwork): std = softplus(x + 1) + 0.1,
#               1.41 at init, unbounded above;
#   "tanh_log"  TD-MPC2 / EZ-M ([EZM] "tdmpc2" policy): log std = lo + (hi − lo)·(tanh(x + b) + 1)/2 with
#               [lo, hi] = [policy_log_std_min, policy_log_std_max] and b set so that std = policy_std_init
#               at x = 0 (EZ-M: [−10, 2], b = 0, std e^−4). A bounded std is what keeps the search from
#               widening the policy without limit (docs/design.md, "The policy-std loop").
POLICY_MEAN_BOUND = 5.0  # mean = 5·tanh(x/5), a soft clamp of the pre-tanh mean
POLICY_STD_SHIFT = 1.0  # "softplus": std = softplus(x + 1) + 0.1
POLICY_MIN_STD = 0.1
OBS_NORM_EPS = 1e-5  # added to the variance before the square root; [EZ2] layer.py RunningMeanStd


class InitialInference(NamedTuple):
    """`initial_inference` outputs. The first four match search.contracts.RootOutput field by field."""

    latent: torch.Tensor  # [B, L]
    value: torch.Tensor  # [B] decoded, ensemble reduced by `decode_value`
    policy_mean: torch.Tensor  # [B, A] pre-tanh Gaussian mean
    policy_std: torch.Tensor  # [B, A] pre-tanh Gaussian std (within the bounds of cfg.policy_std_param)
    value_logits: torch.Tensor  # [H, B, S] for the losses


class RecurrentInference(NamedTuple):
    """`recurrent_inference` outputs. The first five match search.contracts.RecurrentOutput field by field."""

    latent: torch.Tensor  # [B, L] next latent
    reward: torch.Tensor  # [B] decoded reward of the transition
    value: torch.Tensor  # [B] decoded value of the next latent
    policy_mean: torch.Tensor  # [B, A] policy at the next latent
    policy_std: torch.Tensor  # [B, A]
    reward_logits: torch.Tensor  # [B, S]
    value_logits: torch.Tensor  # [H, B, S]


class ResidualBlock(nn.Module):
    """Pre-LN residual MLP block x + W2·ReLU(W1·LN(x)).

    [EZ2]/[EZM] layer.py `ImproveResidualBlock`, after the Pre-LN Transformer (Xiong et al., ICML 2020).
    """

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.linear2(F.relu(self.linear1(self.norm(x))))


def mlp(in_dim: int, hidden_dims: Sequence[int], out_dim: int, zero_last: bool = False) -> nn.Sequential:
    """[Linear -> LayerNorm -> ReLU] per hidden width, then a plain Linear.

    EZ puts BatchNorm1d where this has LayerNorm: LayerNorm is per row, so a batch of one equals a row of
    a batch and the ONNX graph has no running statistics (docs/design.md). `zero_last` zero-initialises
    the output layer, as [EZ2]/[EZM] `init_zero` do for the reward and policy heads.
    """
    layers: list[nn.Module] = []
    for width in hidden_dims:
        layers += [nn.Linear(in_dim, width), nn.LayerNorm(width), nn.ReLU()]
        in_dim = width
    out = nn.Linear(in_dim, out_dim)
    if zero_last:
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
    return nn.Sequential(*layers, out)


def pair_min_weights(heads: int) -> torch.Tensor:
    """[H] weights w such that Σ_k w_k·v_(k), over the H head values sorted ascending, is E[min(v_i, v_j)]
    for a uniformly random pair of distinct heads i, j.

    [EZM] takes the min of 2 heads drawn with np.random.choice at every call, so search values and targets
    are random even for fixed weights ([EZM] ez/agents/models/__init__.py). Here its expectation is used:
    the k-th smallest value (0-based) is the min of H−1−k of the H(H−1)/2 pairs. Same mean as EZ-M's rule,
    deterministic, and exportable (a sort and a weighted sum). One head: w = [1].
    """
    if heads == 1:
        return torch.ones(1)
    return torch.tensor([2.0 * (heads - 1 - k) / (heads * (heads - 1)) for k in range(heads)])


def tanh_log_std_shift(cfg: EZMConfig) -> float:
    """b of the "tanh_log" std such that std(x = 0) = cfg.policy_std_init: atanh(2u − 1), u its place in [lo, hi]."""
    low, high = cfg.policy_log_std_min, cfg.policy_log_std_max
    unit = (math.log(cfg.policy_std_init) - low) / (high - low)
    return math.atanh(2.0 * unit - 1.0)


def _cat(*parts: torch.Tensor | None) -> torch.Tensor:
    """Concatenate along the last dim, skipping None (the task embedding of a single-task model)."""
    return torch.cat([part for part in parts if part is not None], dim=-1)


class TaskEmbedding(nn.Module):
    """A learned [num_tasks, E] table looked up by task index and kept inside the unit ball.

    [EZM] uses nn.Embedding(max_norm=1), which rescales the table rows in place during forward. Scaling the
    looked-up row instead gives the same values without writing to a parameter in forward (so forward has
    no side effects and exports to ONNX); the gradient also flows through the scaling.
    """

    def __init__(self, num_tasks: int, dim: int):
        super().__init__()
        self.table = nn.Embedding(num_tasks, dim)

    def forward(self, task: torch.Tensor) -> torch.Tensor:
        row = self.table(task)
        return row / torch.linalg.vector_norm(row, dim=-1, keepdim=True).clamp(min=1.0)


class ObservationNormalizer(nn.Module):
    """Running per-dimension mean and variance of observations, counted only where the task mask is 1.

    All three are buffers, so the state_dict carries them. EZ V2 keeps the count as a plain attribute, which
    restarts at 1e3 after every checkpoint load ([EZ2] layer.py); here it is saved. The count is per dimension
    because a padded dim is observed only by the tasks that have it. It starts at `prior_count`
    pseudo-samples of N(0, 1), as EZ V2 starts at 1e3, so the first batches cannot swing the statistics.

    forward never changes the statistics (in train or eval mode): the learner calls `update` once per batch.
    """

    def __init__(self, dim: int, prior_count: int):
        super().__init__()
        if prior_count < 1:  # the prior also keeps never-seen dims at N(0, 1) instead of dividing by zero
            raise ValueError(f"prior_count must be >= 1, got {prior_count}")
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("var", torch.ones(dim))
        self.register_buffer("count", torch.full((dim,), prior_count, dtype=torch.int64))

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (obs - self.mean) * torch.rsqrt(self.var + OBS_NORM_EPS) * mask

    @torch.no_grad()
    def update(self, obs: torch.Tensor, mask: torch.Tensor) -> None:
        """Merge a [B, D] batch (entries where mask is 1) into the statistics.

        Chan et al.'s parallel merge, as [EZ2] RunningMeanStd, per dimension and in float64.
        """
        obs, mask = obs.double(), mask.double()
        batch_count = mask.sum(0)
        batch_mean = (obs * mask).sum(0) / batch_count.clamp(min=1.0)
        batch_var = ((obs - batch_mean) ** 2 * mask).sum(0) / batch_count.clamp(min=1.0)
        count, mean, var = self.count.double(), self.mean.double(), self.var.double()
        total = count + batch_count
        delta = batch_mean - mean
        self.mean.copy_(mean + delta * batch_count / total)
        self.var.copy_((var * count + batch_var * batch_count + delta**2 * count * batch_count / total) / total)
        self.count.add_(batch_count.round().long())


class _Representation(nn.Module):
    """obs [B, D], mask [B, D], e [B, E] -> latent [B, L]. [EZM] state_model.py RepresentationNetwork."""

    def __init__(self, obs_dim: int, task_dim: int, cfg: EZMConfig):
        super().__init__()
        self.normalizer = ObservationNormalizer(obs_dim, cfg.obs_norm_prior_count)
        self.input = nn.Sequential(nn.Linear(obs_dim + task_dim, cfg.latent_dim), nn.LayerNorm(cfg.latent_dim),
                                   nn.Tanh())
        self.blocks = nn.Sequential(*[ResidualBlock(cfg.latent_dim, cfg.trunk_dim) for _ in range(cfg.num_blocks)])

    def forward(self, obs, mask, e):
        return self.blocks(self.input(_cat(self.normalizer(obs, mask), e)))


class _LatentStep(nn.Module):
    """(s [B, L], x [B, X]) -> s + Linear(ReLU(Linear(LN(s ⊕ x)))), then residual blocks.

    The shape of [EZM] DynamicsNetwork and of the trunk of RewardNetworkParallel.
    """

    def __init__(self, latent_dim: int, extra_dim: int, hidden: int, block_hidden: int, num_blocks: int):
        super().__init__()
        self.step = nn.Sequential(nn.LayerNorm(latent_dim + extra_dim), nn.Linear(latent_dim + extra_dim, hidden),
                                  nn.ReLU(), nn.Linear(hidden, latent_dim))
        self.blocks = nn.Sequential(*[ResidualBlock(latent_dim, block_hidden) for _ in range(num_blocks)])

    def forward(self, latent, extra):
        return self.blocks(latent + self.step(_cat(latent, extra)))


class _Reward(nn.Module):
    """(s, a, e) -> reward logits [B, S]. [EZM] RewardNetworkParallel: its own trunk, beside the dynamics.

    The action is embedded with the task, Linear(a ⊕ e) -> LN -> tanh, as [EZM] `act_mlp`.
    """

    def __init__(self, action_dim: int, task_dim: int, cfg: EZMConfig):
        super().__init__()
        latent = cfg.latent_dim
        self.action_embed = nn.Sequential(nn.Linear(action_dim + task_dim, cfg.action_embed_dim),
                                          nn.LayerNorm(cfg.action_embed_dim), nn.Tanh())
        self.trunk = _LatentStep(latent, task_dim + cfg.action_embed_dim, latent, latent, cfg.num_blocks)
        self.head = mlp(latent, cfg.head_dims, cfg.reward_support_bins, zero_last=True)

    def forward(self, latent, action, e):
        return self.head(self.trunk(latent, _cat(e, self.action_embed(_cat(action, e)))))


class _ValuePolicy(nn.Module):
    """(s, e) -> value logits [H, B, S], policy mean and std [B, A]. [EZM] ValuePolicyNetwork.

    One trunk of residual blocks on s ⊕ e (width L + E) feeds H value MLPs and one policy MLP.
    """

    def __init__(self, action_dim: int, task_dim: int, cfg: EZMConfig):
        super().__init__()
        width = cfg.latent_dim + task_dim
        self.trunk = nn.Sequential(*[ResidualBlock(width, width) for _ in range(cfg.num_blocks)], nn.LayerNorm(width))
        # Value heads are not zero-initialised in [EZM] (its init_zero is commented out for them).
        self.values = nn.ModuleList(mlp(width, cfg.head_dims, cfg.value_support_bins) for _ in range(cfg.value_heads))
        self.policy = mlp(width, cfg.head_dims, 2 * action_dim, zero_last=True)
        self.register_buffer("pair_min_weights", pair_min_weights(cfg.value_heads), persistent=False)
        self.std_param = cfg.policy_std_param
        self.log_std_min, self.log_std_max = cfg.policy_log_std_min, cfg.policy_log_std_max
        self.std_shift = tanh_log_std_shift(cfg) if cfg.policy_std_param == "tanh_log" else POLICY_STD_SHIFT

    def trunk_features(self, latent, e):
        return self.trunk(_cat(latent, e))

    def value_logits(self, features):
        return torch.stack([head(features) for head in self.values])

    def policy_params(self, features):
        mean_raw, std_raw = self.policy(features).chunk(2, dim=-1)
        mean = POLICY_MEAN_BOUND * torch.tanh(mean_raw / POLICY_MEAN_BOUND)
        if self.std_param == "softplus":
            return mean, F.softplus(std_raw + self.std_shift) + POLICY_MIN_STD
        unit = 0.5 * (torch.tanh(std_raw + self.std_shift) + 1.0)
        return mean, torch.exp(self.log_std_min + (self.log_std_max - self.log_std_min) * unit)


class WorldModel(nn.Module):
    """The EZ-M world model. Every public method takes `task`: [B] int64 task indices into cfg.task_ids.

    obs_dims: each task's own obs dim, in cfg.task_ids order; observations arrive zero-padded to the max.
    action_dim: shared by every task (19 for every H1 task; EZ-M's per-task action masks are all ones in
    both published suites, so there are none here).
    """

    def __init__(self, cfg: EZMConfig, obs_dims: Sequence[int], action_dim: int):
        super().__init__()
        if len(obs_dims) != cfg.num_tasks:
            raise ValueError(f"got {len(obs_dims)} obs dims for the {cfg.num_tasks} tasks of {cfg.tasks!r}")
        self.cfg = cfg
        self.obs_dims = tuple(int(dim) for dim in obs_dims)
        self.obs_dim = max(self.obs_dims)
        self.action_dim = int(action_dim)
        self.reward_support = cfg.reward_support
        self.value_support = cfg.value_support
        task_dim = cfg.task_embedding_dim

        # [T, D] 1 on each task's own obs dims; a buffer, so checkpoints carry the obs layout.
        obs_mask = torch.zeros(cfg.num_tasks, self.obs_dim)
        for task, dim in enumerate(self.obs_dims):
            obs_mask[task, :dim] = 1.0
        self.register_buffer("obs_mask", obs_mask)

        self._task_embedding = TaskEmbedding(cfg.num_tasks, task_dim) if task_dim else None
        self._representation = _Representation(self.obs_dim, task_dim, cfg)
        self._dynamics = _LatentStep(cfg.latent_dim, task_dim + self.action_dim, cfg.trunk_dim, cfg.trunk_dim,
                                     cfg.num_blocks)
        self._reward = _Reward(self.action_dim, task_dim, cfg)
        self._value_policy = _ValuePolicy(self.action_dim, task_dim, cfg)
        # SimSiam branch, [EZM] ez_humanoid_bench_state.py build_model: projector L -> P with LN on every
        # layer, predictor P -> P. No task embedding, as in [EZM].
        hidden, proj = cfg.projector_hidden, cfg.projection_dim
        self._projector = nn.Sequential(
            nn.Linear(cfg.latent_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, proj), nn.LayerNorm(proj))
        self._predictor = nn.Sequential(
            nn.Linear(proj, cfg.predictor_hidden), nn.LayerNorm(cfg.predictor_hidden), nn.ReLU(),
            nn.Linear(cfg.predictor_hidden, proj))

    # --- components ---
    def task_embedding(self, task: torch.Tensor) -> torch.Tensor | None:
        """[B] -> [B, E] unit-ball task embedding; None for a single-task model ([EZM] builds none)."""
        return None if self._task_embedding is None else self._task_embedding(task)

    def encode(self, obs: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """obs [B, D] zero-padded -> latent [B, L]. Never updates the normaliser (see update_obs_stats)."""
        return self._representation(obs, self.obs_mask[task], self.task_embedding(task))

    @torch.no_grad()
    def update_obs_stats(self, obs: torch.Tensor, task: torch.Tensor) -> None:
        """Merge a batch of observations into the normaliser ([EZ2] does this in every train-mode forward)."""
        self._representation.normalizer.update(obs, self.obs_mask[task])

    def next(self, latent: torch.Tensor, action: torch.Tensor, task: torch.Tensor):
        """(latent [B, L], action [B, A] in [-1, 1]) -> (next latent [B, L], reward logits [B, S]).

        Both come from (s, a): the reward trunk runs beside the dynamics, as [EZM] `reward_parallel`.
        """
        e = self.task_embedding(task)
        return self._dynamics(latent, _cat(e, action)), self._reward(latent, action, e)

    def value_logits(self, latent: torch.Tensor, task: torch.Tensor) -> torch.Tensor:
        """latent [B, L] -> [H, B, S] logits of every value head."""
        return self._value_policy.value_logits(self._value_policy.trunk_features(latent, self.task_embedding(task)))

    def policy_params(self, latent: torch.Tensor, task: torch.Tensor):
        """latent [B, L] -> (mean, std) [B, A] of the pre-tanh Gaussian; action = tanh(mean + std·ε)."""
        return self._value_policy.policy_params(self._value_policy.trunk_features(latent, self.task_embedding(task)))

    def project(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, L] -> projection [B, P]. Of a real next observation's latent, this is the consistency
        target (stop its gradient: losses.consistency_loss does)."""
        return self._projector(latent)

    def predict(self, projection: torch.Tensor) -> torch.Tensor:
        """projection [B, P] -> [B, P], SimSiam's predictor, applied on the dynamics branch only."""
        return self._predictor(projection)

    def decode_value(self, value_logits: torch.Tensor) -> torch.Tensor:
        """[H, B, S] -> [B]: decode every head, then the expected min of a random pair (`pair_min_weights`).

        Not clipped to [0, 1e5] as [EZM] does: the support bounds it already, and negative returns stay
        representable.
        """
        heads = torch.sort(self.value_support.decode(value_logits), dim=0).values
        return (heads * self._value_policy.pair_min_weights[:, None]).sum(0)

    def value_and_policy(self, latent: torch.Tensor, task: torch.Tensor):
        """latent [B, L] -> (value logits [H, B, S], policy mean [B, A], std [B, A]) from one trunk pass.

        The learner's unroll needs all three at every step; calling value_logits and policy_params
        separately would run the shared trunk twice.
        """
        return self._value_and_policy(latent, task)

    def _value_and_policy(self, latent, task):
        """value logits, policy mean and std from one pass through the shared trunk."""
        features = self._value_policy.trunk_features(latent, self.task_embedding(task))
        return (self._value_policy.value_logits(features), *self._value_policy.policy_params(features))

    # --- search interface ---
    def initial_inference(self, obs: torch.Tensor, task: torch.Tensor) -> InitialInference:
        """obs [B, D], task [B] -> latent, decoded value, policy (mean, std), and value logits."""
        latent = self.encode(obs, task)
        value_logits, mean, std = self._value_and_policy(latent, task)
        return InitialInference(latent, self.decode_value(value_logits), mean, std, value_logits)

    def recurrent_inference(self, latent: torch.Tensor, action: torch.Tensor, task: torch.Tensor) -> RecurrentInference:
        """(latent [B, L], action [B, A], task [B]) -> next latent, decoded reward and value, policy, logits."""
        next_latent, reward_logits = self.next(latent, action, task)
        value_logits, mean, std = self._value_and_policy(next_latent, task)
        reward = self.reward_support.decode(reward_logits)
        return RecurrentInference(next_latent, reward, self.decode_value(value_logits), mean, std,
                                  reward_logits, value_logits)

    # --- introspection ---
    def parameter_counts(self) -> dict[str, int]:
        """Learnable parameters per component, and their total."""
        components = {
            "task_embedding": self._task_embedding, "representation": self._representation,
            "dynamics": self._dynamics, "reward": self._reward, "value_policy": self._value_policy,
            "projector": self._projector, "predictor": self._predictor,
        }
        counts = {name: sum(p.numel() for p in module.parameters()) if module is not None else 0
                  for name, module in components.items()}
        counts["total"] = sum(counts.values())
        return counts

    def __repr__(self) -> str:
        lines = [f"WorldModel(tasks={self.cfg.num_tasks}, obs_dims={self.obs_dims}, action_dim={self.action_dim}, "
                 f"latent={self.cfg.latent_dim}, task_dim={self.cfg.task_embedding_dim}, "
                 f"value_heads={self.cfg.value_heads})"]
        lines += [f"  {name:<15}{count:>12,}" for name, count in self.parameter_counts().items()]
        return "\n".join(lines)
