/**
 * Two ways to get a fake GitHub.
 *
 * `fakeGitHub()`: the one shared by every end-to-end test in a process. Only one process can listen
 * on 443, which Nix needs, so it is a singleton: started on first use, cleared between tests with
 * `reset()`, gone with the process (its listeners do not keep a process alive; its temp dirs are
 * removed at exit, or by the next test process where `bun test` skips exit handlers).
 *
 *   const fake = await fakeGitHub();
 *   beforeEach(() => fake.reset());
 *   afterEach(() => fake.assertNoViolations());
 *
 * `localFakeGitHub()`: a fake of one's own, REST only on an ephemeral loopback port, for the fast
 * tier. No root, no 443, no certificate; any number of them run side by side, in one process or many.
 *
 *   let fake: FakeGitHub;
 *   beforeAll(async () => { fake = await localFakeGitHub(); });
 *   afterAll(() => fake.stop());
 */
import { FakeGitHub, type FakeGitHubOptions } from "./server.ts";

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

/** A new fake of the caller's own: REST on an ephemeral port, no HTTPS listener; `stop()` it when done. */
export function localFakeGitHub(options: Omit<FakeGitHubOptions, "httpsPort"> = {}): Promise<FakeGitHub> {
  return FakeGitHub.start({ ...options, httpsPort: false });
}
