"""Alarms: every function, the state machine, the publisher's give-up queue and both APIs are watched,
and every alarm notifies the stage's one topic (when the stage enables alarm actions)."""

from __future__ import annotations

from tests.infra.stackmodel import LAMBDA, Stack

METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"


def _alarms(stack: Stack) -> dict[str, dict]:
    return {alarm.inputs["name"]: alarm.inputs for alarm in stack.of_type(METRIC_ALARM)}


def test_every_function_has_an_errors_alarm(stack: Stack) -> None:
    watched = {
        alarm["dimensions"]["FunctionName"]
        for alarm in _alarms(stack).values()
        if alarm["namespace"] == "AWS/Lambda" and alarm["metricName"] == "Errors"
    }
    assert watched == {function.inputs["name"] for function in stack.of_type(LAMBDA)}


def test_failed_tasks_and_undelivered_changes_alarm(stack: Stack) -> None:
    alarms = list(_alarms(stack).values())
    machine = stack.outputs["stateMachineArn"]
    by_metric = {(a["namespace"], a["metricName"]): a for a in alarms}
    assert by_metric[("AWS/States", "ExecutionsFailed")]["dimensions"] == {"StateMachineArn": machine}
    queues = {(a["metricName"], a["dimensions"]["QueueName"]) for a in alarms if a["namespace"] == "AWS/SQS"}
    # Dead-lettered by the publisher (replayed), and given up on by the replayer (final queue).
    assert queues == {
        ("NumberOfMessagesSent", f"aiwf-{stack.stage}-publish-failures"),
        ("ApproximateNumberOfMessagesVisible", f"aiwf-{stack.stage}-publish-failures-dlq"),
    }
    assert ("AWS/ApiGateway", "5XXError") in by_metric and ("AWS/AppSync", "5XXError") in by_metric


def test_alarms_notify_the_stage_topic_as_configured(stack: Stack) -> None:
    topic = stack.one(TOPIC)
    assert stack.outputs["alarmTopicArn"] == topic.outputs["arn"]
    notify = stack.setting("alarmActions")
    for name, alarm in _alarms(stack).items():
        assert name.startswith(f"aiwf-{stack.stage}-")
        assert alarm["alarmActions"] == [topic.outputs["arn"]] == alarm["okActions"], name
        assert alarm["actionsEnabled"] is notify, name
        assert alarm["treatMissingData"] == "notBreaching", name
