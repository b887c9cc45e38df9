"""IAM policy evaluation as AWS documents it, for the policies this app writes.

No maintained Python package evaluates a request against policies with AWS's rules
(parliament and its kin lint policies; moto's engine treats every condition on a key
the request lacks as satisfied). This module is the small evaluator localstage uses
instead, for identity policies (inside moto's process), trust policies, resource
policies (bucket and queue policies, Lambda permissions) and ``iam:PassRole``.

The rules, from the IAM User Guide:

- An explicit Deny in any applicable statement wins; otherwise an Allow allows;
  otherwise the request is implicitly denied ("Policy evaluation logic",
  https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html).
- ``Action``/``NotAction`` match case-insensitively, ``Resource``/``NotResource``
  case-sensitively, both with the wildcards ``*`` and ``?``
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html,
  .../reference_policies_elements_resource.html).
- Within ``Condition`` every operator and every key must hold (AND); several values for
  one key match if any does (OR); a negated operator holds when the request's value
  matches none of them. Condition key names are case-insensitive.
- A condition on a key absent from the request context is false, except for negated
  operators (``StringNotEquals``, ``ArnNotLike``...), which are then true, and for
  ``...IfExists`` (true) and ``Null`` (tests presence)
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_condition_operators.html).
- ``ForAllValues:`` holds for an absent or empty key and when every request value
  matches; ``ForAnyValue:`` needs at least one request value to match
  (.../reference_policies_condition-single-vs-multi-valued-context-keys.html).

An operator this module does not know raises :class:`UnsupportedConditionError`: an
emulator that silently guessed would let a policy pass locally and fail on AWS.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: Request context: condition key (any case) -> value(s). Booleans and numbers may be
#: given as Python values; they are compared in their IAM string form.
Context = Mapping[str, Any]


class Decision(Enum):
    ALLOW = "Allow"
    DENY = "Deny"  # an explicit Deny
    IMPLICIT_DENY = "ImplicitDeny"


class UnsupportedConditionError(ValueError):
    """A policy uses a condition operator this evaluator does not implement."""


@dataclass(frozen=True)
class Principal:
    """Who makes a request, as a resource or trust policy's ``Principal`` sees it.

    ``arns`` are the ARNs a statement may name for this caller (a role session is
    matched by its role's ARN too); ``service`` the service principal
    (``scheduler.amazonaws.com``) when a service acts; ``account`` the caller's account.
    """

    arns: tuple[str, ...] = ()
    service: str | None = None
    account: str | None = None
    federated: tuple[str, ...] = field(default=())


def evaluate(
    policies: Iterable[Any],
    action: str,
    resource: str | None,
    context: Context | None = None,
    principal: Principal | None = None,
) -> Decision:
    """Decide ``action`` on ``resource`` against ``policies`` (documents, dicts or JSON).

    With ``principal``, statements are matched on their ``Principal``/``NotPrincipal``
    (resource and trust policies); without, those elements must be absent (identity
    policies have none). ``resource=None`` checks at action level (the caller knows no
    resource ARN): every ``Resource`` matches.
    """
    lowered = {str(key).lower(): value for key, value in (context or {}).items()}
    allowed = False
    for statement in _statements(policies):
        if not _applies(statement, action, resource, lowered, principal):
            continue
        if statement.get("Effect") == "Deny":
            return Decision.DENY
        if statement.get("Effect") == "Allow":
            allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def combine(*decisions: Decision) -> Decision:
    """Several policy types of one account: a Deny anywhere wins, one Allow suffices.

    (Identity and resource policies of the same account are a union of grants:
    "Policy evaluation for requests within a single account".)
    """
    if Decision.DENY in decisions:
        return Decision.DENY
    return Decision.ALLOW if Decision.ALLOW in decisions else Decision.IMPLICIT_DENY


def _statements(policies: Iterable[Any]) -> Iterable[Mapping[str, Any]]:
    for policy in policies:
        document = json.loads(policy) if isinstance(policy, (str, bytes)) else policy
        statements = document.get("Statement", []) if isinstance(document, Mapping) else []
        yield from [statements] if isinstance(statements, Mapping) else statements


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def _applies(
    statement: Mapping[str, Any],
    action: str,
    resource: str | None,
    context: Mapping[str, Any],
    principal: Principal | None,
) -> bool:
    if not _element_matches(statement, "Action", action, fold=True):
        return False
    if resource is not None and not _element_matches(statement, "Resource", resource, False):
        return False
    if ("Principal" in statement or "NotPrincipal" in statement) and not _principal_applies(
        statement, principal
    ):
        return False
    return all(
        _condition_holds(operator, key, values, context)
        for operator, keys in (statement.get("Condition") or {}).items()
        for key, values in keys.items()
    )


def _element_matches(statement: Mapping[str, Any], name: str, value: str, fold: bool) -> bool:
    """``Action``/``NotAction`` or ``Resource``/``NotResource`` against ``value``."""
    if name in statement:
        return any(_wildcard(p, value, fold) for p in _listed(statement[name]))
    if f"Not{name}" in statement:
        return not any(_wildcard(p, value, fold) for p in _listed(statement[f"Not{name}"]))
    # Trust policies have no Resource: the role they belong to is the resource.
    return True


def _principal_applies(statement: Mapping[str, Any], principal: Principal | None) -> bool:
    if principal is None:
        return False
    if "Principal" in statement:
        return _principal_matches(statement["Principal"], principal)
    return not _principal_matches(statement["NotPrincipal"], principal)


def _principal_matches(element: Any, principal: Principal) -> bool:
    if element == "*":
        return True
    if not isinstance(element, Mapping):
        return False
    for kind, values in element.items():
        for value in _listed(values):
            if kind == "AWS":
                if value == "*" or value in principal.arns:
                    return True
                # An account (its id or root ARN) names every principal of the account.
                if principal.account and value in (
                    principal.account,
                    f"arn:aws:iam::{principal.account}:root",
                ):
                    return True
            elif (kind == "Service" and value == principal.service) or (
                kind == "Federated" and value in principal.federated
            ):
                return True
    return False


@functools.lru_cache(maxsize=4096)
def _pattern(pattern: str, fold: bool) -> re.Pattern[str]:
    parts = ("." if ch == "?" else ".*" if ch == "*" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.S | (re.I if fold else 0))


def _wildcard(pattern: str, value: str, fold: bool = False) -> bool:
    return _pattern(pattern, fold).fullmatch(value) is not None


def _arn_like(pattern: str, value: str) -> bool:
    # ARNs match segment by segment (partition, service, region, account, resource).
    wanted, actual = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(actual) == 6 and all(map(_wildcard, wanted, actual))


def _string(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _numeric(compare: Callable[[float, float], bool]) -> Callable[[str, str], bool]:
    def match(wanted: str, actual: str) -> bool:
        a, w = _number(actual), _number(wanted)
        return a is not None and w is not None and compare(a, w)

    return match


#: Positive operators: (policy value, request value) -> match. Negated ones map to these.
_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda w, a: w == a,
    "StringEqualsIgnoreCase": lambda w, a: w.lower() == a.lower(),
    "StringLike": _wildcard,
    "ArnEquals": _arn_like,  # ArnEquals accepts wildcards as ArnLike does
    "ArnLike": _arn_like,
    "Bool": lambda w, a: w.lower() == a.lower(),
    "NumericEquals": _numeric(lambda a, w: a == w),
    "NumericLessThan": _numeric(lambda a, w: a < w),
    "NumericLessThanEquals": _numeric(lambda a, w: a <= w),
    "NumericGreaterThan": _numeric(lambda a, w: a > w),
    "NumericGreaterThanEquals": _numeric(lambda a, w: a >= w),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _condition_holds(operator: str, key: str, values: Any, context: Mapping[str, Any]) -> bool:
    wanted = [_string(value) for value in (values if isinstance(values, list) else [values])]
    present = key.lower() in context
    raw = context.get(key.lower())
    actual: Sequence[str] = (
        [_string(item) for item in raw] if isinstance(raw, (list, tuple)) else [_string(raw)]
    )
    qualifier, _, base = operator.rpartition(":")
    if base == "Null":
        # "true": the key must be absent; "false": present.
        return all((value.lower() == "true") != present for value in wanted)
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    negated = base in _NEGATED
    matcher = _MATCHERS.get(_NEGATED.get(base, base))
    if matcher is None or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        raise UnsupportedConditionError(f"condition operator {operator} is not emulated")
    if not present:
        if qualifier == "ForAllValues" or if_exists:
            return True
        return negated and qualifier == ""

    def one(value: str) -> bool:
        matched = any(matcher(w, value) for w in wanted)
        return not matched if negated else matched

    if qualifier == "ForAllValues":
        return all(one(value) for value in actual)
    if qualifier == "ForAnyValue" or not negated:
        return any(one(value) for value in actual)
    # A negated operator on a (rarely) multi-valued key: no request value may match.
    return all(one(value) for value in actual)
