"""One BLAS thread for every product archsim computes, so a seed gives the same bits anywhere.

OpenBLAS may split a product's inner dimension between threads, and then the summation order,
hence the last bit, depends on the thread count: with numpy 2.4.6 (OpenBLAS 0.3.31) on an AMD
EPYC, a float32 (500 x 256) @ (256 x 300) product differs in 7,087 of its 150,000 elements
between 1 and 2 threads. archsim's promise is bit-identical outputs for a seed, so its products
run on one BLAS thread; parallelism comes from running several simulations at once (sweeps).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from threadpoolctl import ThreadpoolController

F = TypeVar("F", bound=Callable)

_controller: ThreadpoolController | None = None


def one_blas_thread(func: F) -> F:
    """Decorator: run `func` with the BLAS libraries limited to one thread (nesting is cheap)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        global _controller
        if _controller is None:
            _controller = ThreadpoolController()
        with _controller.limit(limits=1, user_api="blas"):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
