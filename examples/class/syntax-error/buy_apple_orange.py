"""The shopping graph: (apple * apple_num + orange * orange_num) * tax, forward and back."""
from layers import AddLayer, MulLayer


def buy_apple_orange(apple=100, apple_num=2, orange=150, orange_num=3, tax=1.1):
    """Return ``(price, grads)``; ``grads`` maps every input name to d price / d input.

    The forward pass is done; compute the backward pass with the same layer objects,
    walking the graph from the price back to the inputs (start with ``dprice = 1``).
    """
    mul_apple_layer = MulLayer()
    mul_orange_layer = MulLayer()
    add_apple_orange_layer = AddLayer()
    mul_tax_layer = MulLayer()

    apple_price = mul_apple_layer.forward(apple, apple_num)
    orange_price = mul_orange_layer.forward(orange, orange_num)
    all_price = add_apple_orange_layer.forward(apple_price, orange_price)
    price = mul_tax_layer.forward(all_price, tax)

    dprice = 1
    dall_price, dtax = mul_tax_layer.backward(dprice)
    dapple_price, dorange_price = add_apple_orange_layer.backward(dall_price)
    dorange, dorange_num = mul_orange_layer.backward(dorange_price)
    dapple, dapple_num = mul_apple_layer.backward(dapple_price)
    grads = {"apple": dapple, "apple_num": dapple_num, "orange": dorange,
             "orange_num": dorange_num, "tax": dtax}
    return price, grads


if __name__ == "__main__":
    print(buy_apple_orange())
