"""The int8 ONNX Runtime graph: smoothing and dynamic quantisation applied to the fused fp32 graph.

Quantising the fused graph keeps what makes the exact graph fast (one Attention kernel per layer, skip layer norms,
bias-GELU) and turns its Attention and MatMul nodes into ONNX Runtime's int8 ones (``QAttention``,
``DynamicQuantizeMatMul``). Before that, each quantised node's input is divided per channel by a SmoothQuant factor
that is multiplied into the matching weight rows (an explicit ``Mul``: in a post-layer-norm encoder the layer
norm's output also feeds the residual, so the factor cannot be folded into it). The factors come from the fp32
graph's own activations on the calibration texts, so no torch weights are needed. Down-projections (weights that
narrow, K > N) stay fp32: they are the most sensitive to rounding (docs/performance.md: the frontier of every
configuration tried).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import torch

SMOOTHED_OPS = ("Attention", "MatMul")


def quantised_nodes(graph) -> list:
    """The nodes that become int8: every Attention, and every MatMul with a constant 2-D weight that does not narrow
    (K <= N: attention projections and FFN up-projections)."""
    shapes = {tensor.name: list(tensor.dims) for tensor in graph.initializer}
    chosen = []
    for node in graph.node:
        weight = shapes.get(node.input[1], []) if len(node.input) > 1 else []
        widening = len(weight) == 2 and weight[0] <= weight[1]
        if (node.op_type == "Attention" and len(weight) == 2) or (node.op_type == "MatMul" and widening):
            chosen.append(node)
    return chosen


def input_peaks(source: Path, batches: Iterable[Mapping[str, torch.Tensor]], tensors: list[str]) -> dict:
    """Per-channel peak |value| of the named tensors while the fp32 graph runs ``batches`` (padded as for encode)."""
    import onnx
    import onnxruntime

    model = onnx.load(str(source))
    outputs = {output.name for output in model.graph.output}
    for name in tensors:
        if name not in outputs:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    probed = source.with_name("calibration.onnx")  # beside the source: large models keep their weights external
    onnx.save_model(
        model, str(probed), save_as_external_data=True, location=probed.name + ".data", size_threshold=1024
    )
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(probed), options, providers=["CPUExecutionProvider"])
    wanted = [item.name for item in session.get_inputs()]
    peaks: dict[str, np.ndarray] = {}
    for batch in batches:
        feed = {name: batch[name].cpu().numpy().astype(np.int64) for name in wanted}
        for name, value in zip(tensors, session.run(tensors, feed), strict=True):
            peak = np.abs(value.reshape(-1, value.shape[-1])).max(axis=0)
            peaks[name] = peak if name not in peaks else np.maximum(peaks[name], peak)
    return peaks


def smooth_and_quantise(
    source: Path, target: Path, batches: list[Mapping[str, torch.Tensor]], smoothing_factors
) -> None:
    """Write ``target``: ``source`` (a fused fp32 graph) with smoothing before every quantised node, then ONNX
    Runtime's dynamic quantisation of those nodes (uint8 per-channel weights, 8-bit per-tensor activations).

    ``smoothing_factors(peaks, weight)`` is the SmoothQuant rule on torch tensors, weight in Linear's (out, in)
    layout.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(source))
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))  # the fused ops' domain
    chosen = quantised_nodes(model.graph)
    peaks = input_peaks(source, batches, sorted({node.input[0] for node in chosen}))
    initializers = {tensor.name: tensor for tensor in model.graph.initializer}
    smoothing_nodes: dict[str, onnx.NodeProto] = {}
    for node in chosen:
        weight = numpy_helper.to_array(initializers[node.input[1]]).astype(np.float32)  # (K in, N out)
        factors = smoothing_factors(torch.from_numpy(peaks[node.input[0]]), torch.from_numpy(weight.T)).numpy()
        initializers[node.input[1]].CopyFrom(numpy_helper.from_array(weight * factors[:, None], node.input[1]))
        inverse = f"{node.name}/inverse_smoothing"
        model.graph.initializer.append(numpy_helper.from_array((1.0 / factors).astype(np.float32), inverse))
        smoothed = f"{node.name}/smoothed_input"
        smoothing_nodes[node.name] = helper.make_node("Mul", [node.input[0], inverse], [smoothed], name=inverse)
        node.input[0] = smoothed
    ordered = []
    for node in model.graph.node:
        if node.name in smoothing_nodes:
            ordered.append(smoothing_nodes[node.name])
        ordered.append(node)
    del model.graph.node[:]
    model.graph.node.extend(ordered)
    smoothed_path = target.with_name("smoothed.onnx")
    onnx.save_model(
        model, str(smoothed_path), save_as_external_data=True, location="smoothed.onnx.data", size_threshold=1024
    )
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs a pre-processing hint at WARNING on the root logger
    try:
        quantize_dynamic(
            smoothed_path,
            target,
            per_channel=True,
            reduce_range=False,
            weight_type=QuantType.QUInt8,  # u8 weights: no u8·s8 saturation on AVX2 CPUs without VNNI
            op_types_to_quantize=list(SMOOTHED_OPS),
            nodes_to_quantize=[node.name for node in chosen],
            use_external_data_format=True,
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    finally:
        root.setLevel(level)
