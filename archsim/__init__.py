"""archsim: architecture simulator for analog in-memory-computing DNN accelerators.

The pipeline is plain calls on frozen objects: `archsim.config.load_chip` reads a chip preset,
`archsim.crossbar.program_matrix` / `read_state` put a weight matrix on crossbars and age it,
and `archsim.mvm.analog_mvm` runs batches of noisy MVMs through DAC, array and ADC.
"""

__version__ = "0.1.0"
