"""Numba kernels of the functional crossbar model.

Pure functions: contiguous arrays and scalars in, arrays out, no dataclasses, no module state.
The Python wrappers in `archsim.crossbar` check shapes and dtypes and call these. All kernels are
serial: they sit between BLAS calls, and a second thread pool beside OpenBLAS's thrashes on small
machines (measured: 10x the matmul time with `parallel=True` on 2 cores, 1.2-1.6x serial).
"""
