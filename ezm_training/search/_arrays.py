"""Small array helpers shared by the search modules (array API via `array_api_compat`).

Shape legend used across `ezm_training.search`: B roots, W walkers per root in one phase step, K root
candidates, C child slots of a node, A action dims, L latent.

Beyond the array API standard we rely on two things every backend we run on (numpy, torch, cupy) has:
integer-array indexing for reading and writing (`x[b, n] = v` with broadcast index arrays), and the
`.clip(min, max)` method (see `clip`).

Why the helpers below are cached or native: the deployment planner searches ONE root per 20 ms control
step, where the arrays hold a few dozen numbers and every array op costs its Python overhead, not its
arithmetic. Profiling a 32-simulation batch-1 search on numpy (BENCHMARKS.md, "Planner latency") found
a third of the time in `array_api_compat`'s generic wrappers (`clip`, `array_namespace`) and in
re-creating `arange(B)` index arrays. The helpers keep the arithmetic identical.
"""

from __future__ import annotations

import functools
import types
from typing import Any

from array_api_compat import array_namespace, is_numpy_namespace, is_torch_namespace

Array = Any  # numpy.ndarray or torch.Tensor; the search never names the framework.

_NAMESPACES: dict[type, Any] = {}


def namespace(x: Array) -> Any:
    """`array_namespace(x)`, cached by the array's type (the namespace depends on nothing else).

    For numpy, hot functions are swapped for numpy's own or its ufuncs' (`_numpy_with_native_functions`);
    for torch, its wrapped hot functions for torch's own (`_torch_with_native_functions`).
    """
    xp = _NAMESPACES.get(type(x))
    if xp is None:
        xp = array_namespace(x)
        if is_numpy_namespace(xp):
            xp = _numpy_with_native_functions(xp)
        elif is_torch_namespace(xp):
            xp = _torch_with_native_functions(xp)
        _NAMESPACES[type(x)] = xp
    return xp


def _numpy_with_native_functions(xp: types.ModuleType) -> types.SimpleNamespace:
    """`array_api_compat.numpy` with `sum`, `max` and `min` calling `add/maximum/minimum.reduce` directly,
    `astype` calling the ndarray method, and on numpy >= 2 (whose constructors take `device`) numpy's own
    `zeros`, `zeros_like`, `full`, `arange`, `asarray` and `take_along_axis`.

    np.sum and np.max are those same ufunc reductions behind argument dispatch that costs 1.5–2 µs a
    call on small arrays, the wrapped astype checks devices first (1 µs), and each compat wrapper of the
    others adds about 1 µs; a batch-1 search makes about 60 calls of each kind. Same results, bit for bit.
    """
    import numpy  # only reached with a numpy array in hand

    fast = types.SimpleNamespace(**vars(xp))
    if int(numpy.__version__.split(".")[0]) >= 2:
        for name in ("zeros", "zeros_like", "full", "arange", "asarray", "take_along_axis"):
            setattr(fast, name, getattr(numpy, name))

    def astype(x, dtype, /, *, copy=True, device=None):
        return x.astype(dtype, copy=copy)

    def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001 (the array API's name)
        return xp.add.reduce(x, axis=axis, dtype=dtype, keepdims=keepdims)

    def max(x, /, *, axis=None, keepdims=False):  # noqa: A001
        return xp.maximum.reduce(x, axis=axis, keepdims=keepdims)

    def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
        return xp.minimum.reduce(x, axis=axis, keepdims=keepdims)

    fast.sum, fast.max, fast.min, fast.astype = sum, max, min, astype
    return fast


def _torch_with_native_functions(xp: types.ModuleType) -> types.SimpleNamespace:
    """`array_api_compat.torch` with the functions the learner's compiled loss reaches (the supports and the
    value transform) calling torch directly.

    The compat wrappers inspect dtypes in Python in ways torch.compile cannot trace: each call was a graph
    break, 44 in one loss (ezm_training/learner.py, `compile`). The replacements are the same torch
    operations for the forms this package uses (an int or tuple axis or None, scalar clip bounds, an int
    expand_dims axis, astype without a device); any other form goes to the compat function, so the
    namespace keeps the array API's meaning whatever the call (tests/ezm_training/test_search.py).
    """
    import torch  # only reached with a torch tensor in hand: torch is already imported

    fast = types.SimpleNamespace(**vars(xp))
    scalar = (int, float, type(None))

    def astype(x, dtype, /, *, copy=True, device=None):
        return x.to(dtype, copy=copy) if device is None else xp.astype(x, dtype, copy=copy, device=device)

    def expand_dims(x, /, *, axis=0):
        return torch.unsqueeze(x, axis) if isinstance(axis, int) else xp.expand_dims(x, axis=axis)

    def reduction(native, compat):
        def reduce(x, /, *, axis=None, keepdims=False, **kwargs):
            if axis == ():  # the array API reduces over no axis; torch's dim=() means every axis
                return compat(x, axis=axis, keepdims=keepdims, **kwargs)
            return native(x, dim=() if axis is None else axis, keepdim=keepdims, **kwargs)
        return reduce

    def clip(x, /, min=None, max=None):  # noqa: A002 (the array API's names)
        if isinstance(min, scalar) and isinstance(max, scalar) and (min is not None or max is not None):
            return x.clip(min, max)
        return xp.clip(x, min, max)

    def sign(x, /):
        return torch.where(torch.isnan(x), x, torch.sign(x))  # the standard's sign(NaN) is NaN; torch's is 0

    fast.astype, fast.expand_dims, fast.clip, fast.sign = astype, expand_dims, clip, sign
    fast.sum = reduction(torch.sum, xp.sum)
    fast.max, fast.min = reduction(torch.amax, xp.max), reduction(torch.amin, xp.min)
    return fast


def device_of(x: Array) -> Any:
    """The array's device: `x.device` (torch, numpy >= 2), else "cpu" (numpy 1.x, as on Ubuntu 24.04's apt)."""
    return getattr(x, "device", "cpu")


def clip(x: Array, low: float | None = None, high: float | None = None) -> Array:
    """Elementwise clip to [low, high] with scalar bounds (None: unbounded on that side).

    numpy's and torch's own `.clip` method: `array_api_compat`'s `clip` wrapper checks broadcasting and
    dtypes on every call and costs about 8 µs on a 16-element array, against 1–2 µs here.
    """
    return x.clip(low, high)


def batch_index(x: Array, num_dims: int) -> Array:
    """`arange(B)` shaped [B, 1, ..., 1] (num_dims axes), to index per-root rows of a [B, ...] array.

    Cached per (framework, B, num_dims, device): the search asks for the same few index arrays dozens of
    times per call. Callers only read them (as indices), so sharing one array is safe.
    """
    namespace(x)  # makes sure _NAMESPACES knows this array type
    return _batch_index(type(x), x.shape[0], num_dims, device_of(x))


@functools.lru_cache(maxsize=64)
def _batch_index(array_type: type, num_roots: int, num_dims: int, dev: Any) -> Array:
    xp = _NAMESPACES[array_type]
    idx = xp.arange(num_roots, dtype=xp.int64, device=dev)
    return xp.reshape(idx, (num_roots,) + (1,) * (num_dims - 1))


def softmax(logits: Array) -> Array:
    """Softmax over the last axis, shifted by the max for stability."""
    xp = namespace(logits)
    z = xp.exp(logits - xp.max(logits, axis=-1, keepdims=True))
    return z / xp.sum(z, axis=-1, keepdims=True)
