"""h, h⁻¹ and the two-hot support, on numpy arrays and torch tensors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from ezm_training.support import SupportSpec
from ezm_training.value_transform import h, h_inv

EZM_SUPPORT = SupportSpec(-299.0, 299.0, 51)  # [EZM] reward and value support


def test_h_inv_inverts_h_float64():
    x = np.linspace(-1e4, 1e4, 100_001)
    np.testing.assert_allclose(h_inv(h(x)), x, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(h(h_inv(x / 100)), x / 100, rtol=1e-12, atol=1e-12)


def test_h_inv_inverts_h_float32_torch():
    x = torch.linspace(-1000.0, 1000.0, 20_001)
    # float32 keeps ~7 digits; the stable root form of h⁻¹ keeps the round trip at that level.
    torch.testing.assert_close(h_inv(h(x)), x, rtol=2e-6, atol=1e-5)


def test_h_is_odd_and_increasing():
    x = np.linspace(-50, 50, 1001)
    np.testing.assert_allclose(h(-x), -h(x))
    assert np.all(np.diff(h(x)) > 0)
    assert h(np.float64(0.0)) == 0.0


def test_support_atoms_evenly_spaced_in_h_space():
    atoms = EZM_SUPPORT.atoms(np.zeros(1))
    assert atoms.shape == (51,)
    np.testing.assert_allclose(atoms[[0, -1]], h(np.array([-299.0, 299.0])))
    np.testing.assert_allclose(np.diff(atoms), EZM_SUPPORT.step)
    assert EZM_SUPPORT.step == pytest.approx(0.6648, abs=1e-4)  # ≈0.66 per bin for ±299 / 51 bins


def test_two_hot_is_a_distribution_on_two_neighbouring_atoms():
    x = np.array([-400.0, -299.0, -3.3, 0.0, 0.41, 1.0, 17.0, 299.0, 400.0])
    probs = EZM_SUPPORT.two_hot(x)
    assert probs.shape == (9, 51)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)
    for row in probs:
        nonzero = np.flatnonzero(row)
        assert len(nonzero) <= 2 and (len(nonzero) < 2 or nonzero[1] == nonzero[0] + 1)
    # The expectation over the atoms is h(x), with x clipped to the range.
    np.testing.assert_allclose(probs @ EZM_SUPPORT.atoms(x), h(np.clip(x, -299, 299)), atol=1e-12)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_decode_two_hot_round_trip_clips_beyond_the_range(backend):
    x = np.concatenate([np.linspace(-299, 299, 1001), [-1e4, -300.0, 300.0, 1e4]])
    if backend == "numpy":
        logits = np.log(np.maximum(EZM_SUPPORT.two_hot(x), 1e-300))
        decoded, rtol = EZM_SUPPORT.decode(logits), 1e-9
    else:
        logits = torch.log(EZM_SUPPORT.two_hot(torch.tensor(x, dtype=torch.float32)).clamp(min=1e-30))
        decoded, rtol = EZM_SUPPORT.decode(logits).numpy(), 1e-4
    np.testing.assert_allclose(decoded, np.clip(x, -299, 299), rtol=rtol, atol=1e-3)


def test_decode_is_softmax_expectation_then_h_inv():
    logits = np.array([[0.3, -1.0, 2.0]])
    spec = SupportSpec(-5.0, 5.0, 3)
    probs = np.exp(logits) / np.exp(logits).sum()
    expected = h_inv((probs * h(np.array([-5.0, 0.0, 5.0]))).sum())
    np.testing.assert_allclose(spec.decode(logits), [expected], rtol=1e-12)


def test_numpy_and_torch_agree_and_torch_keeps_gradients():
    logits = np.random.default_rng(0).normal(size=(4, 51)) * 3
    torch_logits = torch.tensor(logits, requires_grad=True)
    decoded = EZM_SUPPORT.decode(torch_logits)
    np.testing.assert_allclose(decoded.detach().numpy(), EZM_SUPPORT.decode(logits), rtol=1e-12)
    decoded.sum().backward()
    assert torch.all(torch.isfinite(torch_logits.grad)) and torch_logits.grad.abs().sum() > 0


def test_half_precision_is_computed_in_float32():
    logits = torch.randn(3, 51).to(torch.bfloat16)
    assert EZM_SUPPORT.decode(logits).dtype == torch.float32
    assert EZM_SUPPORT.two_hot(torch.tensor([1.0, 2.0], dtype=torch.float16)).dtype == torch.float32


def test_support_rejects_bad_specs():
    with pytest.raises(ValueError):
        SupportSpec(1.0, -1.0, 51)
    with pytest.raises(ValueError):
        SupportSpec(-1.0, 1.0, 1)


def test_support_and_config_import_without_torch():
    code = ("import sys; import ezm_training.support, ezm_training.value_transform, ezm_training.config; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
