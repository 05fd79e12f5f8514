"""The config-value vocabulary: each check returns the value or one message naming the key, value and what fits."""

import pytest

from toponets_exp.checks import boolean, choice, integer, is_int, is_number, number
from toponets_exp.errors import ConfigError


def test_integer_accepts_ints_in_bounds_and_names_what_is_accepted():
    assert integer("k", 3, 1, 5) == 3 and integer("k", None, optional=True) is None
    for value, message in [(True, "k=True must be an integer >= 1"), (1.0, "k=1.0 must be an integer >= 1"),
                           ("2", "k='2' must be an integer >= 1"), (0, "k=0 must be an integer >= 1")]:
        with pytest.raises(ConfigError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
            integer("k", value, 1)
    with pytest.raises(ConfigError, match=r"^k=101 must be an integer in \[1, 100\]$"):
        integer("k", 101, 1, 100)
    with pytest.raises(ConfigError, match=r"^k='x' must be an integer \(or null\)$"):
        integer("k", "x", optional=True)
    with pytest.raises(ConfigError, match=r"^k=None must be an integer$"):
        integer("k", None)
    with pytest.raises(ConfigError, match=r"^k=0 must be a positive integer \(or null\)$"):
        integer("k", 0, 1, optional=True, accepted="a positive integer")


def test_number_boolean_and_choice():
    assert number("t", "2.5", 0.0) == 2.5 and number("t", 3) == 3.0
    for value, message in [(True, "is not a number"), ([1], "is not a number"), ("abc", "is not a number"),
                           (float("inf"), "must be finite"), (-1, "must be >= 0")]:
        with pytest.raises(ConfigError, match=message):
            number("t", value, 0.0)
    assert boolean("b", False) is False
    with pytest.raises(ConfigError, match="^b='yes' must be true or false$"):
        boolean("b", "yes")
    assert choice("c", "x", ("x", "y")) == "x"
    with pytest.raises(ConfigError, match="^c='z' is not supported; use one of x, y$"):
        choice("c", "z", ("x", "y"))
    assert is_int(3) and not is_int(True) and not is_int(3.0)
    assert is_number(3.0) and is_number(3) and not is_number(False) and not is_number("3")


def test_must_and_items():
    from toponets_exp.checks import items, must

    assert must("a", 0.5, True, "x") == 0.5
    with pytest.raises(ConfigError, match=r"^a=2 must be a rate in \(0, 1\)$"):
        must("a", 2, False, "a rate in (0, 1)")
    assert items("l", [1, 2], lambda v: v > 0, "positive") == [1, 2] and items("l", [], bool, "x") == []
    for value in ([1, -1], (1, 2), "12"):
        with pytest.raises(ConfigError, match="must be a list of positive integers$"):
            items("l", value, lambda v: is_int(v) and v > 0, "a list of positive integers")
    with pytest.raises(ConfigError, match=r"^l=\[\] must be a non-empty list$"):
        items("l", [], bool, "a non-empty list", nonempty=True)
