"""Serving a saved multi-task model: ONNX export and the ONNX Runtime backend (``onnx_backend``), the dynamic
batcher (``batcher``), the HTTP application (``app``) and its command (``server``).

Importing this package imports nothing heavy; FastAPI and ONNX Runtime load with the modules that need them.
"""
