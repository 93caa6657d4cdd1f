/**
 * The fake GitHub shared by every integration test in a process. Only one process can listen on
 * 443, which Nix needs, so the fake is a singleton: started on first use, cleared between tests with
 * `reset()`, gone with the process (its listeners do not keep a process alive; its temp dirs are
 * removed at exit, or by the next test process where `bun test` skips exit handlers).
 *
 *   const fake = await fakeGitHub();
 *   beforeEach(() => fake.reset());
 *   afterEach(() => fake.assertNoViolations());
 */
import { FakeGitHub } from "./server.ts";

export type { Dispatch, Handler, HandlerContext, Reply } from "./rest.ts";
export type { FakeGitHubOptions, Fault, Listener, RecordedRequest, Violation } from "./server.ts";
export { DEFAULT_TOKEN, FakeGitHub } from "./server.ts";
export type { CreateRepoOptions, FakeRepo, Files, PullState, PushOptions } from "./state.ts";
export { type TestCertificate, testCertificate } from "./tls.ts";

let starting: Promise<FakeGitHub> | undefined;

/** The process-wide fake GitHub (REST on a random loopback port, HTTPS for Nix on 443). */
export function fakeGitHub(): Promise<FakeGitHub> {
  starting ??= FakeGitHub.start();
  return starting;
}
