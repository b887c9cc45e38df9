"""Queries over a synthesized template's ``Resources``, shared by the pattern infra tests.

They find resources by what they are (type, handler), never by logical ID.
"""

from __future__ import annotations

from typing import Any


def as_list(value: Any) -> list[Any]:
    """IAM's "one or many": a single action or resource as a one-item list."""
    return value if isinstance(value, list) else [value]


def of_type(resources: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    """Every resource of ``type_name``, by logical ID."""
    return {k: v for k, v in resources.items() if v["Type"] == type_name}


def only(resources: dict[str, Any], type_name: str) -> tuple[str, dict[str, Any]]:
    """The one resource of ``type_name`` (fails if there are none or several)."""
    found = of_type(resources, type_name)
    assert len(found) == 1, (type_name, list(found))
    return next(iter(found.items()))


def function_by_handler(resources: dict[str, Any], handler: str) -> tuple[str, dict[str, Any]]:
    """The one Lambda function whose ``Handler`` is ``handler``."""
    matches = [
        (k, v)
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == handler
    ]
    assert len(matches) == 1, handler
    return matches[0]


def role_of(resources: dict[str, Any], handler: str) -> str:
    """Logical ID of the execution role of the function with ``handler``."""
    _, function = function_by_handler(resources, handler)
    role: str = function["Properties"]["Role"]["Fn::GetAtt"][0]
    return role


def policy_statements(resources: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Every statement of every inline policy attached to the role."""
    statements: list[dict[str, Any]] = []
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_logical_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def role_statements(resources: dict[str, Any], handler: str) -> list[dict[str, Any]]:
    """The policy statements of the role of the function with ``handler``."""
    return policy_statements(resources, role_of(resources, handler))
