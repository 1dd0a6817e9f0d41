"""flows/document-triage.yaml in Python: a model classifies a document; urgent ones wait for a human's approval."""

from aiwf_sdk import Choice, Fail, Flow, Llm, Notify, Retry, Succeed, Transform, WaitForEvent, When

done = Succeed("done", output_path="result")
rejected = Fail("rejected", error="Rejected", cause="{{ approval.by }} did not approve escalating the document")
escalate = Transform(
    "escalate",
    value={"label": "{{ label }}", "action": "escalated", "approvedBy": "{{ approval.by }}"},
    result_path="result",
    next=done,
)
file = Transform("file", value={"label": "{{ label }}", "action": "filed"}, result_path="result", next=done)
approve = WaitForEvent(
    "approve",
    timeout_seconds=86400,
    notify=Notify(url="{{ input.approvalUrl }}"),
    result_path="approval",
)

flow = Flow(
    "document-triage",
    description="Classify a document with a model; urgent documents need a human approval.",
).then(
    Llm(
        "classify",
        model="anthropic.claude-3-haiku-20240307-v1:0",
        system="Answer with exactly one word, urgent or routine.",
        prompt="Classify this document: {{ input.text }}",
        max_tokens=5,
        temperature=0,
        result_path="label",
        retry=Retry(max_attempts=3, interval_seconds=2, backoff_rate=2),
    ),
    Choice("route", choices=[When("label", equals="urgent", next=approve)], default=file),
    approve,
    Choice("decided", choices=[When("approval.approved", equals=True, next=escalate)], default=rejected),
    escalate,
    file,
    done,
    rejected,
)

if __name__ == "__main__":
    print(flow.to_mermaid())
