"""CloudFormation intrinsic functions, conditions and pseudo parameters.

``resolve(value, context)`` turns a template fragment into plain JSON values the way
CloudFormation does at deploy time. A reference to a resource localstage does not
emulate resolves to an :class:`Unemulated` marker (strings built from one stay
markers), so whoever consumes the value can refuse it with a clear error.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


class IntrinsicError(ValueError):
    """A template uses an intrinsic function wrongly or refers to something missing."""


@dataclass(frozen=True)
class Unemulated:
    """The value of a resource (or of a string built from one) localstage does not create."""

    logical_id: str
    resource_type: str

    def __str__(self) -> str:
        return f"<unemulated {self.resource_type} {self.logical_id}>"


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class ResolveContext(Protocol):
    """What resolving needs from the stack being deployed."""

    stack_name: str
    stack_id: str
    region: str
    account_id: str
    partition: str
    url_suffix: str

    def ref(self, logical_id: str) -> Any: ...

    def get_att(self, logical_id: str, attribute: str) -> Any: ...

    def condition(self, name: str) -> bool: ...

    def stack_output(self, stack_name: str, output_name: str, region: str) -> Any: ...

    def import_value(self, export_name: str) -> Any: ...

    def parameter(self, name: str) -> Any: ...

    def find_in_map(self, map_name: str, top_key: str, second_key: str) -> Any: ...


def pseudo_parameter(name: str, context: ResolveContext) -> Any:
    """Value of an ``AWS::*`` pseudo parameter, or raise ``KeyError``."""
    values: dict[str, Any] = {
        "AWS::Region": context.region,
        "AWS::AccountId": context.account_id,
        "AWS::Partition": context.partition,
        "AWS::URLSuffix": context.url_suffix,
        "AWS::StackName": context.stack_name,
        "AWS::StackId": context.stack_id,
        "AWS::NotificationARNs": [],
        "AWS::NoValue": NO_VALUE,
    }
    return values[name]


def resolve(value: Any, context: ResolveContext) -> Any:
    """Resolve every intrinsic in ``value`` (dicts, lists and scalars)."""
    if isinstance(value, list):
        items = [resolve(item, context) for item in value]
        return [item for item in items if item is not NO_VALUE]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" or key.startswith("Fn::") or key == "Condition":
            return _function(key, argument, context)
    resolved = {key: resolve(item, context) for key, item in value.items()}
    return {key: item for key, item in resolved.items() if item is not NO_VALUE}


def _first_unemulated(values: Iterable[Any]) -> Unemulated | None:
    for value in values:
        if isinstance(value, Unemulated):
            return value
    return None


def _function(name: str, argument: Any, context: ResolveContext) -> Any:
    if name == "Ref":
        return _ref(argument, context)
    if name == "Condition":
        return context.condition(argument)
    if name == "Fn::GetAtt":
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = resolve(argument, context)
        return context.get_att(logical_id, attribute)
    if name == "Fn::Join":
        delimiter, parts = argument
        parts = resolve(parts, context)
        marker = _first_unemulated(parts)
        if marker is not None:
            return marker
        return resolve(delimiter, context).join(_as_string(part) for part in parts)
    if name == "Fn::Sub":
        return _sub(argument, context)
    if name == "Fn::Select":
        index, items = resolve(argument, context)
        marker = _first_unemulated([items])
        if marker is not None:
            return marker
        return items[int(index)]
    if name == "Fn::Split":
        delimiter, source = resolve(argument, context)
        if isinstance(source, Unemulated):
            return source
        return source.split(delimiter)
    if name == "Fn::If":
        condition_name, if_true, if_false = argument
        return resolve(if_true if context.condition(condition_name) else if_false, context)
    if name in {"Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"}:
        return evaluate_condition({name: argument}, context)
    if name == "Fn::ImportValue":
        return context.import_value(resolve(argument, context))
    if name == "Fn::GetStackOutput":
        spec = resolve(argument, context)
        return context.stack_output(
            spec["StackName"], spec["OutputName"], spec.get("Region", context.region)
        )
    if name == "Fn::Base64":
        text = resolve(argument, context)
        return base64.b64encode(_as_string(text).encode()).decode()
    if name == "Fn::GetAZs":
        return [f"{context.region}{zone}" for zone in "abc"]
    if name == "Fn::FindInMap":
        map_name, top_key, second_key = resolve(argument, context)
        return context.find_in_map(map_name, top_key, second_key)
    if name == "Fn::ToJsonString":
        return json.dumps(resolve(argument, context), separators=(",", ":"))
    if name == "Fn::Length":
        return len(resolve(argument, context))
    raise IntrinsicError(f"intrinsic function {name} is not supported by localstage")


def _ref(name: Any, context: ResolveContext) -> Any:
    if not isinstance(name, str):
        raise IntrinsicError(f"Ref takes a name, got {name!r}")
    if name.startswith("AWS::"):
        try:
            return pseudo_parameter(name, context)
        except KeyError:
            raise IntrinsicError(f"unknown pseudo parameter {name}") from None
    try:
        return context.parameter(name)
    except KeyError:
        return context.ref(name)


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise IntrinsicError(f"cannot join a {type(value).__name__} into a string")
    return str(value)


_SUB_VARIABLE = re.compile(r"\$\{(!?)([^}]*)\}")


def _sub(argument: Any, context: ResolveContext) -> Any:
    if isinstance(argument, str):
        template, variables = argument, {}
    else:
        template, raw_variables = argument
        variables = {key: resolve(value, context) for key, value in raw_variables.items()}
    marker: list[Unemulated] = []

    def substitute(match: re.Match[str]) -> str:
        literal, name = match.groups()
        if literal:
            return "${" + name + "}"
        if name in variables:
            value = variables[name]
        elif "." in name and not name.startswith("AWS::"):
            logical_id, attribute = name.split(".", 1)
            value = context.get_att(logical_id, attribute)
        else:
            value = _ref(name, context)
        if isinstance(value, Unemulated):
            marker.append(value)
            return ""
        return _as_string(value)

    result = _SUB_VARIABLE.sub(substitute, template)
    return marker[0] if marker else result


def evaluate_condition(condition: Any, context: ResolveContext) -> bool:
    """Evaluate a condition expression (``Fn::Equals``, ``Fn::And``, ...)."""
    if isinstance(condition, bool):
        return condition
    if not isinstance(condition, dict) or len(condition) != 1:
        raise IntrinsicError(f"not a condition: {condition!r}")
    ((name, argument),) = condition.items()
    if name == "Condition":
        return context.condition(argument)
    if name == "Fn::Equals":
        left, right = (resolve(item, context) for item in argument)
        return bool(_as_comparable(left) == _as_comparable(right))
    if name == "Fn::And":
        return all(evaluate_condition(item, context) for item in argument)
    if name == "Fn::Or":
        return any(evaluate_condition(item, context) for item in argument)
    if name == "Fn::Not":
        return not evaluate_condition(argument[0], context)
    raise IntrinsicError(f"{name} is not a condition function")


def _as_comparable(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def references(value: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str) and not item.startswith("AWS::"):
                found.add(item)
            elif key == "Fn::GetAtt":
                target = item.split(".", 1)[0] if isinstance(item, str) else item[0]
                if isinstance(target, str):
                    found.add(target)
            elif key == "Fn::Sub":
                text = item if isinstance(item, str) else item[0]
                local = set() if isinstance(item, str) else set(item[1])
                for literal, name in _SUB_VARIABLE.findall(text):
                    head = name.split(".", 1)[0]
                    if not literal and not head.startswith("AWS::") and head not in local:
                        found.add(head)
                if not isinstance(item, str):
                    found |= references(item[1])
            else:
                found |= references(item)
    return found
