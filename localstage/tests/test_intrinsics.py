"""Intrinsic functions resolve as CloudFormation resolves them."""

from __future__ import annotations

from typing import Any

import pytest

from localstage.intrinsics import IntrinsicError, Unemulated, references, resolve


class FakeStack:
    """An in-memory stack: resources, conditions, other stacks' outputs, exports."""

    stack_name = "pr-1-Jobs"
    stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/pr-1-Jobs/1"
    region = "us-east-1"
    account_id = "123456789012"
    partition = "aws"
    url_suffix = "amazonaws.com"

    refs: dict[str, Any] = {
        "Table": "pr-1-Jobs-Table-ABC",
        "Alarm": Unemulated("Alarm", "AWS::CloudWatch::Alarm"),
    }
    attributes = {
        ("Table", "Arn"): "arn:aws:dynamodb:us-east-1:123456789012:table/pr-1-Jobs-Table-ABC"
    }
    conditions = {"IsProd": False, "HasTable": True}

    def ref(self, logical_id: str) -> Any:
        return self.refs[logical_id]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self.attributes[(logical_id, attribute)]

    def condition(self, name: str) -> bool:
        return self.conditions[name]

    def stack_output(self, stack_name: str, output_name: str, region: str) -> Any:
        return f"{stack_name}:{output_name}:{region}"

    def import_value(self, export_name: str) -> Any:
        return {"SharedTopic": "arn:aws:sns:us-east-1:123456789012:shared"}[export_name]

    def parameter(self, name: str) -> Any:
        if name == "Env":
            return "pr-1"
        raise KeyError(name)

    def find_in_map(self, map_name: str, top_key: str, second_key: str) -> Any:
        return {"Sizes": {"pr-1": {"Memory": 256}}}[map_name][top_key][second_key]


@pytest.mark.parametrize(
    ("fragment", "expected"),
    [
        ({"Ref": "Table"}, "pr-1-Jobs-Table-ABC"),
        ({"Ref": "AWS::Region"}, "us-east-1"),
        ({"Ref": "Env"}, "pr-1"),
        (
            {"Fn::GetAtt": ["Table", "Arn"]},
            "arn:aws:dynamodb:us-east-1:123456789012:table/pr-1-Jobs-Table-ABC",
        ),
        (
            {"Fn::GetAtt": "Table.Arn"},
            "arn:aws:dynamodb:us-east-1:123456789012:table/pr-1-Jobs-Table-ABC",
        ),
        ({"Fn::Join": ["-", ["a", {"Ref": "AWS::AccountId"}, "b"]]}, "a-123456789012-b"),
        (
            {"Fn::Sub": "${AWS::StackName}/${Table}/${Table.Arn}"},
            "pr-1-Jobs/pr-1-Jobs-Table-ABC/arn:aws:dynamodb:us-east-1:123456789012:table/pr-1-Jobs-Table-ABC",
        ),
        ({"Fn::Sub": ["${Name}-x-${!Literal}", {"Name": {"Ref": "Env"}}]}, "pr-1-x-${Literal}"),
        ({"Fn::Select": [1, {"Fn::Split": [",", "a,b,c"]}]}, "b"),
        ({"Fn::If": ["IsProd", "big", "small"]}, "small"),
        ({"Fn::ImportValue": "SharedTopic"}, "arn:aws:sns:us-east-1:123456789012:shared"),
        (
            {
                "Fn::GetStackOutput": {
                    "StackName": "pr-1-Alerts",
                    "Region": {"Ref": "AWS::Region"},
                    "OutputName": "TopicArn",
                }
            },
            "pr-1-Alerts:TopicArn:us-east-1",
        ),
        ({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Memory"]}, 256),
        ({"Fn::Equals": [{"Ref": "Env"}, "pr-1"]}, True),
        ({"Fn::Not": [{"Condition": "HasTable"}]}, False),
    ],
)
def test_intrinsics_resolve_like_cloudformation(fragment: dict[str, Any], expected: Any) -> None:
    # WHEN the fragment is resolved in the stack
    resolved = resolve(fragment, FakeStack())

    # THEN it has CloudFormation's value
    assert resolved == expected


def test_no_value_removes_the_property() -> None:
    # GIVEN a property that only exists in production
    properties = {"Name": "x", "Size": {"Fn::If": ["IsProd", 10, {"Ref": "AWS::NoValue"}]}}

    # THEN outside production it is gone, as CloudFormation drops it
    assert resolve(properties, FakeStack()) == {"Name": "x"}


def test_a_string_built_from_an_unemulated_resource_stays_unemulated() -> None:
    # WHEN an ARN is joined from a resource localstage skips
    resolved = resolve({"Fn::Join": ["", ["arn:", {"Ref": "Alarm"}]]}, FakeStack())

    # THEN the result says so instead of being a plausible-looking string
    assert resolved == Unemulated("Alarm", "AWS::CloudWatch::Alarm")


def test_an_unknown_function_is_an_error() -> None:
    with pytest.raises(IntrinsicError, match="Fn::Transform"):
        resolve({"Fn::Transform": {}}, FakeStack())


def test_references_list_what_a_resource_depends_on() -> None:
    fragment = {
        "A": {"Ref": "Table"},
        "B": {"Fn::GetAtt": ["Queue", "Arn"]},
        "C": {"Fn::Sub": ["${Topic.Arn}-${Local}-${AWS::Region}", {"Local": {"Ref": "Bucket"}}]},
    }
    assert references(fragment) == {"Table", "Queue", "Topic", "Bucket"}
