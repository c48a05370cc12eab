"""MSELoss (nn.MSELoss): E = mean (o - t)^2 over all N n elements; dE/dy = 2 (y - t) / (N n)."""
from .common import error_sign, half_sse_factor, loss_exercise, mse_summed

EXERCISE = loss_exercise("MSELoss", "MSE", [
    half_sse_factor(lambda v: {"dy": (v["y"] - v["t"]) / v["y"].size}),
    mse_summed("outputs", lambda v: {"dy": 2 * (v["y"] - v["t"]) / v["y"].shape[0]}),
    mse_summed("batch", lambda v: {"dy": 2 * (v["y"] - v["t"]) / v["y"].shape[1]}),
    error_sign(lambda v: {"dy": 2 * (v["t"] - v["y"]) / v["y"].size}),
])
