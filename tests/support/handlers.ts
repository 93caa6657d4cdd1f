/**
 * The fake GitHub's own REST handlers with a fault around them, for in-process tests that need a
 * race or a lost answer at an exact request: the fake still applies the request as GitHub would.
 */
import type { Handler, HandlerContext } from "../fake-github/index.ts";
import { handlers } from "../fake-github/rest.ts";

function real(operationId: string): Handler {
  const handler = handlers[operationId];
  if (handler === undefined) throw new Error(`the fake has no ${operationId} handler`);
  return handler;
}

/**
 * `operationId`'s handler, running the hook `before()` returns (when any) inside the fake just before
 * it: a concurrent writer moving a branch between our read and our write.
 */
export function runningFirst(
  operationId: string,
  before: () => ((ctx: HandlerContext) => Promise<void>) | undefined,
): Handler {
  const handler = real(operationId);
  return async (ctx) => {
    await before()?.(ctx);
    return handler(ctx);
  };
}

/**
 * `operationId`'s handler, whose answer is dropped after GitHub applied the request each time
 * `lose()` says so (a timeout, a dropped connection): the client then asks again.
 */
export function losingAnswer(operationId: string, lose: () => boolean): Handler {
  const handler = real(operationId);
  return async (ctx) => {
    const reply = await handler(ctx);
    return lose() ? { ...reply, drop: true } : reply;
  };
}
