"""Export nnlite models to ONNX by tracing the graph of Functions one forward pass records.

``nl.onnx.export(model, example_input, "model.onnx")`` writes a graph that
``onnxruntime`` (or any ONNX runtime) runs with the model's outputs; the
``onnx`` package is needed only here (``pip install "nnlite[onnx]"``).
"""
from .exporter import SUPPORTED_OPERATIONS, ExportError, export
from .trace import Trace, trace

__all__ = ["export", "SUPPORTED_OPERATIONS", "ExportError", "trace", "Trace"]
