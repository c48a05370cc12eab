"""Dropout: units dropped at random in training; the gradient flows only through kept ones."""
from common.functions import keep_mask


class Dropout:
    def __init__(self, dropout_ratio=0.5):
        self.dropout_ratio = dropout_ratio
        self.mask = None

    def forward(self, x, train_flg=True):
        if train_flg:
            self.mask = keep_mask(x.shape, self.dropout_ratio)
            return x * self.mask
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout):
        """Return dx, the shape of x."""
        ### BEGIN SOLUTION
        dx = dout * self.mask
        ### END SOLUTION
        return dx
