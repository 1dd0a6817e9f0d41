/**
 * The task-control fields (startTask, resumeTask, cancelTask, getFlow, listFlows, putFlow,
 * retireFlow) on the graphql-control Lambda: the function answers `{data}` or
 * `{error: {code, message, details}}`, and an error becomes the field's GraphQL error with the
 * REST `code` as its `errorType` (the same codes as the task API).
 */
import { util } from '@aws-appsync/utils';

export function request(ctx) {
  return {
    operation: 'Invoke',
    payload: {
      arguments: ctx.arguments,
      identity: ctx.identity,
      info: { parentTypeName: ctx.info.parentTypeName, fieldName: ctx.info.fieldName },
    },
  };
}

export function response(ctx) {
  if (ctx.error) {
    util.error(ctx.error.message, ctx.error.type);
  }
  const answer = ctx.result;
  if (answer && answer.error) {
    util.error(answer.error.message, answer.error.code, null, { details: answer.error.details });
  }
  return answer ? answer.data : null;
}
