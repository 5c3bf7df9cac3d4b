"""How a loaded model runs on CPU: the fused ONNX Runtime graph (``onnx``), its int8 variant (``onnx_int8``), the
bf16 / int8 torch fast modes (``precision``), and what the CPU offers (``cpu``)."""
