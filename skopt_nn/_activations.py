"""The MLPs' hidden activations σ and their derivatives, as the training paths call
them: in place on their buffers, and differentiable for the plain forward passes."""

from __future__ import annotations

import torch

#: hidden activations: in place (the training path's buffers) and differentiable
ACTIVATIONS_INPLACE = {"identity": None, "logistic": torch.Tensor.sigmoid_,
                       "tanh": torch.Tensor.tanh_, "relu": torch.Tensor.relu_}
ACTIVATIONS = {"identity": None, "logistic": torch.sigmoid, "tanh": torch.tanh,
               "relu": torch.relu}


def _raw(op):
    """An aten overload's C++ callable without the Python ``OpOverload`` wrapper."""
    return getattr(op, "_op", op)


#: grad ⊙ σ'(z) from the activation's output a = σ(z), one op each
#: (their out= forms, called with grad_input=grad: in place)
THRESHOLD_BACKWARD = _raw(torch.ops.aten.threshold_backward.grad_input)  # grad ⊙ 1[a > 0]
DERIVATIVES = {
    "identity": None,
    "logistic": _raw(torch.ops.aten.sigmoid_backward.grad_input),  # grad ⊙ a(1 − a)
    "tanh": _raw(torch.ops.aten.tanh_backward.grad_input),  # grad ⊙ (1 − a²)
    "relu": None,  # THRESHOLD_BACKWARD(grad, a, 0, grad_input=grad), called directly
}
