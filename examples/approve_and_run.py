"""Deploy a flow, run a task, approve its human step, print the result: all from Python.

Notebook-style (`# %%` cells run one by one in VS Code, PyCharm or Jupyter with jupytext), or as a
script against the local stack (`make dev` in another terminal):

    .venv/bin/python examples/approve_and_run.py [path/to/outputs.json]

The flow is examples/document_triage.py (the Python twin of flows/document-triage.yaml). Its
`approve` step POSTs {taskId, stepId, resumeToken, input} to the task's `approvalUrl`; a tiny HTTP
receiver in this script plays the approver and hands the token back to us.
"""

# %% Connect to the stack
import json
import queue
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the examples' flows, also in a notebook

from document_triage import flow

from aiwf_sdk import Client

client = Client.from_outputs(
    sys.argv[1] if len(sys.argv) > 1 and sys.argv[1].endswith(".json") else ".local/outputs.json"
)

# %% Deploy the flow (a new version only if the document changed)
deployed = client.flows.deploy(flow)
print(f"flow {deployed.flow_id} version {deployed.version}", "(new)" if deployed.created else "(unchanged)")
print(flow.to_mermaid())

# %% An approver: a one-request HTTP receiver on loopback that passes on what the wait step sends
notices: "queue.Queue[dict[str, Any]]" = queue.Queue()


class Approver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        notices.put(json.loads(self.rfile.read(int(self.headers["content-length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


receiver = HTTPServer(("127.0.0.1", 0), Approver)
threading.Thread(target=receiver.handle_request, daemon=True).start()
approval_url = f"http://127.0.0.1:{receiver.server_address[1]}/approve"

# %% Start an urgent document (the local model answers the text after `reply:`), and watch it live
task = client.tasks.start(flow.id, {"text": "The server room is flooding. reply: urgent", "approvalUrl": approval_url})
print("started", task.task_id)

for state in client.tasks.watch(task_id=task.task_id, timeout=120):
    print(f"  seq {state.seq}: {state.status} {state.current_step or ''}")
    if state.status == "WAITING":
        # %% Approve: resume the task with the token only the approver received
        notice = notices.get(timeout=60)
        client.tasks.resume(task.task_id, notice["resumeToken"], output={"approved": True, "by": "ada"})
        print(f"  approved {notice['stepId']} as ada")

# %% The result
final = client.tasks.get(task.task_id)
print("status:", final.status)
print("output:", json.dumps(final.output))
receiver.server_close()
