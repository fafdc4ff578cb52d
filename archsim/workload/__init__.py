"""DNN workloads: the graph IR, importers (ONNX, TOML layer lists), the zoo and data sets."""
