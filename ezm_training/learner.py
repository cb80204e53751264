"""The learner: one gradient step of EZ-M on a batch and its targets, plus the target and actor models.

Loss ([EZ2]/[EZM] ez/agents/base.py `update_weights`), per sample, over unroll states k = 0..U:
  w_v·L_v(k)·value_mask + (w_π·L_π(k) + w_H·(−H(k)))·policy_mask
  + for k ≥ 1: w_r·CE(r̂_{k−1})·reward_mask + w_c·L_cons(k)·value_mask + w_path·L_path(k−1)·reward_mask
then × IS weight, mean over the batch, and the gradient × 1/U ([EZ2] registers a hook with
1/unroll_steps on the loss; multiplying the loss is the same gradient). The latent's gradient is halved at
every unroll step ([EZ2] `scale_gradient(state, 0.5)`).

Optimiser: Adam with L2 weight decay ([EZ2] torch.optim.Adam(weight_decay)), linear warm-up over
lr_warmup_fraction of training_steps, ×lr_decay_factor from lr_decay_at ([EZM] adjust_lr); global
grad-norm clip. bf16 autocast on CUDA only (CPU runs fp32). A non-finite loss or gradient skips the step:
it is logged and counted, never a debugger prompt ([EZ2] drops into ipdb, which hangs headless runs).

`compile=True` runs the loss (forward of every unroll step and the loss terms; its backward through
AOTAutograd) as one torch.compile'd function: a pure function of the batch, the targets and the entropy
noise, which is drawn before it from the learner's seeded generator (compile cannot trace a generator).
The first update compiles (about a minute on a CPU, with inductor's cache empty); later ones reuse the code
while shapes stay the same.

Target and actor models ([EZM] ez/worker/base.py `set_weights(hard=False)`): EMA of the learner's
parameters with τ = 0.01 every 5 steps; buffers (the obs normaliser's mean/var/count, the obs mask) are
copied, not blended: a blended integer count is meaningless.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch

from ezm_training import diagnostics, losses
from ezm_training.config import EZMConfig
from ezm_training.networks import WorldModel
from ezm_training.search._arrays import namespace
from ezm_training.targets import Targets

log = logging.getLogger(__name__)


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; the backward gradient is multiplied by `scale` ([EZ2] scale_gradient)."""
    return x * scale + x.detach() * (1.0 - scale)


def learning_rate(cfg: EZMConfig, step: int) -> float:
    """The lr at training step `step` (0-based): warm-up, then constant, then ×decay from lr_decay_step."""
    lr = cfg.lr
    if cfg.lr_warmup_steps > 0 and step < cfg.lr_warmup_steps:
        lr *= (step + 1) / cfg.lr_warmup_steps
    if step >= cfg.lr_decay_step:
        lr *= cfg.lr_decay_factor
    return lr


@torch.no_grad()
def ema_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    """target ← (1 − τ)·target + τ·source for parameters; buffers copied."""
    for p_target, p_source in zip(target.parameters(), source.parameters()):
        p_target.lerp_(p_source, tau)
    for b_target, b_source in zip(target.buffers(), source.buffers()):
        b_target.copy_(b_source)


class Learner:
    """Owns the world model, its optimiser and the target/actor copies; `update` is one training step."""

    def __init__(self, cfg: EZMConfig, obs_dims, action_dim: int, device: torch.device | str = "cpu"):
        if cfg.precision == "fp16":
            raise ValueError("precision fp16 needs a GradScaler, which this learner does not use; use bf16 or fp32")
        self.cfg = cfg
        self.device = torch.device(device)
        with torch.random.fork_rng(devices=[]):  # initial weights depend on the seed only; global RNG untouched
            torch.manual_seed(cfg.seed)
            self.model = WorldModel(cfg, obs_dims, action_dim).to(self.device)
        self.target_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.actor_model = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.entropy_generator = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.step = 0  # updates attempted (applied + skipped)
        self.skipped_steps = 0
        self.autocast_dtype = torch.bfloat16 if (self.device.type == "cuda" and cfg.precision == "bf16") else None
        # dynamic=False: batch and unroll shapes are fixed for a run, so one specialised graph serves it.
        # fullgraph=True: a graph break (a new untraceable call) fails loudly instead of silently running
        # pieces of the loss eagerly.
        self._loss_fn = torch.compile(self._loss, dynamic=False, fullgraph=True) if cfg.compile else self._loss
        if cfg.compile:
            # The supports look their array namespace up in a cache that is filled on first use; dynamo cannot
            # trace the filling (it builds a SimpleNamespace), so fill it before the first compiled call.
            namespace(torch.zeros(1, device=self.device))
            log.info("compile: the first update compiles the loss (about a minute on a CPU); later ones reuse it")

    # --- the step ---
    def update(self, data: dict[str, torch.Tensor], targets: Targets) -> dict[str, float | np.ndarray]:
        """One gradient step. Returns named losses and stats, and "priorities" [B] (None if skipped)."""
        cfg = self.cfg
        self.model.train()
        self.model.update_obs_stats(data["obs"][:, 0], data["task"])
        lr = learning_rate(cfg, self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        obs = data["obs"]
        entropy_noise = torch.randn((cfg.unroll_steps + 1, cfg.entropy_samples, obs.shape[0], self.model.action_dim),
                                    generator=self.entropy_generator, device=obs.device, dtype=torch.float32)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            total, terms, priorities = self._loss_fn(data, targets, entropy_noise)
        loss = (total * data["weights"]).mean() / cfg.unroll_steps

        self.optimizer.zero_grad(set_to_none=True)
        stats: dict[str, float | np.ndarray | None] = {"lr": lr}
        skipped = not torch.isfinite(loss)
        grad_norm = torch.tensor(float("nan"))
        if not skipped:
            loss.backward()
            stats.update(diagnostics.gradient_norms(self.model))  # per part, before the global clip
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip_norm)
            skipped = not torch.isfinite(grad_norm)
        if skipped:
            self.optimizer.zero_grad(set_to_none=True)
            stats.update(diagnostics.gradient_norms(self.model))  # zeros: the step applied no gradient
            self.skipped_steps += 1
            log.warning("step %d: non-finite loss or gradient (loss %s, grad norm %s); step skipped (%d so far)",
                        self.step, float(loss.detach()), float(grad_norm), self.skipped_steps)
        else:
            self.optimizer.step()
        self.step += 1
        if self.step % cfg.target_update_interval == 0:
            ema_update(self.target_model, self.model, cfg.target_ema_tau)
        if self.step % cfg.actor_update_interval == 0:
            ema_update(self.actor_model, self.model, cfg.target_ema_tau)

        stats.update({name: float(value) for name, value in terms.items()})
        stats.update({"loss/total": float(loss.detach()), "grad_norm": float(grad_norm), "skipped": float(skipped),
                      "skipped_total": float(self.skipped_steps),
                      "target/value_mean": float(_masked_mean(targets.value, targets.value_mask)),
                      "target/search_value_mean": float(_masked_mean(targets.search_value, targets.policy_mask))})
        stats["priorities"] = None if skipped else priorities.detach().float().cpu().numpy()
        return stats

    def _loss(self, data, targets: Targets, entropy_noise: torch.Tensor):
        """Per-sample weighted loss [B], masked means of each term, and new priorities [B].
        entropy_noise: [U + 1, S, B, A] standard normals for the entropy estimate of each unroll step."""
        cfg, model = self.cfg, self.model
        obs, actions, task = data["obs"], data["actions"], data["task"]
        unroll = cfg.unroll_steps
        batch = obs.shape[0]
        with torch.no_grad():  # consistency targets: the online model's projections of real observations
            next_obs = obs[:, 1: unroll + 1].reshape(batch * unroll, -1)
            next_task = task[:, None].expand(batch, unroll).reshape(-1)
            projected = model.project(model.encode(next_obs, next_task)).reshape(batch, unroll, -1)

        total = torch.zeros(batch, device=obs.device)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, torch.Tensor] = {}

        def add(term: torch.Tensor, name: str, weight: float, mask: torch.Tensor) -> torch.Tensor:
            sums[name] = sums.get(name, 0.0) + (term.detach().float() * mask).sum()
            counts[name] = counts.get(name, 0.0) + mask.sum()
            return weight * term.float() * mask

        latent = model.encode(obs[:, 0], task)
        previous = None  # (value logits, reward logits) of the previous step, for path consistency
        priorities = None
        for k in range(unroll + 1):
            value_logits, mean, std = model.value_and_policy(latent, task)
            term, name = losses.value_loss(value_logits, targets.value[:, k], model.value_support)
            total = total + add(term, name, cfg.value_weight, targets.value_mask[:, k])
            if cfg.policy_target == "chosen":
                term, name = losses.policy_loss(mean.float(), std.float(), targets.policy_action[:, k])
            else:
                term, name = losses.policy_loss(mean.float(), std.float(), targets.candidate_actions[:, k],
                                                targets.improved_policy[:, k])
            total = total + add(term, name, cfg.policy_weight, targets.policy_mask[:, k])
            term, name = losses.entropy_loss_from_noise(mean.float(), std.float(), entropy_noise[k])
            total = total + add(term, name, cfg.entropy_weight, targets.policy_mask[:, k])
            if k == 0:
                with torch.no_grad():
                    predicted = model.value_support.decode(value_logits.float()).mean(0)
                    priorities = (predicted - targets.value[:, 0]).abs() + cfg.priority_eps
            if k >= 1:
                prev_value_logits, reward_logits = previous
                term, name = losses.reward_loss(reward_logits, targets.reward[:, k - 1], model.reward_support)
                total = total + add(term, name, cfg.reward_weight, targets.reward_mask[:, k - 1])
                term, name = losses.consistency_loss(model.predict(model.project(latent)), projected[:, k - 1])
                total = total + add(term, name, cfg.consistency_weight, targets.value_mask[:, k])
                if cfg.path_consistency_weight > 0:
                    term, name = losses.path_consistency_loss(
                        prev_value_logits, reward_logits, value_logits, targets.path_discount[:, k - 1],
                        model.reward_support, model.value_support)
                    total = total + add(term, name, cfg.path_consistency_weight, targets.reward_mask[:, k - 1])
            if k < unroll:
                next_latent, reward_logits = model.next(latent, actions[:, k], task)
                previous = (value_logits, reward_logits)
                latent = scale_gradient(next_latent, cfg.latent_grad_scale)
        terms = {name: sums[name] / counts[name].clamp(min=1.0) for name in sums}
        return total, terms, priorities

    # --- persistence ---
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(), "target_model": self.target_model.state_dict(),
            "actor_model": self.actor_model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "entropy_generator": self.entropy_generator.get_state(), "step": self.step,
            "skipped_steps": self.skipped_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.target_model.load_state_dict(state["target_model"])
        self.actor_model.load_state_dict(state["actor_model"])
        self.optimizer.load_state_dict(state["optimizer"])
        # Generator states are CPU byte tensors whatever the device (torch.load may have mapped them).
        self.entropy_generator.set_state(state["entropy_generator"].cpu())
        self.step = int(state["step"])
        self.skipped_steps = int(state["skipped_steps"])


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)
