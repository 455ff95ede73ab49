"""ONNX export: fitted detectors and autoencoders as self-contained graphs (see docs/deploy.md)."""
