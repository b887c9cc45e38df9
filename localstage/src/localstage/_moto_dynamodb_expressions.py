"""Inside the moto process: each DynamoDB expression text is tokenized once.

A stage sends the same few expressions thousands of times (a fan-out's counter update,
a lease's condition) with different values. moto tokenizes and parses every one from
its text on every request, an update expression twice per item (once to check the
request, once to apply it): about a tenth of the moto process's CPU in the e2e suite.
Here the parts that depend on the text alone are kept, keyed by the text:

- an update expression's syntax tree (``UpdateExpressionParser.make``). moto's
  validator deep-copies the tree before it puts the request's names and values into it,
  and the request checks only read it, so one tree can serve every request;
- a condition expression's tokens (``ConditionExpressionParser._lex_condition_expression``).
  Names and values are looked up after tokenizing, per request, as before; each call
  gets a new deque of the (immutable) tokens.

An expression moto refuses raises as before: a failure is never cached.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import Any

from localstage._moto_patch import Patch

#: Distinct expression texts kept; a stage uses a few dozen.
CACHED_EXPRESSIONS = 1024


def patches() -> list[Patch]:
    """Patches of moto's DynamoDB expression parsers."""
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    make_tree = UpdateExpressionParser.make  # the classmethod, bound to the class
    lex = ConditionExpressionParser._lex_condition_expression

    @functools.lru_cache(maxsize=CACHED_EXPRESSIONS)
    def update_tree(expression: str) -> Any:
        return make_tree(expression)

    @functools.lru_cache(maxsize=CACHED_EXPRESSIONS)
    def condition_tokens(expression: str) -> tuple[Any, ...]:
        parser = ConditionExpressionParser(expression, None, None)
        return tuple(lex(parser))

    def make(_cls: Any, expression_str: str) -> Any:
        return update_tree(expression_str)

    def lex_condition_expression(parser: Any) -> deque[Any]:
        return deque(condition_tokens(parser.condition_expression))

    return [
        Patch(UpdateExpressionParser, "make", classmethod(make)),
        Patch(ConditionExpressionParser, "_lex_condition_expression", lex_condition_expression),
    ]
