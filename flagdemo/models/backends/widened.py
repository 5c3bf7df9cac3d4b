"""A model held in bf16 that computes in fp32: FlagEmbedding's fp32 numbers at bf16's memory.

bge-reranker-v2-minicpm-layerwise is published in bf16, so its fp32 model holds those same values, widened. Keeping
the bf16 tensors and widening each one as a layer uses it therefore gives the fp32 model's scores exactly, in half
its memory (5.5 GB instead of 11). On a CPU without bf16 instructions (AVX2 only) this is also far quicker than
bf16 arithmetic, which torch emulates there: six pairs at layer 28 took 40 s against bf16's 200 s (fp32: 37 s) on
a 2-core AMD EPYC. Where the CPU has them (AVX512-BF16, AMX), bf16 arithmetic is about twice as fast as fp32, and
the BGE set uses it there (``flagdemo.models.model_sets``).

For a checkpoint published in fp32 the bf16 weights are rounded, so its scores are close to, not equal to, fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# How the Models tab names such a model after its dtype: "bfloat16 weights, float32 arithmetic".
DESCRIBED_AFTER_DTYPE = " weights, float32 arithmetic"


class WidenedLinear(torch.nn.Linear):
    """A Linear whose bf16 weight (and bias) are widened to the input's dtype for each product."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias.to(hidden.dtype)
        return F.linear(hidden, self.weight.to(hidden.dtype), bias)


class WidenedEmbedding(torch.nn.Embedding):
    """An Embedding whose looked-up bf16 rows come out in fp32."""

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return super().forward(input_ids).float()


def compute_in_fp32(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` (loaded in bf16) with its Linear and Embedding weights kept in bf16 and widened as they are used;
    every other floating tensor (norms, rotary tables, heads of other kinds) becomes fp32. Changes ``model`` in
    place and returns it."""
    for module in model.modules():
        if type(module) is torch.nn.Linear:
            module.__class__ = WidenedLinear
        elif type(module) is torch.nn.Embedding:
            module.__class__ = WidenedEmbedding
        else:
            for parameter in module.parameters(recurse=False):
                parameter.data = parameter.data.float()
            for name, buffer in module.named_buffers(recurse=False):
                if buffer.is_floating_point():
                    setattr(module, name, buffer.float())
    return model
