"""MSELoss (nn.MSELoss): E = mean (o - t)^2 over all N n elements; dE/dy = 2 (y - t) / (N n)."""
from .common import error_sign, half_sse_factor, loss_exercise, mse_sum_over_batch, mse_sum_over_outputs

EXERCISE = loss_exercise("MSELoss", "MSE", [
    half_sse_factor(lambda v: {"dy": (v["y"] - v["t"]) / v["y"].size}),
    mse_sum_over_outputs(lambda v: {"dy": 2 * (v["y"] - v["t"]) / v["y"].shape[0]}),
    mse_sum_over_batch(lambda v: {"dy": 2 * (v["y"] - v["t"]) / v["y"].shape[1]}),
    error_sign(lambda v: {"dy": 2 * (v["t"] - v["y"]) / v["y"].size}),
])
