"""DeployedTarget against a stand-in stage: queues, buckets, tables, functions, schedules, buses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from localstage.deployed import DeployedTarget

from tests.delivery.conftest import STACK, STAGE


# queues, buckets, tables, functions -------------------------------------------------
def test_queue_helpers_send_count_copy_and_read(target: DeployedTarget) -> None:
    # GIVEN the stage's task queue with two messages
    queue = target.output(STACK, "TaskQueueUrl")
    target.send_message(queue, "one")
    target.send_message(queue, "two")
    assert target.queue_depth(queue) == 2

    # WHEN every message is duplicated
    copied = target.duplicate_messages(queue)

    # THEN there are four, each body twice, and reading deletes them
    assert copied == 2
    assert target.queue_depth(queue) == 4
    assert sorted(target.receive_messages(queue)) == ["one", "one", "two", "two"]
    assert target.queue_depth(queue) == 0


def test_uploads_go_to_the_stage_bucket(target: DeployedTarget) -> None:
    bucket = target.output(STACK, "InputBucketName")
    target.put_object(bucket, "input/b.ndjson", b'{"n": 2}\n')
    target.put_object(bucket, "input/a.ndjson", b'{"n": 1}\n')

    assert target.list_objects(bucket, "input/") == ["input/a.ndjson", "input/b.ndjson"]
    assert target.get_object(bucket, "input/a.ndjson") == b'{"n": 1}\n'
    assert target.get_object(bucket, "input/missing") is None


def test_table_items_are_read_back_as_python_values(target: DeployedTarget) -> None:
    # GIVEN an item written as a worker would
    table = target.output(STACK, "JobTableName")
    target.client("dynamodb").put_item(
        TableName=table, Item={"job_id": {"S": "j-1"}, "attempts": {"N": "2"}}
    )

    # WHEN it is read THEN numbers are numbers and a missing key is None
    assert target.get_item(table, {"job_id": "j-1"}) == {"job_id": "j-1", "attempts": 2}
    assert target.get_item(table, {"job_id": "nope"}) is None
    assert target.scan_items(table) == [{"job_id": "j-1", "attempts": 2}]


@pytest.fixture
def worker(target: DeployedTarget) -> Iterator[str]:
    """A function consuming the task queue through an event source mapping."""
    import io
    import zipfile

    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return event\n")
    iam, lambda_ = target.client("iam"), target.client("lambda")
    role = iam.create_role(RoleName="worker-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    name = f"{STAGE}-{STACK}-Worker"
    lambda_.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=30,
        Environment={"Variables": {"RECORD_WORK_MS": "1"}},
    )
    queue_arn = target.client("sqs").get_queue_attributes(
        QueueUrl=target.output(STACK, "TaskQueueUrl"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    mapping = lambda_.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=name)
    yield name
    lambda_.delete_event_source_mapping(UUID=mapping["UUID"])
    lambda_.delete_function(FunctionName=name)
    iam.delete_role(RoleName="worker-role")


def test_queue_consumers_are_paused_and_resumed_through_their_mapping(
    target: DeployedTarget, worker: str
) -> None:
    # GIVEN the task queue and the mapping that feeds the worker
    queue = target.output(STACK, "TaskQueueUrl")
    lambda_ = target.client("lambda")

    def states() -> list[str]:
        arn = target._queue_arn(queue)
        mappings = lambda_.list_event_source_mappings(EventSourceArn=arn)["EventSourceMappings"]
        return [str(mapping["State"]) for mapping in mappings]

    # WHEN its consumers are paused, then resumed
    target.set_queue_consumers_enabled(queue, False)
    paused = states()
    target.set_queue_consumers_enabled(queue, True)

    # THEN the mapping was Disabled, then Enabled again
    assert (paused, states()) == (["Disabled"], ["Enabled"])


def test_pausing_a_queue_nothing_consumes_is_an_error(target: DeployedTarget) -> None:
    queue = target.client("sqs").create_queue(QueueName="unconsumed")["QueueUrl"]
    with pytest.raises(LookupError, match="no event source mapping consumes"):
        target.set_queue_consumers_enabled(queue, False)


def test_functions_are_invoked_and_described(target: DeployedTarget, worker: str) -> None:
    # moto (without Docker) answers an Invoke with its payload; the target decodes it
    assert target.invoke_function(worker, {"Records": []}) == {"Records": []}
    configuration = target.function_configuration(worker)
    assert configuration == {"Timeout": 30, "Environment": {"Variables": {"RECORD_WORK_MS": "1"}}}


def test_schedules_are_listed_by_group(target: DeployedTarget, worker: str) -> None:
    scheduler = target.client("scheduler")
    scheduler.create_schedule_group(Name=f"{STAGE}-schedules")
    function_arn = target.client("lambda").get_function(FunctionName=worker)["Configuration"][
        "FunctionArn"
    ]
    scheduler.create_schedule(
        Name="s-1",
        GroupName=f"{STAGE}-schedules",
        ScheduleExpression="at(2030-01-01T00:00:00)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": function_arn, "RoleArn": function_arn},
    )
    assert target.list_schedules(f"{STAGE}-schedules") == ["s-1"]


def test_a_bus_is_observed_through_a_temporary_rule_and_queue(target: DeployedTarget) -> None:
    # GIVEN a stage's bus
    bus = target.client("events").create_event_bus(Name=f"{STAGE}-bus")["EventBusArn"]
    bus_name = bus.rsplit("/", 1)[-1]

    # WHEN the target subscribes, then unsubscribes
    queue = target.subscribe_to_bus(bus_name, {"detail-type": ["AccountCreated"]})
    rules = target.client("events").list_rules(EventBusName=bus_name)["Rules"]
    target.unsubscribe_from_bus(bus_name, queue)

    # THEN an observer rule with a queue target existed, and nothing of it is left
    assert [rule["Name"] for rule in rules] == [queue.rsplit("/", 1)[-1]]
    assert rules[0]["Name"].startswith(f"bus-observer-{STAGE}-")
    assert target.client("events").list_rules(EventBusName=bus_name)["Rules"] == []
    urls = target.client("sqs").list_queues(QueueNamePrefix="bus-observer-").get("QueueUrls", [])
    assert urls == []


def test_observers_a_killed_run_left_are_swept(target: DeployedTarget) -> None:
    # GIVEN the stage's bus with an observer no run removed (the run was killed), and
    # the observer of a stage whose name starts with this one's (its bus and queue names
    # start with this stage's prefixes too)
    events, sqs = target.client("events"), target.client("sqs")
    bus_name = f"{STAGE}-EventSourcing-Bus"
    other_label = f"{STAGE}-hotfix"
    other_bus = f"{other_label}-EventSourcing-Bus"
    for name in (bus_name, other_bus):
        events.create_event_bus(Name=name)
    left = target.subscribe_to_bus(bus_name, {"source": ["bank"]})
    other_stage = DeployedTarget(
        other_label, session=target.session, endpoint_url=target.endpoint_url, min_interval=0
    )
    other = other_stage.subscribe_to_bus(other_bus, {"source": ["bank"]})

    # WHEN a sweep keeps anything younger than an hour THEN the fresh observer stays
    assert target.sweep_observers(older_than=3600) == []

    # WHEN the sweep before a destroy removes every age
    deleted = target.sweep_observers(older_than=0)

    # THEN the stage's rule and queue are gone, and the other stage's observer is not
    name = left.rsplit("/", 1)[-1]
    assert deleted == [name, name]
    assert events.list_rules(EventBusName=bus_name)["Rules"] == []
    assert len(events.list_rules(EventBusName=other_bus)["Rules"]) == 1
    remaining = sqs.list_queues(QueueNamePrefix="bus-observer-").get("QueueUrls", [])
    assert remaining == [other]
    other_stage.unsubscribe_from_bus(other_bus, other)
    for name in (bus_name, other_bus):
        events.delete_event_bus(Name=name)
