"""The book's shopping example (2 apples at 100, 3 oranges at 150, 10% tax), via the reference.

These are the numbers printed in the book (figure 5-17), so students can compare by eye.
"""
import pytest
from conftest import BACKPROP

buy_apple_orange = BACKPROP.reference["buy_apple_orange"].buy_apple_orange

BOOK_GRADIENTS = {"apple": 2.2, "apple_num": 110.0, "orange": 3.3, "orange_num": 165.0,
                  "tax": 650.0}


def test_book_price():
    """715 yen; in floating point 650 * 1.1 is 715.0000000000001, hence approx."""
    price, _ = buy_apple_orange()
    assert price == pytest.approx(715.0, rel=1e-12)


def test_book_gradients_have_exactly_the_five_inputs():
    """One derivative per input of the graph, no more, no fewer."""
    _, grads = buy_apple_orange()
    assert set(grads) == set(BOOK_GRADIENTS)


@pytest.mark.parametrize(("name", "value"), BOOK_GRADIENTS.items())
def test_book_gradient(name, value):
    """d price / d input as printed in the book."""
    _, grads = buy_apple_orange()
    assert grads[name] == pytest.approx(value, rel=1e-12)


def test_defaults_are_the_book_inputs():
    """Calling with the book's inputs spelled out gives the same price and derivatives."""
    price, grads = buy_apple_orange(apple=100, apple_num=2, orange=150, orange_num=3, tax=1.1)
    default_price, default_grads = buy_apple_orange()
    assert price == default_price
    assert grads == default_grads
