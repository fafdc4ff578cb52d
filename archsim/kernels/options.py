"""Compilation options shared by every kernel.

fastmath without `nnan`/`ninf`, so a NaN or Inf that enters a kernel stays visible in its output.
"""

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}
JIT_OPTIONS = {"cache": True, "nogil": True, "fastmath": FASTMATH}
