"""The invertible value transform h of MuZero and EfficientZero, and its closed-form inverse.

h(x) = sign(x)·(√(|x|+1) − 1) + ε·x  squashes large returns so that one categorical support covers
rewards and values of very different scales (Pohlen et al. 2018, "Observe and Look Further", Prop. A.2;
MuZero, Appendix F; EfficientZero V2 ez/utils/format.py, ε = 0.001).

Torch-free on purpose: the functions take numpy arrays or torch tensors alike (array_api_compat), so the
onnxruntime planner and the torch learner share this one implementation.
"""

from __future__ import annotations

from ezm_training.search._arrays import namespace

EPSILON = 1e-3  # ε of h: MuZero Appendix F and EZ V2 / EZ-M format.py `DiscreteSupport`.


def h(x):
    """h(x) = sign(x)(√(|x|+1) − 1) + εx, elementwise. Odd and strictly increasing."""
    xp = namespace(x)
    return xp.sign(x) * (xp.sqrt(xp.abs(x) + 1.0) - 1.0) + EPSILON * x


def h_inv(y):
    """The exact inverse of `h` (Pohlen et al. 2018, Prop. A.2), elementwise.

    Solving |y| = √(|x|+1) − 1 + ε|x| for r = √(|x|+1) gives εr² + r − (|y| + 1 + ε) = 0, whose positive
    root is r = 2c / (1 + √(1 + 4εc)) with c = |y| + 1 + ε. This form of the root avoids the
    (√(1 + 4εc) − 1)/(2ε) of the textbook formula, which cancels digits and divides the rounding error by
    2ε = 0.002 (≈ 1e-4 relative error in float32 at |x| = 299); then |x| = r² − 1.
    """
    xp = namespace(y)
    c = xp.abs(y) + (1.0 + EPSILON)
    root = 2.0 * c / (1.0 + xp.sqrt(1.0 + 4.0 * EPSILON * c))
    return xp.sign(y) * (root * root - 1.0)
