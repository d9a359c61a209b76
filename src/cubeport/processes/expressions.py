"""Band maths on a cube's variables, safely: an expression is parsed with `ast` and only a small, checked
subset of Python's syntax is evaluated, by walking the tree (never `eval` or `compile` on user text).

Allowed: numbers (evaluated as 64-bit floats, so `9 ** 9 ** 9` is `inf`, not a huge integer), the names
of the cube's variables, the constants `nan`, `inf` and `pi`, arithmetic (`+ - * / ** % //`, unary `-`
and `+`), comparisons (chains too: `0 < ndvi < 1`), `and`/`or`/`not` (elementwise, as `& | ~`) and
`where(condition, a, b)`. Everything else (attributes, subscripts, other calls, strings, lambdas,
comprehensions, conditional expressions) is refused with an InputError that says what is allowed.
Evaluation stays lazy: dask-backed variables give a dask-backed result.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from cubeport.errors import InputError

MAX_LENGTH = 1000  # characters of an expression
MAX_NODES = 400  # syntax-tree nodes
MAX_DEPTH = 64  # nesting of the tree (evaluation recurses this deep)

_BINARY: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.Pow: ("**", operator.pow),
    ast.Mod: ("%", operator.mod),
    ast.FloorDiv: ("//", operator.floordiv),
}
_UNARY: dict[type[ast.unaryop], str] = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
_COMPARE: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
_BOOLEAN: dict[type[ast.boolop], str] = {ast.And: "and", ast.Or: "or"}
CONSTANTS: dict[str, float] = {"nan": math.nan, "inf": math.inf, "pi": math.pi}
FUNCTIONS: dict[str, int] = {"where": 3}  # name: number of arguments

ALLOWED = (
    "numbers, the cube's variable names, the constants nan, inf and pi, the operators "
    "+ - * / ** % // (and unary - +), comparisons == != < <= > >= (chains too), and, or, not, "
    "and the function where(condition, a, b)"
)


def capabilities() -> dict[str, Any]:
    """What expressions may contain, as JSON: the `namespace` shape xcube's `/expressions/capabilities`
    answers, plus the size limits."""
    return {
        "namespace": {
            "constants": sorted(CONSTANTS),
            "arrayFunctions": sorted(FUNCTIONS),
            "otherFunctions": [],
            "arrayOperators": [
                *(symbol for symbol, _ in _BINARY.values()),
                *(symbol for symbol, _ in _COMPARE.values()),
                *_BOOLEAN.values(),
                "not",
            ],
            "otherOperators": [],
        },
        "limits": {"maxLength": MAX_LENGTH, "maxNodes": MAX_NODES, "maxDepth": MAX_DEPTH},
        "description": f"Allowed: {ALLOWED}.",
    }


@dataclass(frozen=True)
class Expression:
    """A parsed, checked expression: its text, the variable names it uses and its syntax tree."""

    text: str
    names: frozenset[str]
    tree: ast.expr

    def evaluate(self, dataset: xr.Dataset | Mapping[str, xr.DataArray]) -> xr.DataArray:
        """The expression over the dataset's variables, lazily (dask stays dask). InputError for a name the
        dataset lacks. A comparison or `and`/`or`/`not` gives a boolean array."""
        check_names(self, [str(name) for name in dataset])
        result = _evaluate(self.tree, dataset)
        if not isinstance(result, xr.DataArray):  # only constants in a branch that won: broadcast nothing
            raise InputError(f"the expression {self.text!r} gives a single number, not an array of the cube")
        return result


def parse(expression: str) -> Expression:
    """Parse and check `expression`; InputError says what is not allowed and what is."""
    if not isinstance(expression, str):
        raise InputError("the expression must be a string")
    text = expression.strip()
    if not text:
        raise InputError(f"the expression is empty; allowed: {ALLOWED}")
    if len(text) > MAX_LENGTH:
        raise InputError(f"the expression has {len(text):,} characters; at most {MAX_LENGTH:,} are allowed")
    if "\x00" in text:
        raise InputError("the expression contains a NUL character")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise InputError(
            f"the expression is not valid syntax ({e.msg}, column {e.offset}); allowed: {ALLOWED}"
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise InputError(f"the expression is nested too deeply; allowed: {ALLOWED}") from None
    names = _check(tree.body)
    if not names:
        raise InputError(f"the expression {text!r} names no variable of the cube")
    return Expression(text, frozenset(names), tree.body)


def check_names(expression: Expression | str, variables: Collection[str]) -> None:
    """InputError naming the first variable the expression uses that is not in `variables` (listed)."""
    parsed = parse(expression) if isinstance(expression, str) else expression
    missing = sorted(parsed.names - {str(v) for v in variables})
    if missing:
        listed = ", ".join(sorted(str(v) for v in variables)) or "none"
        raise InputError(
            f"the expression names {missing[0]!r}, which is not a variable of the cube; variables: {listed}"
        )


# ------------------------------------------------------------------------------------ checking


def _refuse(what: str) -> InputError:
    return InputError(f"{what} is not allowed in an expression; allowed: {ALLOWED}")


def _check(root: ast.expr) -> set[str]:
    """The variable names `root` uses; InputError at the first node that is not allowed. Iterative, so a
    deep tree cannot exhaust the stack before its depth is refused."""
    names: set[str] = set()
    count = 0
    stack: list[tuple[ast.AST, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise InputError(f"the expression has more than {MAX_NODES} elements; simplify it")
        if depth > MAX_DEPTH:
            raise InputError(f"the expression is nested more than {MAX_DEPTH} levels deep; simplify it")
        children: list[ast.AST]
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, (str, bytes)):
                raise _refuse("a string")
            if isinstance(value, bool) or not isinstance(value, (int, float)):  # True, None, 1j, ...
                raise _refuse(f"the constant {value!r}")
            children = []
        elif isinstance(node, ast.Name):
            _check_name(node.id)
            if node.id not in CONSTANTS:
                names.add(node.id)
            children = []
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise _refuse(f"the operator {_symbol(node.op)}")
            children = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise _refuse(f"the operator {_symbol(node.op)}")
            children = [node.operand]
        elif isinstance(node, ast.Compare):
            for op in node.ops:
                if type(op) not in _COMPARE:
                    raise _refuse(f"the comparison {_symbol(op)}")
            children = [node.left, *node.comparators]
        elif isinstance(node, ast.BoolOp):
            children = list(node.values)
        elif isinstance(node, ast.Call):
            children = _check_call(node)
        else:
            raise _refuse(_describe(node))
        stack.extend((child, depth + 1) for child in children)
    return names


def _check_name(name: str) -> None:
    if name.startswith("_"):
        raise _refuse(f"the name {name!r} (names starting with '_')")
    if name in FUNCTIONS:
        raise _refuse(f"{name!r} without a call")


def _check_call(node: ast.Call) -> list[ast.AST]:
    if not isinstance(node.func, ast.Name):
        raise _refuse(f"calling {_describe(node.func)}")
    name = node.func.id
    if name not in FUNCTIONS:
        raise _refuse(f"the function {name!r}")
    if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise _refuse(f"keyword or starred arguments of {name}()")
    if len(node.args) != FUNCTIONS[name]:
        raise InputError(f"{name}() takes {FUNCTIONS[name]} arguments, {len(node.args)} given")
    return list(node.args)


_DESCRIPTIONS: dict[type[ast.AST], str] = {
    ast.Attribute: "an attribute (a.b)",
    ast.Subscript: "a subscript (a[i])",
    ast.Lambda: "a lambda",
    ast.IfExp: "a conditional expression (a if c else b; use where(c, a, b))",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Set: "a set",
    ast.Dict: "a dict",
    ast.JoinedStr: "a string",
    ast.NamedExpr: "an assignment (:=)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Starred: "a starred expression",
    ast.Slice: "a slice",
}


def _describe(node: ast.AST) -> str:
    return _DESCRIPTIONS.get(type(node), f"the syntax {type(node).__name__}")


def _symbol(op: ast.AST) -> str:
    symbols = {
        ast.BitAnd: "&",
        ast.BitOr: "|",
        ast.BitXor: "^",
        ast.Invert: "~",
        ast.LShift: "<<",
        ast.RShift: ">>",
        ast.MatMult: "@",
        ast.Is: "is",
        ast.IsNot: "is not",
        ast.In: "in",
        ast.NotIn: "not in",
    }
    return repr(symbols.get(type(op), type(op).__name__))


# ------------------------------------------------------------------------------------ evaluation


def _evaluate(node: ast.expr, data: xr.Dataset | Mapping[str, xr.DataArray]) -> Any:
    """Walk a checked tree; recursion depth is bounded by MAX_DEPTH."""
    if isinstance(node, ast.Constant):
        return np.float64(node.value)  # type: ignore[arg-type]  # checked: an int or a float
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:  # a constant even if the cube has a variable of that name
            return np.float64(CONSTANTS[node.id])
        return data[node.id]
    if isinstance(node, ast.BinOp):
        function = _BINARY[type(node.op)][1]
        with np.errstate(all="ignore"):
            return function(_evaluate(node.left, data), _evaluate(node.right, data))
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, data)
        if isinstance(node.op, ast.Not):
            return ~_truth(operand)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, data)
        result: Any = None
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator, data)
            step = _COMPARE[type(op)][1](left, right)
            result = step if result is None else result & step
            left = right
        return result
    if isinstance(node, ast.BoolOp):
        values = [_truth(_evaluate(v, data)) for v in node.values]
        combined = values[0]
        for value in values[1:]:
            combined = combined & value if isinstance(node.op, ast.And) else combined | value
        return combined
    if isinstance(node, ast.Call):  # where(condition, a, b): the only function
        condition, a, b = (_evaluate(arg, data) for arg in node.args)
        return xr.where(_truth(condition), a, b)  # type: ignore[no-untyped-call]
    raise _refuse(_describe(node))  # unreachable for checked trees


def _truth(value: Any) -> Any:
    """A value as booleans, elementwise: non-zero is true (as Python's truth of a number; NaN is true)."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and dtype == np.bool_:
        return value
    return value != 0


__all__ = ["ALLOWED", "CONSTANTS", "Expression", "FUNCTIONS", "capabilities", "check_names", "parse"]
