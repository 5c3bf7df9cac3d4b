"""How closely LM-Cocktail's data-derived losses and weights can agree across CPUs, and why."""

from __future__ import annotations

# A loss is the mean cross-entropy of a forward pass over a batch: fp32 kernels that differ between CPUs (another
# summation order in a matmul, a fused attention) change it by a few parts in 1e7 (2.4052558 vs 2.4052546 measured
# between an AMD and an Intel CPU, 5e-7 relative). The bound is relative because that rounding scales with the loss
# (the decoder's are 11.6, where one fp32 step is already 9.5e-7), and it is the 1e-5 that golden parity holds the
# model outputs to.
LOSS_RTOL = 1e-5


def weight_tolerance(weights: list[float], loss_change: float, temperature: float) -> list[float]:
    """How far softmax(-loss / T) can move when each loss moves by at most ``loss_change``: to first order
    |dw_i| <= w_i (|dl_i| + sum_j w_j |dl_j|) / T <= 2 w_i max|dl| / T, plus fp32 rounding of the softmax itself."""
    return [2 * weight * loss_change / temperature + 1e-7 for weight in weights]
