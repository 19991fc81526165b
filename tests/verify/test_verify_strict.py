"""The strict serializer: exact plain types round-trip; subclasses, cycles and forged wire text are refused."""

import collections
import math

import pytest

from codemill.verify import Unserializable, decode, encode, strict_equal

PLAIN = [
    None,
    True,
    False,
    0,
    -7,
    2**200,
    1.5,
    -0.0,
    float("inf"),
    float("-inf"),
    "",
    "héllo\udc80",
    b"\x00\xff",
    [1, [2, (3,)]],
    (),
    {1: "a", (2, 3): [None], frozenset({1}): b""},
    {1, 2.5, "x", (1, 2)},
    frozenset(),
    {"nested": {"deep": [{1, 2}, {"k": -0.0}]}},
]


@pytest.mark.parametrize("value", PLAIN, ids=repr)
def test_plain_values_round_trip_with_their_exact_types(value):
    back = decode(encode(value))
    assert strict_equal(back, value) and type(back) is type(value)
    assert encode(back) == encode(value)


def test_nan_round_trips_and_equals_only_nan():
    back = decode(encode([float("nan")]))
    assert math.isnan(back[0])
    assert strict_equal(float("nan"), float("nan"))
    assert not strict_equal(float("nan"), 0.0) and not strict_equal(float("nan"), float("inf"))


def test_exact_mode_tells_types_apart_value_mode_follows_python_numbers():
    for a, b in [(1, 1.0), (1, True), (0.0, -0.0), ({1}, frozenset({1})), ([1], (1,)), ({1: "a"}, {1.0: "a"})]:
        assert not strict_equal(a, b), (a, b)
    for a, b in [(1, 1.0), (1, True), (0.0, -0.0), ({1}, frozenset({1})), ({1: "a"}, {1.0: "a"}), ([1, 2.0], [1.0, 2])]:
        assert strict_equal(a, b, numbers="value"), (a, b)
    assert not strict_equal([1], (1,), numbers="value") and not strict_equal("1", 1, numbers="value")
    assert not strict_equal(float("nan"), 1, numbers="value")
    assert strict_equal({"b": 1, "a": 2}, {"a": 2, "b": 1}) and not strict_equal([1, 2], [2, 1])


class AlwaysEqual(int):
    def __eq__(self, other):
        return True

    __hash__ = int.__hash__


@pytest.mark.parametrize(
    "value",
    [
        AlwaysEqual(1),
        [1, AlwaysEqual(2)],
        {"k": AlwaysEqual(3)},
        collections.Counter(a=1),
        collections.OrderedDict(),
        type("S", (str,), {})("x"),
        object(),
        len,
        1j,
        bytearray(b"x"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_subclasses_and_other_objects_are_refused_with_the_type_named(value):
    with pytest.raises(Unserializable, match="not plain data"):
        encode(value)


def test_bounds_cycles_and_depth():
    cycle = []
    cycle.append(cycle)
    with pytest.raises(Unserializable, match="deeper"):
        encode(cycle)
    with pytest.raises(Unserializable, match="bytes"):
        encode("x" * 100, max_bytes=50)
    with pytest.raises(Unserializable, match="items"):
        encode([0] * 300_000)
    with pytest.raises(Unserializable, match="digits"):
        encode(10**5000)


@pytest.mark.parametrize(
    "text",
    [
        "1.5",
        '"bare string"',
        '{"a": 1}',
        "NaN",
        '["s"]',
        '["x", 1]',
        '["S", [1, 1]]',
        '["d", [[1, 2], [1, 3]]]',
        '["d", [[["l", []], 1]]]',
        '["b", "***"]',
        "[1,",
        '["f", "one"]',
        "9" * 5000,
        "[" * 5000 + "]" * 5000,
        42,
    ],
)
def test_decode_refuses_anything_but_the_wire_form(text):
    with pytest.raises(Unserializable):
        decode(text)
