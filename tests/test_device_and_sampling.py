"""Device resolution, dtypes, and how mini-batches are drawn."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from skopt_nn import LinearClassifier, MLPClassifier
from skopt_nn._device import resolve_device, torch_dtype
from skopt_nn.optim import SGD


def test_auto_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_bad_or_missing_devices_are_named(monkeypatch):
    with pytest.raises(ValueError, match="device='tpu0'"):
        resolve_device("tpu0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="'cuda:1'.*CUDA is not available"):
        resolve_device("cuda:1")


def test_dtype_follows_the_input():
    cpu = torch.device("cpu")
    assert torch_dtype(np.float32, cpu) == torch.float32
    assert torch_dtype(np.float64, cpu) == torch.float64
    assert torch_dtype(np.int64, cpu) == torch.float64
    assert torch_dtype(np.float64, torch.device("mps")) == torch.float32  # MPS has no float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_predicts_like_cpu():
    X, y = make_classification(300, 6, random_state=0)
    kw = dict(hidden_layer_sizes=(8,), max_iter=20, tol=None, random_state=0, shuffle=False)
    gpu = MLPClassifier(device="cuda", **kw).fit(X, y)
    cpu = MLPClassifier(device="cpu", **kw).fit(X, y)
    np.testing.assert_allclose(gpu.coefs_[0], cpu.coefs_[0], rtol=1e-6, atol=1e-8)


def test_epochs_are_disjoint_batches_or_bootstrap_draws():
    X, y = make_classification(203, 4, random_state=0)
    est = LinearClassifier(optimizer="sgd", batch_size=50, max_iter=2, tol=None,
                           random_state=0).fit(X, y)
    assert est.history_.n_evals.iloc[1:].tolist() == [5, 5]  # ceil(203 / 50) per epoch
    assert est.t_ == 2 * 203
    boot = LinearClassifier(optimizer=SGD(sampling="with_replacement"), batch_size=50,
                            max_iter=2, tol=None, random_state=0).fit(X, y)
    assert boot.history_.n_evals.iloc[1:].tolist() == [4, 4]  # n // b draws per epoch
    assert boot.t_ == 2 * 4 * 50
    assert not np.allclose(boot.coef_, est.coef_)
    with pytest.raises(ValueError, match="sampling"):
        LinearClassifier(optimizer=SGD(sampling="stratified")).fit(X, y)


def test_cpu_training_contexts_overlapping_in_threads_restore_once():
    """Fits in joblib's threads overlap their CPU contexts: the thread count is
    restored when the last one leaves, not by the first one out."""
    from skopt_nn._device import cpu_training

    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        a, b = cpu_training(cpu, 10), cpu_training(cpu, 10)
        a.__enter__()
        b.__enter__()
        assert torch.get_num_threads() == 1
        a.__exit__(None, None, None)
        assert torch.get_num_threads() == 1  # b still trains
        b.__exit__(None, None, None)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
