"""Counter-based random numbers for the search: the same draws on numpy, torch CPU and torch CUDA.

Why not a numpy `Generator` or a `torch.Generator`:
- numpy and torch generators seeded alike give different streams, so the two backends could never agree;
- a stateful generator hands out numbers in call order, so root b's draws would depend on how many roots
  share the batch (draws shaped [B, ...] from one generator differ from [1, ...]);
- drawing on the host and copying to the GPU costs a transfer per call.

Instead each random number is a hash of (root key, stream, row, index), computed with integer array ops on
whatever device the search runs (a counter-based RNG in the spirit of Philox / JAX keys, with a cheaper
hash). Root b's numbers depend only on `keys[b]`, so a batch of roots draws exactly what each root would
draw alone, and numpy and torch produce the same integers (floats agree to rounding of log/cos).

Keys are int64 arrays [B] with values in [0, 2**32). `root_keys(seed, B)` derives them from an int;
`fold_in` derives fresh keys (e.g. per env step) from old ones. The hash is Chris Wellons' `lowbias32`
(https://nullprogram.com/blog/2018/07/31/), evaluated in int64 (see `_mul32` for the products).
Quality is ample for exploration noise; this is not a cryptographic or a statistics-grade generator.
"""

from __future__ import annotations

import math
import operator

from ezm_training.search._arrays import Array, device_of, namespace

_MASK32 = 0xFFFFFFFF
_GOLDEN32 = 0x9E3779B9  # 2**32 / golden ratio: spreads consecutive stream ids and root indices

# Streams: one per purpose, so that adding a draw of one kind never shifts the numbers of another.
# Draws come in rows: a row id names `count` numbers (an action's A dims, or the K Gumbel variables).
STREAM_CANDIDATES = 1  # root candidate actions: row k, A numbers
STREAM_GUMBEL = 2  # root Gumbel noise: row 0, K numbers
STREAM_CHILDREN = 3  # interior child actions: row node * D + slot, A numbers


def _mul32(x: Array | int, c: int) -> Array | int:
    """(x * c) mod 2**32 for x, c in [0, 2**32).

    The int64 product of an array can exceed 2**63 and wrap (numpy and torch arrays wrap integer
    arithmetic, on every device), but wrapping is arithmetic mod 2**64, which keeps the low 32 bits exact;
    Python ints never wrap. numpy integer *scalars* wrap too but warn, so host values enter as Python ints
    (`root_keys`, `fold_in`). One multiply and one mask instead of splitting c into 16-bit halves (five ops):
    the hash runs a few hundred times per planner step."""
    return (x * c) & _MASK32


def _mix32(x: Array | int) -> Array | int:
    """lowbias32 integer hash of x in [0, 2**32): an int64 array, or a Python int for host constants."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def root_keys(seed: int, num_roots: int, *, like: Array) -> Array:
    """[B] int64 keys for B roots from one int seed, on the device and framework of `like`.

    Root b gets mix(mix(seed) + b·golden). To reproduce root b alone, pass `keys[b:b+1]`, not a new seed.
    """
    xp = namespace(like)
    seed = operator.index(seed)  # a Python int: a numpy integer scalar would warn where the hash wraps
    seed_hash = _mix32(_mix32((seed >> 32) & _MASK32) ^ (seed & _MASK32))  # all 64 bits of the seed count
    index = xp.arange(num_roots, dtype=xp.int64, device=device_of(like))
    return _mix32((seed_hash + _mul32(index, _GOLDEN32)) & _MASK32)


def fold_in(keys: Array, data: int) -> Array:
    """New keys [B] derived from `keys` [B] and an int (e.g. the env step), independent of the old stream."""
    data = operator.index(data)  # a Python int, as in root_keys
    return _mix32(keys ^ ((_mix32(data & _MASK32) + _GOLDEN32) & _MASK32))


def _bits(keys: Array, stream: int, rows: Array, count: int) -> Array:
    """32 random bits (int64) shaped [B, ..., count] from keys [B] and row ids [B or 1, ...].

    Each row is hashed once with the stream's key; its `count` numbers are the hashes of a Weyl
    sequence from there (row_key + j·golden), as in splitmix. Because the row id is hashed before it
    meets the key, two roots whose keys differ by d never see shifted copies of one another's stream.
    """
    xp = namespace(keys)
    stream_keys = _mix32(keys ^ _mix32((stream * _GOLDEN32) & _MASK32))
    stream_keys = xp.reshape(stream_keys, (keys.shape[0],) + (1,) * (rows.ndim - 1))
    row_keys = _mix32((stream_keys + _mix32(rows & _MASK32)) & _MASK32)
    steps = _mul32(xp.arange(count, dtype=xp.int64, device=device_of(keys)), _GOLDEN32)
    return _mix32((row_keys[..., None] + steps) & _MASK32)


def uniform(keys: Array, stream: int, rows: Array, count: int, *, dtype) -> Array:
    """[B, ..., count] U(0, 1) on the open interval: 24 bits, exact in float32, never 0 or 1."""
    xp = namespace(keys)
    bits = _bits(keys, stream, rows, count) >> 8
    return (xp.astype(bits, dtype) + 0.5) * (1.0 / (1 << 24))


def normal(keys: Array, stream: int, rows: Array, count: int, *, dtype) -> Array:
    """[B, ..., count] standard normals by Box-Muller, both the cosine and the sine half of each pair."""
    xp = namespace(keys)
    half = (count + 1) // 2
    u = uniform(keys, stream, rows, 2 * half, dtype=dtype)
    radius = xp.sqrt(-2.0 * xp.log(u[..., :half]))
    angle = (2.0 * math.pi) * u[..., half:]
    return xp.concat([radius * xp.cos(angle), radius * xp.sin(angle)], axis=-1)[..., :count]


def gumbel(keys: Array, stream: int, rows: Array, count: int, *, dtype) -> Array:
    """[B, ..., count] standard Gumbel: -log(-log(u))."""
    xp = namespace(keys)
    return -xp.log(-xp.log(uniform(keys, stream, rows, count, dtype=dtype)))
