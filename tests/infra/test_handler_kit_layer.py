"""The handler_kit layer: one per stack, on every function after Powertools."""

from __future__ import annotations

from typing import Any

import pytest

from tests.infra.conftest import SynthesizedStage


def _service_functions(template: dict[str, Any]) -> list[dict[str, Any]]:
    """Properties of the app's own functions (not CDK's helpers, e.g. S3 notifications)."""
    return [
        props
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Function"
        and "POWERTOOLS_SERVICE_NAME"
        in (props := resource.get("Properties", {})).get("Environment", {}).get("Variables", {})
    ]


def _layers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::LayerVersion"
    }


def test_each_stack_has_one_layer_for_python_314_on_arm64(ephemeral: SynthesizedStage) -> None:
    # GIVEN every stack of a stage WHEN synthesized THEN one layer in each stack that has
    # functions (none elsewhere), built for their runtime and architecture, unnamed
    stacks_with_functions = 0
    for stack_id in ephemeral.templates:
        template = ephemeral.template_json(stack_id)
        layers = _layers(template)
        if not _service_functions(template):
            assert layers == {}, stack_id
            continue
        stacks_with_functions += 1
        assert len(layers) == 1, stack_id
        (layer,) = layers.values()
        props = layer["Properties"]
        assert props["CompatibleRuntimes"] == ["python3.14"]
        assert props["CompatibleArchitectures"] == ["arm64"]
        assert "LayerName" not in props
    assert stacks_with_functions == len(ephemeral.stage.pattern_stacks)


@pytest.mark.parametrize(("kind", "policy"), [("ephemeral", "Delete"), ("persistent", "Retain")])
def test_layer_versions_are_kept_only_on_persistent_stages(
    kind: str, policy: str, request: pytest.FixtureRequest
) -> None:
    # GIVEN a stage of each kind WHEN synthesized THEN its layers follow its removal policy
    stage: SynthesizedStage = request.getfixturevalue(kind)
    for stack_id in stage.templates:
        for layer in _layers(stage.template_json(stack_id)).values():
            assert layer["DeletionPolicy"] == policy
            assert layer["UpdateReplacePolicy"] == policy


def test_every_function_uses_powertools_then_handler_kit(
    ephemeral: SynthesizedStage,
) -> None:
    # GIVEN every function of the app WHEN synthesized THEN its layers are the
    # pinned Powertools layer, then its stack's handler_kit layer
    checked = 0
    for stack_id in ephemeral.templates:
        template = ephemeral.template_json(stack_id)
        for props in _service_functions(template):
            (layer_id,) = _layers(template)
            powertools, handler_kit = props["Layers"]
            assert "AWSLambdaPowertoolsPythonV3" in str(powertools["Fn::Join"])
            assert handler_kit == {"Ref": layer_id}
            checked += 1
    # Every function of every pattern stack: at least one per pattern.
    assert checked >= len(ephemeral.stage.pattern_stacks) > 0
