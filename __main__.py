"""AI workflow backend, one stack per stage: `pulumi up -s dev` / `pulumi up -s prod`."""

import pulumi

from infra.alarms import Alarms, AlarmsArgs
from infra.appsync import WorkflowStateApi, WorkflowStateApiArgs
from infra.config import load_stage_config
from infra.durable_engine import DurableEngine, DurableEngineArgs
from infra.flow_registry import FlowRegistry, FlowRegistryArgs, load_flows
from infra.identity import Identity, IdentityArgs
from infra.layer import DependencyLayer
from infra.orchestrator import Orchestrator, OrchestratorArgs
from infra.packaging import build_function_package
from infra.state_publisher import StatePublisher, StatePublisherArgs
from infra.state_store import StateStore
from infra.task_api import TaskApi, TaskApiArgs, TaskRestApi

config = load_stage_config()
code = pulumi.FileArchive(str(build_function_package()))
layers = [DependencyLayer("deps", config).arn]

store = StateStore("state", config)
identity = Identity("users", IdentityArgs(), config)
# The RestApi first: the functions that announce waits give its URL as their callbackUrl.
rest = TaskRestApi("task-api", config)
orchestrator = Orchestrator(
    "orchestrator", OrchestratorArgs(store=store, code=code, layers=layers, task_api_url=rest.url), config
)
durable = DurableEngine(
    "durable", DurableEngineArgs(store=store, code=code, layers=layers, task_api_url=rest.url), config
)
state_api = WorkflowStateApi(
    "state-api",
    WorkflowStateApiArgs(
        store=store,
        state_machine=orchestrator.state_machine,
        code=code,
        layers=layers,
        identity=identity,
        engine_access=[durable.caller_access],
    ),
    config,
)
task_api = TaskApi(
    "task-api",
    TaskApiArgs(
        rest=rest,
        store=store,
        state_machine=orchestrator.state_machine,
        express_state_machine=orchestrator.express_state_machine,
        code=code,
        layers=layers,
        identity=identity,
        api_key_value=state_api.api_key,
        api_key_expires=state_api.api_key_expires,
        engine_access=[durable.caller_access],
    ),
    config,
)
publisher = StatePublisher(
    "state-publisher",
    StatePublisherArgs(
        store=store,
        code=code,
        layers=layers,
        graphql_url=state_api.graphql_url,
        publish_field_arn=state_api.publish_field_arn,
    ),
    config,
)

flow_registry = FlowRegistry(
    "flows", FlowRegistryArgs(store=store, code=code, layers=layers, flows=load_flows()), config
)
alarms = Alarms(
    "alarms",
    AlarmsArgs(
        state_machine=orchestrator.state_machine,
        functions={
            "task-api": task_api.handler,
            "authorizer": task_api.authorizer,
            "process-steps": orchestrator.process,
            "finalize": orchestrator.finalize,
            "status-reconciler": orchestrator.reconciler,
            "state-resolver": state_api.resolver,
            "state-control": state_api.control,
            "state-publisher": publisher.function,
            "state-replayer": publisher.replayer,
            "flow-registrar": flow_registry.registrar,
            **({"durable-orchestrator": durable.function} if durable.function else {}),
        },
        publish_failures=publisher.failures,
        publish_dead_letters=publisher.dead_letters,
        rest_api=task_api.rest_api,
        rest_stage=task_api.stage,
        graphql_api=state_api.api,
    ),
    config,
)

pulumi.export("stage", config.stage)
pulumi.export("taskApiUrl", task_api.url)
pulumi.export("apiKey", task_api.api_key)
pulumi.export("stateMachineArn", orchestrator.state_machine.arn)
pulumi.export("graphqlUrl", state_api.graphql_url)
pulumi.export("realtimeUrl", state_api.realtime_url)
pulumi.export("alarmTopicArn", alarms.topic.arn)
pulumi.export("durableFunctionArn", durable.arn)
pulumi.export("userPoolId", identity.user_pool_id)
pulumi.export("userPoolClientId", identity.client_id)
