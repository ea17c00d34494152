"""The per-sample losses: value_and_derivative agrees with value and with autograd."""

import pytest
import torch

from skopt_nn._losses import LOSSES, get_loss

TARGETS = {
    "real": lambda n, K, g: torch.rand(n, K, generator=g, dtype=torch.float64) * 3,
    "sign": lambda n, K, g: torch.where(torch.rand(n, K, generator=g) > 0.5, 1.0, -1.0
                                        ).double(),
    "onehot": lambda n, K, g: torch.eye(K, dtype=torch.float64)[
        torch.randint(K, (n,), generator=g)],
}


@pytest.mark.parametrize("K", [1, 3, 10])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_value_and_derivative_agree_with_value_and_autograd(name, K):
    """Each loss's fused value and ∂f/∂z (the output δ) equal its plain value and the
    autograd derivative of that value; K = 10 takes the softmax's transposed path."""
    loss = LOSSES[name]()
    if loss.target == "onehot" and K == 1:
        pytest.skip("a one-hot target needs at least two classes")
    g = torch.Generator().manual_seed(K)
    Z = torch.randn(37, K, generator=g, dtype=torch.float64, requires_grad=True)
    Y = TARGETS[loss.target](37, K, g)
    f, d = loss.value_and_derivative(Z.detach(), Y)
    plain = loss.value(Z, Y)
    torch.testing.assert_close(f, plain.detach(), rtol=1e-12, atol=1e-12)
    (auto,) = torch.autograd.grad(plain.sum(), Z)
    torch.testing.assert_close(d, auto, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name, K, expected", [
    ("logistic", 1, "logistic"), ("logistic", 3, "softmax"), ("log_loss", 4, "softmax"),
    ("hinge", 3, "hinge"), ("squared_error", 2, "squared_error"), ("poisson", 1, "poisson"),
])
def test_get_loss_takes_the_multiclass_form(name, K, expected):
    assert get_loss(name, K).name == expected
    # multilabel targets keep one binary loss per label
    assert get_loss(name, K, multilabel=True).name == ("logistic" if name in (
        "logistic", "log_loss") else expected)


def test_curvature_bounds_per_output():
    """The bound the linear models' L uses: averaged losses divide by K."""
    assert get_loss("squared_error").output_curvature(4) == 0.25
    assert get_loss("logistic").output_curvature(4) == 0.25
    assert get_loss("logistic", 3).output_curvature(3) == 0.5
