"""A strict serializer of plain data: the only thing that leaves the sandbox in call mode.

Plain data is ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes`` and ``list``,
``tuple``, ``dict``, ``set``, ``frozenset`` of plain data, each of exactly that type
(``type(x) is int``): a subclass (an ``int`` whose ``__eq__`` is always true, a ``str``
with a custom ``__hash__``, ``collections.Counter``) is :class:`Unserializable`, with the
type named in the reason. Nothing of the value's own code runs while it is encoded:
containers are walked with the built-in types' methods, set members are ordered by their
encoded text, not by ``<``.

The wire form (``encode``) is JSON text, ASCII only: ``null``/``true``/``false``/integers
as themselves, everything else as ``[tag, payload]``: ``["f", repr]`` (``"nan"``,
``"inf"``, ``"-inf"``, ``"-0.0"`` included), ``["s", text]``, ``["b", base64]``,
``["l", items]``, ``["t", items]``, ``["d", [[key, value], ...]]``, ``["S", items]``,
``["F", items]``. ``decode`` accepts exactly that form (no bare JSON floats, strings or
objects, no duplicate keys or members) and raises :class:`Unserializable` on anything else.

Equality (``strict_equal``) is decided by the trusted parent on decoded values, by
comparing canonical encodings (dict items and set members sorted by their encoded text):

- ``numbers="exact"`` (the default; mined tasks, RL rewards): the type is part of the
  value: ``1``, ``1.0`` and ``True`` differ, ``-0.0`` and ``0.0`` differ, ``set`` and
  ``frozenset`` differ; ``NaN`` equals ``NaN`` (by design: a reference that returns NaN
  is matched by a candidate that returns NaN, and by nothing else);
- ``numbers="value"`` (HumanEval, whose asserts use Python's ``==``): ``bool``, ``int``
  and ``float`` compare by numeric value (``1 == 1.0 == True``, ``-0.0 == 0.0``), and
  ``set`` equals ``frozenset``, as in Python; NaN still equals only NaN. Containers and
  strings keep their exact types (``[1] != (1,)``, as in Python).

Bounds: nesting depth ``MAX_DEPTH``, ``MAX_ITEMS`` nodes, ``max_bytes`` of encoded text,
integers of at most ``MAX_INT_DIGITS`` digits; cycles end at the depth bound.

Standard library only and Python >= 3.9: the sandbox's interpreter loads this file too.
"""

import base64
import binascii
import json
import math

MAX_DEPTH = 100
MAX_ITEMS = 200_000
MAX_BYTES = 1 << 20
MAX_INT_DIGITS = 4000

# The built-in types as they were when this module loaded: a sample that rebinds
# ``builtins.int`` later does not change what counts as an int here.
_NONE, _BOOL, _INT, _FLOAT, _STR, _BYTES = type(None), bool, int, float, str, bytes
_LIST, _TUPLE, _DICT, _SET, _FROZENSET, _type = list, tuple, dict, set, frozenset, type
_SEQUENCES = {list: "l", tuple: "t", set: "S", frozenset: "F"}
_KINDS = {"l": list, "t": tuple, "S": set, "F": frozenset}
_dumps = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode
_loads = json.loads


class Unserializable(ValueError):
    """A value that is not plain data (or text that is not the wire form); ``str`` is the reason."""


def _tree(value, budget, depth):
    """The JSON-ready tagged form of ``value``; ``budget`` is a one-item list of nodes left."""
    budget[0] -= 1
    if budget[0] < 0:
        raise Unserializable("more than %d items" % MAX_ITEMS)
    if depth > MAX_DEPTH:
        raise Unserializable("nested deeper than %d (or cyclic)" % MAX_DEPTH)
    kind = _type(value)
    if kind is _NONE or kind is _BOOL:
        return value
    if kind is _INT:
        if _INT.bit_length(value) > MAX_INT_DIGITS * 3.32:
            raise Unserializable("int with more than %d digits" % MAX_INT_DIGITS)
        return value
    if kind is _FLOAT:
        return ["f", _FLOAT.__repr__(value)]
    if kind is _STR:
        return ["s", value]
    if kind is _BYTES:
        return ["b", base64.b64encode(value).decode("ascii")]
    if kind is _LIST or kind is _TUPLE or kind is _SET or kind is _FROZENSET:
        items = [_tree(item, budget, depth + 1) for item in kind.__iter__(value)]
        if kind is _SET or kind is _FROZENSET:
            items.sort(key=_dumps)
        return [_SEQUENCES[kind], items]
    if kind is _DICT:
        return ["d", [[_tree(k, budget, depth + 1), _tree(v, budget, depth + 1)] for k, v in _DICT.items(value)]]
    raise Unserializable("not plain data: %s" % _type_name(kind))


def _type_name(kind):
    try:
        module = type.__getattribute__(kind, "__module__")
        name = type.__getattribute__(kind, "__qualname__")
        return ("%s.%s" % (module, name) if module not in ("builtins", None) else str(name))[:120]
    except BaseException:
        return "an object of an unnamed type"


def encode(value, max_bytes=MAX_BYTES):
    """``value`` as wire text; raises Unserializable (with the reason) for anything not plain."""
    try:
        text = _dumps(_tree(value, [MAX_ITEMS], 0))
    except RecursionError:
        raise Unserializable("nested too deeply") from None
    if len(text) > max_bytes:
        raise Unserializable("encoded value is %d bytes, more than %d" % (len(text), max_bytes))
    return text


def _reject_constant(name):
    raise Unserializable("bare %s is not in the wire form" % name)


def _build(node, depth):
    if depth > MAX_DEPTH:
        raise Unserializable("nested deeper than %d" % MAX_DEPTH)
    if node is None or type(node) in (bool, int):
        return node
    if type(node) is not list or len(node) != 2 or type(node[0]) is not str:
        raise Unserializable("not a tagged value: %s" % type(node).__name__)
    tag, payload = node
    if tag == "f" and type(payload) is str:
        try:
            return float(payload)
        except ValueError:
            raise Unserializable("bad float %r" % payload[:40]) from None
    if tag == "s" and type(payload) is str:
        return payload
    if tag == "b" and type(payload) is str:
        try:
            return base64.b64decode(payload.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise Unserializable("bad base64") from None
    if tag in _KINDS and type(payload) is list:
        items = [_build(item, depth + 1) for item in payload]
        try:
            built = _KINDS[tag](items)
        except TypeError as e:
            raise Unserializable("unhashable member: %s" % e) from None
        if len(built) != len(items):
            raise Unserializable("duplicate set members")
        return built
    if tag == "d" and type(payload) is list:
        pairs = []
        for pair in payload:
            if type(pair) is not list or len(pair) != 2:
                raise Unserializable("a dict item is not a [key, value] pair")
            pairs.append((_build(pair[0], depth + 1), _build(pair[1], depth + 1)))
        try:
            built = dict(pairs)
        except TypeError as e:
            raise Unserializable("unhashable key: %s" % e) from None
        if len(built) != len(pairs):
            raise Unserializable("duplicate dict keys")
        return built
    raise Unserializable("unknown tag %r" % tag[:20])


def decode(text, max_bytes=MAX_BYTES):
    """The value ``encode`` wrote; raises Unserializable on anything that is not the wire form."""
    if type(text) is not str or len(text) > max_bytes:
        raise Unserializable("wire text missing or longer than %d bytes" % max_bytes)
    try:
        node = _loads(
            text,
            parse_float=lambda s: _reject_constant("JSON float"),
            parse_constant=_reject_constant,
            object_hook=lambda o: _reject_constant("JSON object"),
        )
    except RecursionError:
        raise Unserializable("nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, or an int literal past Python's digit limit
        if isinstance(e, Unserializable):
            raise
        raise Unserializable("not JSON: %s" % e) from None
    try:
        return _build(node, 0)
    except RecursionError:
        raise Unserializable("nested too deeply") from None


def _canonical(value, numbers):
    """A JSON-ready form in which equal values (under ``numbers``) are identical."""
    kind = type(value)
    if numbers == "value" and kind in (bool, int, float):
        if kind is float and (math.isnan(value) or math.isinf(value)):
            return ["f", float.__repr__(value)]
        if kind is float and not value.is_integer():
            return ["f", float.__repr__(value)]
        return int(value)
    if value is None or kind in (bool, int):
        return value
    if kind is float:
        return ["f", float.__repr__(value)]
    if kind is str:
        return ["s", value]
    if kind is bytes:
        return ["b", base64.b64encode(value).decode("ascii")]
    if kind in (list, tuple):
        return [_SEQUENCES[kind], [_canonical(v, numbers) for v in value]]
    if kind in (set, frozenset):
        tag = "S" if numbers == "value" else _SEQUENCES[kind]
        return [tag, sorted((_canonical(v, numbers) for v in value), key=_dumps)]
    if kind is dict:
        pairs = [[_canonical(k, numbers), _canonical(v, numbers)] for k, v in value.items()]
        return ["d", sorted(pairs, key=lambda p: _dumps(p[0]))]
    raise Unserializable("not plain data: %s" % _type_name(kind))


def strict_equal(a, b, numbers="exact"):
    """Whether two plain values are equal: exact types and values (see the module docstring)."""
    if numbers not in ("exact", "value"):
        raise ValueError("numbers must be 'exact' or 'value', not %r" % (numbers,))
    return _dumps(_canonical(a, numbers)) == _dumps(_canonical(b, numbers))


def to_source(value):
    """Python source that evaluates (with the builtins) to ``value``; for argument lists of
    recorded calls. Raises Unserializable for anything that is not plain data."""
    kind = _type(value)
    if kind is _FLOAT and (value != value or value in (float("inf"), float("-inf"))):
        return "float(%r)" % _FLOAT.__repr__(value)
    if kind in (_NONE, _BOOL, _INT, _FLOAT, _STR, _BYTES):
        return repr(value)
    if kind is _LIST:
        return "[%s]" % ", ".join(to_source(v) for v in value)
    if kind is _TUPLE:
        return "(%s)" % (to_source(value[0]) + "," if len(value) == 1 else ", ".join(to_source(v) for v in value))
    if kind is _SET:
        return "{%s}" % ", ".join(sorted(to_source(v) for v in value)) if value else "set()"
    if kind is _FROZENSET:
        return "frozenset([%s])" % ", ".join(sorted(to_source(v) for v in value))
    if kind is _DICT:
        return "{%s}" % ", ".join("%s: %s" % (to_source(k), to_source(v)) for k, v in value.items())
    raise Unserializable("not plain data: %s" % _type_name(kind))
