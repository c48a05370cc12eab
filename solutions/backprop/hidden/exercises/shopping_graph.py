"""The shopping graph: price = (apple * apple_num + orange * orange_num) * tax, and back."""
from grader.exercises import Case, FunctionExercise, Misconception

INPUTS = ("apple", "apple_num", "orange", "orange_num", "tax")


def book(rng):
    return {"apple": 100, "apple_num": 2, "orange": 150, "orange_num": 3, "tax": 1.1}


def random_prices(rng):
    return {"apple": float(rng.integers(50, 300)), "apple_num": float(rng.integers(2, 9)),
            "orange": float(rng.integers(50, 300)), "orange_num": float(rng.integers(2, 9)),
            "tax": float(rng.choice([1.05, 1.08, 1.2]))}


EXERCISE = FunctionExercise(
    part="ShoppingGraph", short="Shop", module="buy_apple_orange", function="buy_apple_orange", inputs=INPUTS,
    value="price", cases=[Case("the book's prices", book), Case("other prices", random_prices)],
    misconceptions=[
        Misconception("hard-coded-numbers", "the book's numbers typed in",
                      "The gradients must be computed by the layers' backward passes, for any prices.",
                      wrong=lambda v: {"dapple": 2.2, "dapple_num": 110.0, "dorange": 3.3,
                                       "dorange_num": 165.0, "dtax": 650.0}),
    ],
)
