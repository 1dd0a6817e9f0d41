"""flows/long-job.yaml in Python: start an external job over HTTP, poll it until done, summarise its result."""

from aiwf_sdk import Flow, Http, HttpCheck, Llm, Poll, Retry, Succeed, Transform, Until

flow = Flow(
    "long-job",
    description="Start an external job, poll it until done, summarise its result.",
    steps=[
        Http(
            "submit",
            method="POST",
            url="{{ input.jobsUrl }}",
            body={"document": "{{ input.document }}"},
            timeout_seconds=10,
            retry=Retry(max_attempts=2, interval_seconds=1),
            result_path="job",
        ),
        Poll(
            "wait_done",
            check=HttpCheck(url="{{ input.jobsUrl }}/{{ job.id }}"),
            until=Until("state", equals="done"),
            interval_seconds=3,
            backoff_rate=1.5,
            max_attempts=20,
            result_path="status",
        ),
        Llm(
            "summarise",
            model="anthropic.claude-3-haiku-20240307-v1:0",
            prompt="Summarise this job result in one sentence: {{ status.result }}",
            result_path="summary",
        ),
        Transform(
            "report",
            value={"jobId": "{{ job.id }}", "result": "{{ status.result }}", "summary": "{{ summary }}"},
            result_path="report",
        ),
        Succeed("done", output_path="report"),
    ],
)

if __name__ == "__main__":
    print(flow.to_mermaid())
