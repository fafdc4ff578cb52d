"""Compilation options shared by every kernel.

fastmath without `nnan`/`ninf`, so a NaN or Inf that enters a kernel stays visible in its output.
Every kernel module imports this one first, so the on-disk caches are checked against the
kernels' sources (`archsim.kernels.cache`) before any kernel loads from them.
"""

from archsim.kernels.cache import check_kernel_caches

check_kernel_caches()

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
JIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": FASTMATH}
