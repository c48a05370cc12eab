"""The deltarule assignment's exercises, in grading order: one module per exercise."""
from . import delta_rule_step, mse_loss, sigmoid_output, sse_loss, three_layer_net

EXERCISES = [m.EXERCISE for m in (sse_loss, mse_loss, sigmoid_output, delta_rule_step, three_layer_net)]
