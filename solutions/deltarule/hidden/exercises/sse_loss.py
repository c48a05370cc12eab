"""SSELoss: E = 1/2 sum (t - o)^2 over the batch and the outputs; dE/dy = y - t."""
from .common import error_sign, half_sse_factor, loss_exercise

EXERCISE = loss_exercise("SSELoss", "SSE", [
    half_sse_factor(lambda v: {"dy": 2 * (v["y"] - v["t"])}),
    error_sign(lambda v: {"dy": v["t"] - v["y"]}),
])
