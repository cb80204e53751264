"""EZMConfig: every knob of EZ-M training in one frozen dataclass, plus named presets.

Sources cited in the field comments:
  [EZM]  liushaohuai5/EfficientZero_Multitask @ 4c1428f, ez/config/exp/humanoid_bench_state.yaml (multi-task)
         and humanoidbench_state_single.yaml, unless another file is named;
  [EZ2]  Shengjiewang-Jason/EfficientZeroV2 @ 12b9e77, ez/config/exp/dmc_state.yaml;
  choice = the sources leave it open or we deliberately differ; docs/design.md gives the reasons.

Usage:
  EZMConfig()                                      # one GPU, EZ-M multi-task numbers, `default` model size
  EZMConfig.from_preset("smoke", size="tiny")      # named overrides, then keyword overrides
  EZMConfig.from_cli(["--preset", "smoke", "lr=3e-4", "head_dims=256,256"])

Torch-free, so the planner can read a checkpoint's config without torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ezm_training.search import settings as search_settings
from ezm_training.support import SupportSpec

# Task ids follow sim_bridge: `h1-<name>-v0`; a task's index is its position in the list.
_H1_MEDIUM = ("stand", "walk", "run", "stair", "crawl", "pole", "slide", "hurdle", "maze")
_H1_EXTRA = ("sit_simple", "sit_hard", "balance_simple", "balance_hard", "reach")

TASK_SETS: dict[str, tuple[str, ...]] = {
    "h1-stand": ("h1-stand-v0",),
    "h1-locomotion": ("h1-stand-v0", "h1-walk-v0", "h1-run-v0"),
    # [EZM] ez/agents/ez_humanoid_bench_state.py `difficulty: medium`: the 9 tasks of HumanoidBench-Medium.
    "h1-medium": tuple(f"h1-{name}-v0" for name in _H1_MEDIUM),
    # [EZM] `difficulty: hard` lists these 14 tasks for h1hand; here on the H1 without hands.
    "h1-all14": tuple(f"h1-{name}-v0" for name in _H1_MEDIUM + _H1_EXTRA),
}

# Model sizes: named overrides of the model fields (TD-MPC2 MODEL_SIZE style).
MODEL_SIZES: dict[str, dict[str, Any]] = {
    # [EZM] model section: ≈16M parameters with the value ensemble (test_networks prints the count).
    "default": dict(latent_dim=512, task_dim=128, num_blocks=3, trunk_dim=512, action_embed_dim=64,
                    head_dims=(512, 512), projector_hidden=1024, projection_dim=512, predictor_hidden=1024),
    # [EZM] the smaller setting commented out in the same yaml (num_blocks is not part of it).
    "small": dict(latent_dim=128, task_dim=32, num_blocks=3, trunk_dim=256, action_embed_dim=32,
                  head_dims=(256, 256), projector_hidden=512, projection_dim=128, predictor_hidden=512),
    # choice: for tests and CPU smoke runs.
    "tiny": dict(latent_dim=32, task_dim=8, num_blocks=1, trunk_dim=64, action_embed_dim=16,
                 head_dims=(64, 64), projector_hidden=64, projection_dim=32, predictor_hidden=64),
}

# Training presets: named overrides of any field; a preset may name a model size under "size".
PRESETS: dict[str, dict[str, Any]] = {
    # One GPU, the EZ-M multi-task numbers (EZ-M itself ran on 2 GPUs, [EZM] scripts/train.sh).
    "default": {},
    # CPU, minutes: one task, tiny model, tiny search and buffers. Not meant to learn anything.
    "smoke": dict(
        size="tiny", tasks="h1-stand", device="cpu", precision="fp32", num_threads=1,
        train_episode_steps=100, long_episode_steps=100, eval_episode_steps=100,
        num_simulations=8, num_sampled_actions=4, num_policy_actions=1, num_top_actions=4,
        transitions_per_task=1_000, recent_window_per_task=1_000, start_transitions_per_task=100,
        mixed_value_threshold_per_task=250, mixed_value_start_step=50,
        num_actors=1, envs_per_task=2, reanalyze_workers=1,
        batch_size=32, training_steps=100, offline_training_steps=0, entropy_samples=16,
        eval_interval=50, eval_episodes_per_task=1, log_interval=10, checkpoint_interval=50,
    ),
    # Fast benchmarks on a CPU (gymnasium's and DMC tasks: bench/learning.py, the learning test): tiny model,
    # 2 value heads, 8 simulations over 4 candidates, nstep values only, and target/actor models that follow
    # the learner within ~20 updates (EMA 0.05 every update) instead of EZ-M's ~500: a run is thousands of
    # updates, not EZ-M's 600k, and a lagging actor would spend most of it acting on old weights
    # (docs/design.md, "Fast benchmarks"). The policy update that neither widens nor drifts: a bounded std,
    # the proposal-corrected root prior and the improved-policy loss (docs/design.md, "The policy-std
    # loop"). tasks must be given.
    "fast": dict(
        size="tiny", device="cpu", precision="fp32", num_threads=1, value_heads=2,
        num_simulations=8, num_sampled_actions=4, num_policy_actions=1, num_top_actions=4,
        policy_std_param="tanh_log", policy_log_std_min=-3.0, policy_log_std_max=-0.69, policy_std_init=0.1,
        policy_target="improved", root_prior="proposal",
        batch_size=32, lr=1e-3, entropy_samples=16, target_ema_tau=0.05, target_update_interval=1,
        actor_update_interval=1, num_actors=1, envs_per_task=1, reanalyze_workers=1,
        training_steps=2_000, offline_training_steps=0, transitions_per_task=4_000, recent_window_per_task=4_000,
        start_transitions_per_task=200, mixed_value_start_step=10**9,
        train_episode_steps=1000, long_episode_steps=1000, eval_episode_steps=1000,
        eval_interval=500, eval_episodes_per_task=2, log_interval=50, checkpoint_interval=1_000,
    ),
    # A run on a 2-core CPU, hours to days: stand, walk and run with the tiny model. cpu-run-1 (EZ-M's
    # policy update, EMA lag ~500 updates, 3 stored steps per update; its config.json is its own) ended
    # where a = 0 does, with 60-74 % of the joint targets saturated. Since then (docs/design.md, "The
    # policy-std loop"): a bounded std, the proposal-corrected prior with 1.5x widening and the improved-
    # policy loss (0 % saturated on h1-stand), a target/actor EMA that lags ~20 updates, 1 update per
    # stored step, 16 simulations over 8 candidates and 2 value heads to pay for it. lr 3e-4 is EZ V2's
    # ([EZ2] dmc_state.yaml) for this small batch; 16 entropy samples suffice for its mean. The compiled
    # loss cuts the tiny model's update from 39 to 22 ms here (BENCHMARKS.md) for a minute of compiling.
    # Throughput (BENCHMARKS.md, "Training throughput"): 4 envs per task batch the acting search, and the
    # collector runs in its own process beside the learner. Reanalysis keeps the acting budget (16): with
    # 8, one visit per candidate, the improved-policy targets drove the policy std to its cap on h1-stand
    # (0.1 -> 0.5 by update 3,000) and on InvertedPendulum (docs/design.md, "The reanalysis budget").
    "cpu": dict(
        size="tiny", tasks="h1-locomotion", device="cpu", precision="fp32", num_threads=1, compile=True,
        policy_std_param="tanh_log", policy_log_std_min=-3.0, policy_log_std_max=-0.69, policy_std_init=0.1,
        policy_target="improved", root_prior="proposal", widen_std_factor=1.5, value_heads=2,
        num_simulations=16, num_sampled_actions=8, num_policy_actions=2, num_top_actions=8,
        target_ema_tau=0.05, target_update_interval=1, actor_update_interval=1,
        num_actors=1, envs_per_task=4, reanalyze_workers=1, batch_size=64, lr=3e-4, entropy_samples=16,
        collector_process=True, training_steps=200_000, offline_training_steps=0, transitions_per_task=200_000,
        recent_window_per_task=200_000, mixed_value_threshold_per_task=120_000, mixed_value_start_step=1_000_000,
        train_episode_steps=1000, long_episode_steps=1000,
        eval_interval=2_000, eval_episodes_per_task=2, log_interval=100, checkpoint_interval=1_000,
        save_video=True,
    ),
}

# e.g. h1-sit_simple-v0 (sim_bridge), gym:InvertedPendulum-v5 (gymnasium), dmc:cartpole-swingup (ezm_training.envs)
_ENV_ID = re.compile(r"[a-z0-9]+-[a-z0-9_]+-v[0-9]+|gym:[A-Za-z0-9_./:-]+-v[0-9]+|dmc:[a-z_]+-[a-z_]+")
_PRECISIONS = ("fp32", "bf16", "fp16")
_VALUE_TARGETS = ("nstep", "search", "mixed")
_POLICY_TARGETS = ("chosen", "improved")
_POLICY_STD_PARAMS = ("softplus", "tanh_log")
_ROOT_PRIORS = ("uniform", "proposal")
_ENGINES = ("local", "ray")


class ConfigError(ValueError):
    """A key, value, preset or size the config cannot accept; the message says what would be accepted."""


@dataclass(frozen=True)
class EZMConfig:
    # --- environment and tasks ---
    tasks: str = "h1-medium"  # a TASK_SETS name or comma-separated env ids; [EZM] difficulty medium
    seed: int = 1  # base seed of envs, search and torch; [EZM] base_seed 2, any value
    train_episode_steps: int = 500  # agent steps per training episode at first; [EZM] max_episode_steps
    long_episode_steps: int = 1000  # steps once the curriculum switches; [EZM] ez/worker/data_worker.py
    long_episodes_after: float = 0.4  # fraction of training_steps after which every env is long; [EZM] data_worker
    saturation_window: int = 10  # returns looked at to call a task saturated; [EZM] ez/data/global_storage.py
    saturation_spread: float = 0.1  # saturated if (max − min)/max of that window is below this; [EZM] global_storage
    saturation_min_return: float = 60.0  # ... and its min exceeds this return; [EZM] global_storage
    eval_episode_steps: int = 1000  # agent steps per eval episode; [EZM] HumanoidBench TimeLimit
    respect_terminations: bool = True  # terminations end episodes and are stored; choice: [EZM] ignores them
    action_repeat: int = 1  # env steps per agent step, rewards summed; [EZM] n_skip 1 ([EZ2] DMC: 2)

    # --- model (MODEL_SIZES sets the first nine) ---
    latent_dim: int = 512  # L, width of the latent state; [EZM] hidden_shape
    task_dim: int = 128  # task embedding width (max-norm 1), unused with one task; [EZM] task_embedding_shape
    num_blocks: int = 3  # residual blocks in each trunk; [EZM] num_blocks
    trunk_dim: int = 512  # hidden width of the representation and dynamics blocks; [EZM] rep_net_shape, dyn_shape
    action_embed_dim: int = 64  # action ⊕ task embedding width of the reward trunk; [EZM] act_embed_shape
    head_dims: tuple[int, ...] = (512, 512)  # hidden widths of reward, value and policy MLPs; [EZM] *_net_shape
    projector_hidden: int = 1024  # SimSiam projector hidden width; [EZM] proj_hid_shape
    projection_dim: int = 512  # projector output = predictor output width; [EZM] proj_shape, pred_shape
    predictor_hidden: int = 1024  # SimSiam predictor hidden width; [EZM] pred_hid_shape
    value_heads: int = 5  # value ensemble size; [EZM] v_num
    reward_support_min: float = -299.0  # reward support range; [EZM] reward_support.range ([EZ2]: ±2)
    reward_support_max: float = 299.0
    reward_support_bins: int = 51  # [EZM] [EZ2] bins
    value_support_min: float = -299.0  # value support range; [EZM] [EZ2] value_support.range
    value_support_max: float = 299.0
    value_support_bins: int = 51
    obs_norm_prior_count: int = 1000  # pseudo-samples of N(0, 1) the obs normaliser starts from; [EZ2] RunningMeanStd

    # --- policy distribution: a = tanh(u), u ~ N(mean, std); networks.py has the formulas ---
    policy_std_param: str = "softplus"  # "softplus" ([EZ2], std 1.41 at init, unbounded) | "tanh_log" ([EZM]
    #                                     "tdmpc2": log std squashed into [min, max]); choice: docs/design.md
    policy_log_std_min: float = -10.0  # lower bound of log std under "tanh_log"; [EZM] [−10, 2]
    policy_log_std_max: float = 2.0  # upper bound of log std under "tanh_log"; [EZM] 2
    policy_std_init: float = 0.018316  # std at init under "tanh_log", inside the bounds; [EZM] e^−4 (x = 0)

    # --- search (sampled Gumbel search) ---
    num_simulations: int = 32  # N; [EZM] [EZ2] mcts.num_simulations
    num_sampled_actions: int = 16  # K root candidates; [EZM] num_sampled_actions
    num_policy_actions: int = 4  # candidates from π; the rest use std × widen_std_factor; [EZM] policy_action_num
    widen_std_factor: float = 3.0  # std multiplier of the widened candidates; [EZM] std_magnification
    num_top_actions: int = 16  # m candidates entering sequential halving; [EZM] num_top_actions
    children_per_node: int = 2  # actions sampled at each expanded non-root node; [EZ2] cy_mcts leaf_num
    c_visit: float = 50.0  # σ(q̂) = (c_visit + max N)·c_scale·q̂; [EZM] [EZ2] mcts.c_visit
    c_scale: float = 0.1  # [EZM] [EZ2] mcts.c_scale
    value_minmax_delta: float = 0.01  # minimum range of the min-max Q normalisation; [EZM] value_minmax_delta
    action_clip: float = 0.999  # candidates clipped to ±this before atanh; [EZ2] cy_mcts.py
    widen_at_eval: bool = False  # eval samples all K from π; choice: [EZM] cy_mcts.py widens at eval too
    root_prior: str = "uniform"  # root logits: "uniform" (0, [EZ2] [EZM]) | "proposal": log π(a) − log q(a),
    #                              q the mixture the candidates were drawn from (Sampled MuZero's correction)

    # --- replay (one buffer per task, [EZM] ind_exp_rp) ---
    transitions_per_task: int = 1_000_000  # env steps stored per task; [EZM] total_transitions comment "1M for h1-*"
    start_transitions_per_task: int = 1000  # random-action steps per task before training; [EZM] start_transitions
    block_steps: int = 100  # transitions per stored block; [EZM] trajectory_size
    recent_window_per_task: int = 1_000_000  # only the newest this many can be sampled; [EZM] top_transitions
    priority_alpha: float = 1.0  # P(i) ∝ prio^α; [EZM] priority_prob_alpha
    priority_beta: float = 1.0  # IS weight (N·P)^−β; [EZM] priority_prob_beta
    priority_eps: float = 1e-6  # added to |V̂ − target|; [EZM] min_prior
    is_weight_min: float = 0.1  # IS weights (divided by their max) are clipped to [this, 1]; [EZ2] replay_buffer.py
    store_final_block: bool = True  # store an episode's last block; choice: [EZM] data_worker.py drops it

    # --- targets and reanalyze ---
    discount: float = 0.99  # γ per agent step; [EZM] rl.discount ([EZ2] 0.997)
    unroll_steps: int = 5  # K of the model unroll; [EZM] [EZ2] unroll_steps
    td_steps: int = 5  # n of the n-step value target; [EZM] [EZ2] td_steps
    value_target: str = "mixed"  # "nstep" | "search" | "mixed"; [EZM] value_target
    mixed_value_threshold_per_task: int = 200_000  # newest transitions per task that keep the n-step target; [EZM]
    mixed_value_start_step: int = 50_000  # step from which "mixed" uses search values; [EZM] start_use_mix_...
    target_ema_tau: float = 0.01  # EMA rate of the reanalyze/target and actor models; [EZM] ez/worker/base.py
    target_update_interval: int = 5  # training steps between EMA updates of the target model; [EZM]
    actor_update_interval: int = 5  # training steps between EMA updates of the actor model; [EZM]
    reanalyze_workers: int = 10  # processes computing targets; [EZM] actors.batch_worker
    reanalyze_simulations: int = 0  # simulations of the reanalysis search, 0 = num_simulations; bounds its cost
    #                                 (B·(U+1) roots per update: the learner's largest part on a CPU); choice

    # --- actors ---
    num_actors: int = 4  # data-collecting processes; [EZM] actors.data_worker
    envs_per_task: int = 4  # copies of every task in each actor; [EZM] data.num_envs
    collector_process: bool = False  # collect in a process of its own, one chunk ahead of the learner, so acting
    #                                  and updates overlap on two cores (collector_process.py); choice

    # --- engine: where the parts run (ray_engine.py); left out of the config hash at their defaults ---
    engine: str = "local"  # "local": this process (+ collector_process); "ray": num_actors collector actors and
    #                        reanalyze_workers reanalysis actors on Ray; [EZM] runs its workers as Ray actors
    ray_address: str = ""  # an existing Ray cluster ("auto", "ray://head:10001"); "" starts Ray on this machine
    ray_actor_cpus: float = 1.0  # CPUs Ray reserves for each collector and reanalysis actor; choice
    ray_actor_gpus: float = 0.0  # GPU fraction of each such actor; > 0 runs its search on that GPU; choice
    ray_wait_s: float = 60.0  # longest learner wait for a reanalysis actor; then it computes the targets itself

    # --- optimisation ---
    batch_size: int = 512  # samples per step before rounding to a multiple of num_tasks; [EZM] batch_size
    lr: float = 1e-4  # Adam learning rate; [EZM] optimizer.lr ([EZ2] 3e-4)
    weight_decay: float = 2e-5  # Adam L2 weight decay; [EZM] [EZ2]
    grad_clip_norm: float = 5.0  # global grad-norm clip; [EZM] max_grad_norm (single task: 10)
    lr_warmup_fraction: float = 0.0  # linear warm-up, as a fraction of training_steps; [EZM] lr_warm_up ([EZ2] 0.01)
    lr_decay_at: float = 0.9  # lr × lr_decay_factor from this fraction of training_steps; [EZM] base.py adjust_lr
    lr_decay_factor: float = 0.1  # [EZM] lr_decay_rate
    training_steps: int = 600_000  # gradient steps paced with collection; [EZM] training_steps
    offline_training_steps: int = 20_000  # extra steps after collection ends; [EZM] offline_training_steps
    latent_grad_scale: float = 0.5  # latent gradient × this at every unroll step; [EZ2] [EZM] base.py hook

    # --- loss weights (no hidden factors inside ezm_training/losses.py) ---
    reward_weight: float = 1.0  # [EZM] reward_loss_coeff
    value_weight: float = 0.25  # [EZM] value_loss_coeff 0.5 × the fixed 0.5 of its disabled IQL weighting
    policy_weight: float = 1.0  # [EZM] policy_loss_coeff
    consistency_weight: float = 5.0  # [EZM] consistency_coeff ([EZ2] 2)
    entropy_weight: float = 5e-3  # entropy bonus with [EZ2] sign, [EZM] magnitude
    path_consistency_weight: float = 0.25  # 0 disables; [EZM] value_loss_coeff × the same fixed 0.5
    entropy_samples: int = 1024  # reparameterised samples of the entropy estimate; [EZ2] continuous_loss
    policy_target: str = "chosen"  # "chosen": −log π(a*); "improved": Σ π'(a)·−log π(a); [EZM] [EZ2] A > 1

    # --- evaluation ---
    eval_interval: int = 5000  # training steps between evaluations; [EZM] eval_interval
    eval_episodes_per_task: int = 1  # [EZM] eval_worker.py (multi-task)

    # --- logging ---
    run_dir: str = "runs"  # logs, checkpoints and config.json go to run_dir/<hash>; choice
    log_interval: int = 100  # training steps between logged scalars; choice
    tensorboard: bool = True  # write tensorboard event files; choice
    save_video: bool = False  # record eval episodes; [EZM] data.save_video

    # --- checkpointing ---
    checkpoint_interval: int = 10_000  # training steps between checkpoints; [EZM] save_ckpt_interval
    keep_checkpoints: int = 3  # newest checkpoints kept on disk; choice
    resume: str = ""  # checkpoint path to resume from, "" for a fresh run; choice

    # --- device and precision ---
    device: str = "cuda"  # torch device of the learner; [EZM] CUDA
    precision: str = "bf16"  # autocast dtype "fp32" | "bf16" | "fp16"; choice: [EZ2] fp16 + GradScaler
    compile: bool = False  # torch.compile the learner's loss (learner.py); choice: off until measured to help
    num_threads: int = 0  # torch CPU threads, 0 = torch's default; choice

    def __post_init__(self):
        for name in _field_types():
            value = getattr(self, name)
            numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
            if numeric and value < 0 and not name.endswith(("_support_min", "_log_std_min", "_log_std_max")):
                raise ConfigError(f"{name} must be >= 0, got {value}")
        self.task_ids  # resolves the task set, raises on an unknown name
        self.reward_support, self.value_support  # validate ranges and bins
        if self.precision not in _PRECISIONS:
            raise ConfigError(f"precision must be one of {_PRECISIONS}, got {self.precision!r}")
        if self.value_target not in _VALUE_TARGETS:
            raise ConfigError(f"value_target must be one of {_VALUE_TARGETS}, got {self.value_target!r}")
        if self.policy_target not in _POLICY_TARGETS:
            raise ConfigError(f"policy_target must be one of {_POLICY_TARGETS}, got {self.policy_target!r}")
        if self.policy_std_param not in _POLICY_STD_PARAMS:
            raise ConfigError(f"policy_std_param must be one of {_POLICY_STD_PARAMS}, got {self.policy_std_param!r}")
        if self.root_prior not in _ROOT_PRIORS:
            raise ConfigError(f"root_prior must be one of {_ROOT_PRIORS}, got {self.root_prior!r}")
        if not self.policy_log_std_min < self.policy_log_std_max:
            raise ConfigError("need policy_log_std_min < policy_log_std_max")
        if not math.exp(self.policy_log_std_min) < self.policy_std_init < math.exp(self.policy_log_std_max):
            raise ConfigError(f"policy_std_init {self.policy_std_init} must lie strictly inside "
                              f"(e^{self.policy_log_std_min}, e^{self.policy_log_std_max})")
        if not 0 < self.num_policy_actions <= self.num_sampled_actions:
            raise ConfigError("need 0 < num_policy_actions <= num_sampled_actions")
        if not 0 < self.num_top_actions <= self.num_sampled_actions:
            raise ConfigError("need 0 < num_top_actions <= num_sampled_actions")
        if self.value_heads < 1 or self.unroll_steps < 1 or self.td_steps < 1 or self.action_repeat < 1:
            raise ConfigError("value_heads, unroll_steps, td_steps and action_repeat must be >= 1")
        if self.reanalyze_simulations and self.reanalyze_simulations < self.num_top_actions:
            raise ConfigError(f"reanalyze_simulations {self.reanalyze_simulations} must be 0 (= num_simulations) or "
                              f">= num_top_actions {self.num_top_actions}: each top candidate needs one visit")
        if self.engine not in _ENGINES:
            raise ConfigError(f"engine must be one of {_ENGINES}, got {self.engine!r}")
        if self.engine == "ray" and self.collector_process:
            raise ConfigError("collector_process is the local engine's; engine=ray runs the collectors as actors")
        if self.engine == "ray" and (self.num_actors < 1 or self.reanalyze_workers < 1):
            raise ConfigError("engine=ray needs num_actors >= 1 and reanalyze_workers >= 1")
        if self.batch_size < self.num_tasks:
            raise ConfigError(f"batch_size {self.batch_size} is smaller than the {self.num_tasks} tasks")
        # The planner's bundle loader checks the same table: a run it could not deploy fails here, not at export.
        search = self.search_kwargs
        problems = search_settings.problems(search) + search_settings.problems(
            {**search, "num_simulations": self.reanalyze_simulations or self.num_simulations})
        if problems:
            raise ConfigError("; ".join(dict.fromkeys(problems)))

    # --- derived values ---
    @property
    def search_kwargs(self) -> dict[str, Any]:
        """The search knobs under `ezm_training.search.gumbel_search`'s argument names (all but `widen`).

        The one mapping from this config to the search: acting and reanalysis (model_search.search_batch)
        and the exported bundle's manifest (export.bundle.search_settings) both use it.
        """
        return dict(num_simulations=self.num_simulations, num_candidates=self.num_sampled_actions,
                    num_policy_actions=self.num_policy_actions, widen_std_factor=self.widen_std_factor,
                    num_top_actions=self.num_top_actions, children_per_node=self.children_per_node,
                    discount=self.discount, c_visit=self.c_visit, c_scale=self.c_scale,
                    value_minmax_delta=self.value_minmax_delta, action_clip=self.action_clip,
                    root_prior=self.root_prior)

    @property
    def task_ids(self) -> tuple[str, ...]:
        """The env ids trained on; task index = position in this tuple."""
        if self.tasks in TASK_SETS:
            return TASK_SETS[self.tasks]
        ids = tuple(part.strip() for part in self.tasks.split(",") if part.strip())
        if not ids or not all(_ENV_ID.fullmatch(task) for task in ids):
            raise ConfigError(f"tasks={self.tasks!r} is not a task set ({_suggest(self.tasks, TASK_SETS)}) "
                              "nor comma-separated env ids like h1-walk-v0, gym:Pendulum-v1 or dmc:walker-walk")
        return ids

    @property
    def num_tasks(self) -> int:
        return len(self.task_ids)

    @property
    def task_embedding_dim(self) -> int:
        """Width of the task embedding the model uses: none for a single task ([EZM] single-task config)."""
        return self.task_dim if self.num_tasks > 1 else 0

    @property
    def batch_size_per_task(self) -> int:
        """Samples drawn from each task's buffer per step ([EZM] batch_size // num_tasks)."""
        return self.batch_size // self.num_tasks

    @property
    def effective_batch_size(self) -> int:
        """batch_size rounded down to a multiple of num_tasks: 512 -> 504 for 14 tasks ([EZM])."""
        return self.batch_size_per_task * self.num_tasks

    @property
    def num_widened_actions(self) -> int:
        """Root candidates drawn with std × widen_std_factor."""
        return self.num_sampled_actions - self.num_policy_actions

    @property
    def lr_decay_step(self) -> int:
        return int(self.lr_decay_at * self.training_steps)

    @property
    def lr_warmup_steps(self) -> int:
        return int(self.lr_warmup_fraction * self.training_steps)

    @property
    def long_episodes_step(self) -> int:
        return int(self.long_episodes_after * self.training_steps)

    @property
    def reanalyze_search_kwargs(self) -> dict[str, Any]:
        """`search_kwargs` with reanalysis's own simulation count."""
        return {**self.search_kwargs, "num_simulations": self.reanalyze_simulations or self.num_simulations}

    @property
    def transitions_per_step(self) -> float:
        """Pacing: stored transitions per task per gradient step ([EZ2] replay ratio rule)."""
        return self.transitions_per_task / self.training_steps

    @property
    def reward_support(self) -> SupportSpec:
        return SupportSpec(self.reward_support_min, self.reward_support_max, self.reward_support_bins)

    @property
    def value_support(self) -> SupportSpec:
        return SupportSpec(self.value_support_min, self.value_support_max, self.value_support_bins)

    # --- construction ---
    @classmethod
    def from_preset(cls, preset: str = "default", size: str | None = None, **overrides: Any) -> EZMConfig:
        """Defaults, then PRESETS[preset], then MODEL_SIZES[size] (the preset's own size if None), then overrides.

        Override values are coerced like CLI strings when they are strings, so `lr="3e-4"` works.
        """
        if preset not in PRESETS:
            raise ConfigError(f"unknown preset {preset!r}; {_suggest(preset, PRESETS)}")
        preset_values = dict(PRESETS[preset])
        size = size or preset_values.pop("size", "default")
        preset_values.pop("size", None)  # when `size` was given explicitly
        if size not in MODEL_SIZES:
            raise ConfigError(f"unknown model size {size!r}; {_suggest(size, MODEL_SIZES)}")
        values = {**preset_values, **MODEL_SIZES[size], **overrides}
        return cls(**{key: cls._coerce(key, value) for key, value in values.items()})

    @classmethod
    def from_cli(cls, argv: Sequence[str]) -> EZMConfig:
        """Parse `[--preset NAME] [--size NAME] key=value ...`; no eval, types from the field annotations."""
        preset, size, overrides = "default", None, {}
        args = list(argv)
        while args:
            arg = args.pop(0)
            if arg.startswith("--"):
                flag, _, value = arg[2:].partition("=")
                if flag not in ("preset", "size"):
                    raise ConfigError(f"unknown option --{flag}; options are --preset and --size")
                if not value:
                    if not args:
                        raise ConfigError(f"--{flag} needs a value")
                    value = args.pop(0)
                if flag == "preset":
                    preset = value
                else:
                    size = value
            elif "=" in arg:
                key, _, value = arg.partition("=")
                overrides[key.strip()] = value.strip()
            else:
                raise ConfigError(f"expected key=value, --preset NAME or --size NAME, got {arg!r}")
        return cls.from_preset(preset, size, **overrides)

    def replace(self, **overrides: Any) -> EZMConfig:
        """A copy with some fields changed (coerced like from_preset)."""
        return dataclasses.replace(self, **{key: self._coerce(key, value) for key, value in overrides.items()})

    # --- serialisation ---
    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(dataclasses.asdict(self), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EZMConfig:
        values = json.loads(text)
        # Runs saved before the policy parameterisation was a field used EZ V2's softplus std.
        values.setdefault("policy_std_param", "softplus")
        return cls(**{key: cls._coerce(key, value) for key, value in values.items()})

    def hash(self) -> str:
        """12 hex digits of the SHA-256 of the canonical JSON: stable across processes and machines.

        The engine fields are left out at their defaults, so a config written before they existed keeps its
        hash (its run dir and its bundles' model ids)."""
        values = {key: value for key, value in dataclasses.asdict(self).items()
                  if not (key in _ENGINE_FIELDS and value == _ENGINE_FIELDS[key])}
        canonical = json.dumps(values, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    # --- helpers ---
    @classmethod
    def _coerce(cls, key: str, value: Any) -> Any:
        """`value` (a CLI string or a JSON value) converted to the type of field `key`."""
        fields = _field_types()
        if key not in fields:
            raise ConfigError(f"unknown config key {key!r}; {_suggest(key, fields)}")
        kind = fields[key]
        try:
            return _convert(kind, value)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{key}={value!r}: {error}") from None


_ENGINE_FIELDS = {name: getattr(EZMConfig, name)
                  for name in ("engine", "ray_address", "ray_actor_cpus", "ray_actor_gpus", "ray_wait_s")}


@functools.cache
def _field_types() -> dict[str, Any]:
    """EZMConfig field name -> resolved type annotation (the annotations are strings under __future__)."""
    hints = typing.get_type_hints(EZMConfig)
    return {field.name: hints[field.name] for field in dataclasses.fields(EZMConfig)}


def _convert(kind: Any, value: Any) -> Any:
    """Convert one value to `kind`: bool, int, float, str or tuple[int/float/str, ...]."""
    if typing.get_origin(kind) is tuple:
        item_kind = typing.get_args(kind)[0]
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return tuple(_convert(item_kind, item.strip() if isinstance(item, str) else item) for item in items)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError("expected true/false")
    if kind is int:
        if isinstance(value, bool):
            raise TypeError("expected an integer, got a bool")
        number = float(value) if isinstance(value, str) else value  # accepts "6e5" and "1_000_000"
        if isinstance(number, float):
            if not number.is_integer():
                raise ValueError("expected an integer")
            number = int(number)
        if not isinstance(number, int):
            raise TypeError(f"expected an integer, got {type(value).__name__}")
        return number
    if kind is float:
        if isinstance(value, bool):
            raise TypeError("expected a number, got a bool")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {type(value).__name__}")
        return value
    raise TypeError(f"unsupported field type {kind}")


def _suggest(word: str, choices: Mapping[str, Any] | Sequence[str]) -> str:
    """'did you mean ...?' with the closest names (difflib), or the full list when none is close."""
    names = sorted(choices)
    close = difflib.get_close_matches(word, names, n=3, cutoff=0.6)
    if close:
        return "did you mean " + " or ".join(close) + "?"
    return "valid: " + ", ".join(names)
