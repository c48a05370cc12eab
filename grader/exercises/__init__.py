"""The assignment's exercises, in grading order: one module per exercise.

Adding an exercise: write a module that declares ``EXERCISE`` and list it here.
"""
from grader.exercises import (
    add_layer,
    affine,
    mul_layer,
    relu,
    shopping_graph,
    sigmoid,
    softmax_with_loss,
    two_layer_net,
)

ALL = [m.EXERCISE for m in (mul_layer, add_layer, relu, sigmoid, affine, softmax_with_loss,
                            two_layer_net, shopping_graph)]
PARTS = [e.part for e in ALL]
