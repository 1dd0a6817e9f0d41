"""flows/doc-triage.yaml in Python: every step type in one flow (classify, approve, fan out, submit, poll)."""

from aiwf_sdk import (
    Branch,
    Choice,
    Fail,
    Flow,
    ForEach,
    Http,
    HttpCheck,
    Llm,
    Notify,
    Parallel,
    Poll,
    Retry,
    Succeed,
    Task,
    Transform,
    Until,
    WaitForEvent,
    When,
)

reject = Fail("reject", error="Rejected", cause="{{ doc.text }} was not approved")
fanout = Parallel(
    "fanout",
    max_concurrency=4,
    on_branch_error="continue",
    for_each=ForEach(
        items="{{ doc.sections }}",
        branch=Branch(
            [
                Task("count", handler="word_count", input={"text": "{{ item }}"}, result_path="stats"),
                Succeed("done", output_path="stats"),
            ]
        ),
    ),
    result_path="sections",
)
approve = WaitForEvent(
    "approve",
    timeout_seconds=3600,
    heartbeat_seconds=600,
    notify=Notify(url="{{ input.approvalUrl }}"),
    result_path="approval",
    catch=reject,
)

flow = Flow(
    "doc-triage",
    description="Classify, approve if urgent, analyse sections in parallel, poll for the report.",
    timeout_seconds=86400,
    steps=[
        Transform(
            "prepare",
            value={"text": "{{ input.text }}", "lang": "en", "sections": "{{ input.sections }}"},
            result_path="doc",
        ),
        Llm(
            "classify",
            model="anthropic.claude-3-haiku-20240307-v1:0",
            system="Answer with one word, urgent or routine.",
            prompt="Classify: {{ doc.text }}",
            max_tokens=5,
            result_path="label",
            retry=Retry(max_attempts=3, interval_seconds=2, backoff_rate=2),
        ),
        Choice("route", choices=[When("label", equals="urgent", next=approve)], default=fanout),
        approve,
        Choice("approved", choices=[When("approval.approved", equals=True, next=fanout)], default=reject),
        fanout,
        Http(
            "submit",
            method="POST",
            url="{{ input.reportUrl }}",
            body={"taskId": "{{ taskId }}", "label": "{{ label }}", "sections": "{{ sections }}"},
            timeout_seconds=10,
            result_path="job",
            retry=Retry(max_attempts=2, interval_seconds=1),
        ),
        Poll(
            "report",
            check=HttpCheck(url="{{ input.reportUrl }}/{{ job.id }}"),
            until=Until("state", equals="done"),
            interval_seconds=10,
            backoff_rate=1.5,
            max_attempts=30,
            result_path="report",
        ),
        Succeed("done", output_path="report"),
        reject,
    ],
)

if __name__ == "__main__":
    print(flow.to_mermaid())
