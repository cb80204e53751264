"""The one place where the torch WorldModel meets the framework-free search.

The collector (acting), reanalysis (targets) and evaluation all call `search_batch`, so the way a model
is bound to `gumbel_search` exists once.

Tasks differ between the roots of one batch (a collector steps every task at once, a replay batch mixes
tasks), but `recurrent_fn(latent [M, L], action [M, A])` carries no task. The task index therefore rides
in the latent as one extra float column: the search treats the latent as opaque ([B, L+1] here) and
copies it along the tree, so every row carries its own task, whatever order the search batches rows in.
Task indices are small integers, exact in float32.
"""

from __future__ import annotations

import torch

from ezm_training.config import EZMConfig
from ezm_training.networks import InitialInference, WorldModel
from ezm_training.search import RecurrentOutput, RootOutput, SearchOutput, fold_in, gumbel_search, root_keys


def search_keys(seed: int, num_roots: int, counter: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """[B] int64 search keys for one call: root b's key depends on (seed, b, counter) only.

    `counter` is the env step (collector) or the training step (reanalysis), so a resumed run draws the
    same search noise as an uninterrupted one without saving any generator state.
    """
    like = torch.zeros(1, device=device)
    return fold_in(root_keys(seed, num_roots, like=like), counter)


@torch.no_grad()
def search_batch(model: WorldModel, obs: torch.Tensor, task: torch.Tensor, keys: torch.Tensor, cfg: EZMConfig,
                 *, widen: bool = True) -> SearchOutput:
    """Run the sampled Gumbel search from observations obs [B, D] of tasks task [B] (config indices).

    widen: True for acting and reanalysis (K − P candidates with std × 3); False at evaluation unless
    cfg.widen_at_eval. The model must be in eval mode or row-independent (it is: LayerNorm only).
    """
    return search_from_root(model, model.initial_inference(obs.float(), task), task, keys, cfg, widen=widen)


@torch.no_grad()
def search_from_root(model: WorldModel, initial: InitialInference, task: torch.Tensor, keys: torch.Tensor,
                     cfg: EZMConfig, *, widen: bool = True, reanalysis: bool = False) -> SearchOutput:
    """`search_batch` from an initial inference the caller already has (and keeps, e.g. for its policy std).

    reanalysis: search with cfg.reanalyze_simulations (the target search's own budget).
    """
    task_column = task.to(initial.latent.dtype).unsqueeze(-1)

    def recurrent_fn(latent: torch.Tensor, action: torch.Tensor) -> RecurrentOutput:
        row_task = latent[:, -1].round().long()
        out = model.recurrent_inference(latent[:, :-1], action, row_task)
        return RecurrentOutput(torch.cat([out.latent, latent[:, -1:]], dim=-1), out.reward, out.value,
                               out.policy_mean, out.policy_std)

    root = RootOutput(torch.cat([initial.latent, task_column], dim=-1), initial.value, initial.policy_mean,
                      initial.policy_std)
    kwargs = cfg.reanalyze_search_kwargs if reanalysis else cfg.search_kwargs
    return gumbel_search(root, recurrent_fn, keys, widen=widen, **kwargs)
