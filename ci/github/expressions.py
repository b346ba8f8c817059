"""A small evaluator for GitHub Actions ``if:`` expressions, for planning which jobs run.

Only what is known before a run is evaluated (the event name, the ref, literals, status
functions assuming every job succeeds); anything else (``matrix``, ``vars``, ``needs``
outputs, ...) is UNKNOWN and propagates, so a plan never claims more than it knows.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ci.core.errors import UsageError


class Unknown(enum.Enum):
    """A value only a real run would know."""

    UNKNOWN = "unknown"


UNKNOWN = Unknown.UNKNOWN
Value = str | float | bool | None | Unknown

_TOKEN = re.compile(
    r"\s*(?:(?P<num>-?\d+(?:\.\d+)?)|'(?P<str>(?:[^']|'')*)'|(?P<op>==|!=|<=|>=|&&|\|\||[<>!().,\[\]])"
    r"|(?P<name>[A-Za-z_][\w-]*|\*))"
)
STATUS_FUNCTIONS = {"success": True, "always": True, "failure": False, "cancelled": False}


class ExpressionError(UsageError):
    """An expression this evaluator cannot parse."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str


def strip_braces(expression: str) -> str:
    """``${{ x }}`` -> ``x`` (``if:`` accepts both forms)."""
    text = expression.strip()
    if text.startswith("${{") and text.endswith("}}"):
        return text[3:-2].strip()
    return text


def uses_status_function(expression: str) -> bool:
    """True when ``expression`` calls always(), failure() or cancelled() (runs after skips)."""
    return re.search(r"\b(always|failure|cancelled)\s*\(", expression) is not None


def evaluate(expression: str, context: Mapping[str, object]) -> Value:
    """The value of ``expression`` given the known ``context`` (UNKNOWN where it depends)."""
    tokens = _tokenize(strip_braces(expression))
    parser = _Parser(tokens, context)
    value = parser.expression()
    if parser.pos != len(tokens):
        msg = f"cannot parse {expression!r} after {tokens[parser.pos].text!r}"
        raise ExpressionError(msg)
    return value


def truthy(value: Value) -> bool | Unknown:
    """GitHub's truthiness (false, 0, '', null are false); UNKNOWN stays unknown."""
    if value is UNKNOWN:
        return UNKNOWN
    return bool(value)


def _tokenize(text: str) -> list[_Token]:
    tokens = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            msg = f"cannot parse {text!r} at {text[pos:]!r}"
            raise ExpressionError(msg)
        kind = match.lastgroup or "op"
        raw = match.group(kind) or ""
        tokens.append(_Token(kind, raw.replace("''", "'") if kind == "str" else raw))
        pos = match.end()
    return tokens


def _compare(op: str, left: Value, right: Value) -> Value:
    if left is UNKNOWN or right is UNKNOWN:
        return UNKNOWN
    if isinstance(left, str) and isinstance(right, str):
        left, right = left.casefold(), right.casefold()  # GitHub compares strings ignoring case
    elif type(left) is not type(right):
        left, right = _number(left), _number(right)
    ops: dict[str, Callable[[object, object], bool]] = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,  # type: ignore[operator]
        "<=": lambda a, b: a <= b,  # type: ignore[operator]
        ">": lambda a, b: a > b,  # type: ignore[operator]
        ">=": lambda a, b: a >= b,  # type: ignore[operator]
    }
    try:
        return ops[op](left, right)
    except TypeError:
        return False


def _number(value: Value) -> float:
    if value is None or value is False:
        return 0.0
    if value is True:
        return 1.0
    if isinstance(value, float):
        return value
    try:
        return float(str(value).strip() or 0)
    except ValueError:
        return float("nan")


def _text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class _Parser:
    """Recursive descent: or > and > comparison > not > primary."""

    def __init__(self, tokens: list[_Token], context: Mapping[str, object]) -> None:
        self.tokens = tokens
        self.context = context
        self.pos = 0

    def _peek(self) -> str | None:
        return self.tokens[self.pos].text if self.pos < len(self.tokens) else None

    def _take(self, expected: str | None = None) -> _Token:
        if self.pos >= len(self.tokens):
            msg = "the expression ends too early"
            raise ExpressionError(msg)
        token = self.tokens[self.pos]
        if expected is not None and token.text != expected:
            msg = f"expected {expected!r}, found {token.text!r}"
            raise ExpressionError(msg)
        self.pos += 1
        return token

    def expression(self) -> Value:
        value = self._and()
        while self._peek() == "||":
            self._take()
            right = self._and()
            left_truth = truthy(value)
            if left_truth is True:
                continue  # `a || b` is a when a is truthy
            value = (
                right if left_truth is False else (UNKNOWN if truthy(right) is not True else right)
            )
        return value

    def _and(self) -> Value:
        value = self._comparison()
        while self._peek() == "&&":
            self._take()
            right = self._comparison()
            left_truth = truthy(value)
            if left_truth is False:
                continue  # `a && b` is a when a is falsy
            value = (
                right if left_truth is True else (UNKNOWN if truthy(right) is not False else right)
            )
        return value

    def _comparison(self) -> Value:
        value = self._unary()
        while self._peek() in {"==", "!=", "<", "<=", ">", ">="}:
            op = self._take().text
            value = _compare(op, value, self._unary())
        return value

    def _unary(self) -> Value:
        if self._peek() == "!":
            self._take()
            truth = truthy(self._unary())
            return UNKNOWN if truth is UNKNOWN else not truth
        return self._primary()

    def _primary(self) -> Value:
        token = self._take()
        if token.text == "(":
            value = self.expression()
            self._take(")")
            return value
        if token.kind == "num":
            return float(token.text)
        if token.kind == "str":
            return token.text
        if token.kind != "name":
            msg = f"unexpected {token.text!r}"
            raise ExpressionError(msg)
        literals: dict[str, Value] = {"true": True, "false": False, "null": None}
        if token.text in literals:
            return literals[token.text]
        if self._peek() == "(":
            return self._call(token.text)
        return self._property_path(token.text)

    def _call(self, name: str) -> Value:
        self._take("(")
        args: list[Value] = []
        while self._peek() != ")":
            args.append(self.expression())
            if self._peek() == ",":
                self._take()
        self._take(")")
        lowered = name.lower()
        if lowered in STATUS_FUNCTIONS:
            return STATUS_FUNCTIONS[lowered]  # a plan assumes every job succeeds
        if any(arg is UNKNOWN for arg in args):
            return UNKNOWN
        if lowered in {"startswith", "endswith", "contains"} and len(args) == 2:
            haystack, needle = _text(args[0]).casefold(), _text(args[1]).casefold()
            if lowered == "startswith":
                return haystack.startswith(needle)
            if lowered == "endswith":
                return haystack.endswith(needle)
            return needle in haystack
        return UNKNOWN  # format(), fromJSON(), hashFiles(), ...: known only at run time

    def _property_path(self, first: str) -> Value:
        parts = [first]
        while self._peek() in {".", "["}:
            if self._take().text == ".":
                parts.append(self._take().text)
            else:
                index = self.expression()
                self._take("]")
                parts.append(_text(index))
        key = ".".join(parts)
        if key in self.context:
            value = self.context[key]
            return value if isinstance(value, str | float | bool) or value is None else UNKNOWN
        return UNKNOWN
