"""The backprop assignment's exercises, in grading order: one module per exercise."""
from . import add_layer, affine, mul_layer, relu, shopping_graph, sigmoid, softmax_with_loss, two_layer_net

EXERCISES = [m.EXERCISE for m in (mul_layer, add_layer, relu, sigmoid, affine, softmax_with_loss,
                                  two_layer_net, shopping_graph)]
