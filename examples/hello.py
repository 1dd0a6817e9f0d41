"""flows/hello.yaml in Python: shape the input, branch on it, succeed with a greeting."""

from aiwf_sdk import Choice, Fail, Flow, Succeed, Transform, When

done = Succeed("done", output_path="doc")
reject = Fail("reject", error="NoName", cause="Cannot greet {{ input.name }}")

flow = Flow(
    "hello",
    description='Greets by name; a name of "nobody" fails on purpose.',
    steps=[
        Transform(
            "prepare",
            value={"greeting": "Hello, {{ input.name }}!", "name": "{{ input.name }}"},
            result_path="doc",
        ),  # no next: it goes on to the step after it
        Choice("check", choices=[When("doc.name", equals="nobody", next=reject)], default=done),
        done,
        reject,
    ],
)

if __name__ == "__main__":
    print(flow.to_mermaid())
