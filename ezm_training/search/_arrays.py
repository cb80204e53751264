"""Small array helpers shared by the search modules (array API via `array_api_compat`).

Shape legend used across `ezm_training.search`: B roots, W walkers per root in one phase step, K root
candidates, C child slots of a node, A action dims, L latent.

Beyond the array API standard we rely on one thing every backend we run on (numpy, torch, cupy) has:
integer-array indexing for reading and writing (`x[b, n] = v` with broadcast index arrays).
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace, device

Array = Any  # numpy.ndarray or torch.Tensor; the search never names the framework.


def batch_index(x: Array, num_dims: int) -> Array:
    """`arange(B)` shaped [B, 1, ..., 1] (num_dims axes), to index per-root rows of a [B, ...] array."""
    xp = array_namespace(x)
    idx = xp.arange(x.shape[0], dtype=xp.int64, device=device(x))
    return xp.reshape(idx, (x.shape[0],) + (1,) * (num_dims - 1))


def softmax(logits: Array) -> Array:
    """Softmax over the last axis, shifted by the max for stability."""
    xp = array_namespace(logits)
    z = xp.exp(logits - xp.max(logits, axis=-1, keepdims=True))
    return z / xp.sum(z, axis=-1, keepdims=True)
