"""The shopping graph: price = (apple * apple_num + orange * orange_num) * tax, and back."""
from grader.exercises import Case, FunctionExercise, Misconception

INPUTS = ("apple", "apple_num", "orange", "orange_num", "tax")


def book(rng):
    return {"apple": 100, "apple_num": 2, "orange": 150, "orange_num": 3, "tax": 1.1}


def random_prices(rng):
    return {"apple": float(rng.integers(50, 300)), "apple_num": float(rng.integers(2, 9)),
            "orange": float(rng.integers(50, 300)), "orange_num": float(rng.integers(2, 9)),
            "tax": float(rng.choice([1.05, 1.08, 1.2]))}


def replay(program, v):
    """The book's graph, built right from the student's own layers (worker steps, not code
    sent to the worker): (price, {input: gradient}) refs."""
    mul_apple, mul_orange, add, mul_tax = (program.new("layers", cls) for cls in
                                          ("MulLayer", "MulLayer", "AddLayer", "MulLayer"))
    apple_price = program.call(mul_apple, "forward", v["apple"], v["apple_num"])
    orange_price = program.call(mul_orange, "forward", v["orange"], v["orange_num"])
    price = program.call(mul_tax, "forward", program.call(add, "forward", apple_price, orange_price), v["tax"])
    back_tax = program.call(mul_tax, "backward", 1)
    back_add = program.call(add, "backward", program.get(back_tax, 0))
    back_orange = program.call(mul_orange, "backward", program.get(back_add, 1))
    back_apple = program.call(mul_apple, "backward", program.get(back_add, 0))
    grads = {"apple": program.get(back_apple, 0), "apple_num": program.get(back_apple, 1),
             "orange": program.get(back_orange, 0), "orange_num": program.get(back_orange, 1),
             "tax": program.get(back_tax, 1)}
    return price, grads


EXERCISE = FunctionExercise(
    part="ShoppingGraph", short="Shop", module="buy_apple_orange", function="buy_apple_orange", inputs=INPUTS,
    value="price", depends=("MulLayer", "AddLayer"), walk=replay,
    cases=[Case("the book's prices", book), Case("other prices", random_prices)],
    misconceptions=[
        Misconception("hard-coded-numbers", "the book's numbers typed in",
                      "The gradients must be computed by the layers' backward passes, for any prices.",
                      wrong=lambda v: {"dapple": 2.2, "dapple_num": 110.0, "dorange": 3.3,
                                       "dorange_num": 165.0, "dtax": 650.0}),
    ],
)

