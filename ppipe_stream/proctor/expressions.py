"""Safe arithmetic over a row's fields, for the ``feature`` command's expected values.

Owns parsing an expression such as ``petal_length / petal_width`` or
``log(amount + 1)`` with Python's ``ast`` and evaluating it against a row.
Only numbers, field names, arithmetic (``+ - * / // % **``), unary minus,
comparisons, ``and``/``or``/``not``, conditional expressions and a few
functions (abs, min, max, round, sqrt, log, exp, floor, ceil) are allowed:
no attribute access, no subscripts, no calls to anything else, never ``eval``.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["Expression", "compile_expression"]

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge}
_FUNCTIONS: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max, "round": round, "sqrt": math.sqrt,
              "log": math.log, "exp": math.exp, "floor": math.floor, "ceil": math.ceil}


class Expression:
    """A checked expression; call :meth:`evaluate` with a row (field -> value)."""

    def __init__(self, text: str, tree: ast.Expression, names: frozenset[str]) -> None:
        self.text = text
        self._tree = tree
        self.names = names

    def evaluate(self, row: Mapping[str, Any]) -> Any:
        """The value for ``row``; ValueError when a field is missing or the arithmetic fails."""
        try:
            return _eval(self._tree.body, row)
        except KeyError as exc:
            raise ValueError(f"the row has no field {exc.args[0]!r}") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            raise ValueError(f"{self.text!r}: {exc}") from None


def compile_expression(text: str) -> Expression:
    """Parse and check ``text``; ValueError naming the first thing not allowed."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression {text!r} is not valid: {exc.msg}") from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
                raise ValueError(f"expression {text!r}: only calls to {', '.join(sorted(_FUNCTIONS))} are allowed")
        elif isinstance(node, ast.Name):
            names.add(node.id)
        elif not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp,
                                   ast.IfExp, ast.Constant, ast.Load, ast.USub, ast.UAdd, ast.Not,
                                   ast.And, ast.Or, *_BINARY, *_COMPARE)):
            raise ValueError(f"expression {text!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, bool)):
            raise ValueError(f"expression {text!r}: only numbers are allowed as constants")
    names -= {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    return Expression(text, tree, frozenset(names))


def _eval(node: ast.AST, row: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return row[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, row), _eval(node.right, row)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, row)
        return -value if isinstance(node.op, ast.USub) else (not value if isinstance(node.op, ast.Not) else +value)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, row)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, row)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, row) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.IfExp):
        return _eval(node.body, row) if _eval(node.test, row) else _eval(node.orelse, row)
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _FUNCTIONS[node.func.id](*(_eval(a, row) for a in node.args))
    raise ValueError(f"{type(node).__name__} is not allowed")
