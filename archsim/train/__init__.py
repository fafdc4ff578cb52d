"""Training over the workload IR: parameters, gradients (reverse mode), hardware-aware products,
optimisers and the training loop (design.md §12).

`params` and `grad` are the base: `value_and_grad(workload, params, x, target)` gives the loss
and the gradient of every parameter, through an exact or an analog product.
"""

from archsim.train.grad import AnalogProduct, ExactProduct, value_and_grad
from archsim.train.params import Params, params_of, with_params

__all__ = ["AnalogProduct", "ExactProduct", "Params", "params_of", "value_and_grad", "with_params"]
