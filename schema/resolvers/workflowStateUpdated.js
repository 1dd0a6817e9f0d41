/**
 * Subscription.workflowStateUpdated on a NONE data source: the server sets the subscription's
 * filter (AppSync enhanced filtering) from the caller's identity, so no argument a client sends,
 * or leaves out, can widen it. A user (Cognito) gets its `custom:tenant`, the API key tenant
 * `default`; an operator (IAM) every tenant.
 *
 * Once a resolver sets a filter, AppSync applies that filter alone and no longer the
 * subscription's arguments, so the arguments (taskId, flowId, status: equality when given) go into
 * the same filter here.
 */
import { util, extensions } from '@aws-appsync/utils';

const ARGUMENT_FIELDS = ['taskId', 'flowId', 'status'];
const DEFAULT_TENANT = 'default';

export function request() {
  return { payload: null };
}

export function response(ctx) {
  const filter = {};
  ARGUMENT_FIELDS.forEach((name) => {
    const value = ctx.args[name];
    if (value !== undefined && value !== null) {
      filter[name] = { eq: value };
    }
  });
  const tenant = callerTenant(ctx.identity);
  if (tenant !== null) {
    filter.tenantId = { eq: tenant };
  }
  if (Object.keys(filter).length > 0) {
    extensions.setSubscriptionFilter(util.transform.toSubscriptionFilter(filter));
  }
  return null;
}

/** The tenant whose tasks the caller may watch, or null for an operator (every tenant). */
function callerTenant(identity) {
  if (!identity) {
    return DEFAULT_TENANT; // the API key: AppSync's identity is null
  }
  if (identity.claims) {
    const tenant = identity.claims['custom:tenant'];
    if (!tenant) {
      util.unauthorized();
    }
    return tenant;
  }
  if (identity.userArn || identity.accountId) {
    return null; // IAM: an operator
  }
  util.unauthorized();
  return null;
}
