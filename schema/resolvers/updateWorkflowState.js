/**
 * Mutation.updateWorkflowState on a NONE data source: the publisher has already committed the
 * state to DynamoDB (the source of truth), so the mutation only echoes it to subscribers.
 *
 * AWSJSON arguments reach resolvers parsed; they are turned back into JSON text here so that
 * every value (a string output too) leaves as exactly the JSON the task recorded.
 */
export function request(ctx) {
  const input = ctx.arguments.input;
  const state = { ...input };
  for (const field of ['waitingFor', 'output']) {
    state[field] = toJsonText(input[field]);
  }
  if (input.error) {
    state.error = { ...input.error, errorDetails: toJsonText(input.error.errorDetails) };
  }
  return { payload: state };
}

export function response(ctx) {
  return ctx.result;
}

function toJsonText(value) {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
