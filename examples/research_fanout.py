"""flows/research-fanout.yaml in Python: one model call per question, in parallel, then a summary."""

from aiwf_sdk import Branch, Choice, Fail, Flow, ForEach, Llm, Parallel, Succeed, Transform, When

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"

answered = Succeed("answered", output_path="answer")
unanswered = Fail("unanswered", error="NoAnswer", cause="The model could not answer: {{ item }}")
one_question = Branch(
    [
        Llm(
            "answer",
            model=MODEL,
            system="Answer in one short sentence, or with the word unknown.",
            prompt="{{ item }}",
            result_path="answer",
        ),
        Choice("check", choices=[When("answer", equals="unknown", next=unanswered)], default=answered),
        answered,
        unanswered,
    ]
)

flow = Flow(
    "research-fanout",
    description="Ask a model every question in parallel and summarise the answers.",
    steps=[
        Parallel(
            "ask",
            max_concurrency=4,
            on_branch_error="continue",
            for_each=ForEach(items="{{ input.questions }}", branch=one_question),
            result_path="answers",
        ),
        Transform(
            "collect",
            value={
                "answered": "{{ answers | selectattr('output', 'defined') | map(attribute='output') | list }}",
                "failed": "{{ answers | selectattr('error', 'defined') | map(attribute='error') | list }}",
            },
            result_path="collected",
        ),
        Llm(
            "summarise",
            model=MODEL,
            prompt="Summarise these answers in two sentences: {{ collected.answered | join(' ') }}",
            result_path="summary",
        ),
        Transform(
            "report",
            value={
                "summary": "{{ summary }}",
                "answers": "{{ collected.answered }}",
                "errors": "{{ collected.failed }}",
            },
            result_path="report",
        ),
        Succeed("done", output_path="report"),
    ],
)

if __name__ == "__main__":
    print(flow.to_mermaid())
