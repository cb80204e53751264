"""Categorical supports for rewards and values: scalar -> two-hot target, logits -> scalar.

As EZ V2 and EZ-M do for continuous control (ez/utils/format.py `DiscreteSupport`, the
`continuous_action` branch), the bins are evenly spaced in h-space: atom i is
h(min) + i·(h(max) − h(min))/(bins − 1), with h from `value_transform`. The Atari branch (bins evenly
spaced in x/scale) is not used. For ±299 and 51 bins one bin is ≈ 0.67 wide in h-space.

Two-hot: a scalar x is clipped to [min, max] and split between the two atoms around h(x), so the
expectation over the atoms is exactly h(clip(x)). Values beyond ±range therefore saturate:
decode(two_hot(x)) == clip(x, min, max). (EZ clips to h(max) − 1e-5 bins; clipping to h(max) itself is
the same up to that 1e-5.)

Decode: softmax over the logits, expectation over the atoms, then h⁻¹.

Torch-free: every function works on numpy arrays and torch tensors (array_api_compat), with autograd
when given tensors. Half-precision inputs are computed in float32: h⁻¹ divides by 2ε = 0.002 and would
lose most digits in float16/bfloat16.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ezm_training.search._arrays import device_of, namespace
from ezm_training.value_transform import h, h_inv


def _as_float(x, xp):
    """x as float32 unless it already is float32 or float64."""
    if x.dtype in (xp.float32, xp.float64):
        return x
    return xp.astype(x, xp.float32)


@dataclass(frozen=True)
class SupportSpec:
    """A scalar range [min, max] covered by `bins` atoms evenly spaced in h-space."""

    min: float
    max: float
    bins: int

    def __post_init__(self):
        if not self.min < self.max:
            raise ValueError(f"support needs min < max, got [{self.min}, {self.max}]")
        if self.bins < 2:
            raise ValueError(f"support needs at least 2 bins, got {self.bins}")
        # Plain floats computed once: the learner's compiled loss reads them, and tracing numpy there would
        # break its graph (learner.py, `compile`).
        object.__setattr__(self, "_h_bounds", (float(h(np.float64(self.min))), float(h(np.float64(self.max)))))

    @property
    def h_min(self) -> float:
        return self._h_bounds[0]

    @property
    def h_max(self) -> float:
        return self._h_bounds[1]

    @property
    def step(self) -> float:
        """Width of one bin in h-space."""
        return (self.h_max - self.h_min) / (self.bins - 1)

    def atoms(self, like):
        """The [bins] atom positions in h-space, with the namespace, dtype and device of `like`."""
        xp = namespace(like)
        index = xp.arange(self.bins, dtype=like.dtype, device=device_of(like))
        return self.h_min + self.step * index

    def two_hot(self, x):
        """x [...] scalars -> [..., bins] probabilities, nonzero on the (at most) two atoms around h(x)."""
        xp = namespace(x)
        x = _as_float(x, xp)
        position = (xp.clip(h(x), self.h_min, self.h_max) - self.h_min) / self.step  # in bins, [0, bins-1]
        index = xp.arange(self.bins, dtype=x.dtype, device=device_of(x))
        # A tent of width one bin around `position`: weight 1 - distance on the two nearest atoms, 0 elsewhere.
        distance = xp.abs(xp.expand_dims(position, axis=-1) - index)
        return xp.maximum(1.0 - distance, xp.zeros_like(distance))

    def decode(self, logits):
        """[..., bins] logits -> [...] scalars: h⁻¹ of the softmax expectation over the atoms."""
        xp = namespace(logits)
        logits = _as_float(logits, xp)
        shifted = logits - xp.max(logits, axis=-1, keepdims=True)
        weights = xp.exp(shifted)
        probs = weights / xp.sum(weights, axis=-1, keepdims=True)
        return h_inv(xp.sum(probs * self.atoms(logits), axis=-1))

