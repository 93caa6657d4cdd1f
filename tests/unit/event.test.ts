import { expect, test } from "bun:test";
import { UsageError } from "../../lib/core/errors.ts";
import { type EventRequest, requestFromEvent } from "../../lib/core/event.ts";
import { splitNames } from "../../lib/core/inputs.ts";

const sha = "0123456789abcdef0123456789abcdef01234567";

/** A repository_dispatch event body with overrides for its client_payload. */
function dispatchEvent(client_payload: Record<string, unknown>): unknown {
  return { action: "flake-input-updated", client_payload };
}

interface GoodCase {
  name: string;
  event: string;
  body: unknown;
  request: EventRequest;
}
const good: GoodCase[] = [
  {
    name: "dispatch naming the input",
    event: "repository_dispatch",
    body: dispatchEvent({ input: "nixfleet", sha, repository: "acme/nixfleet", ref: "refs/heads/main" }),
    request: {
      event: "repository_dispatch",
      inputs: ["nixfleet"],
      rev: sha,
      repository: "acme/nixfleet",
      ref: "refs/heads/main",
    },
  },
  {
    name: "dispatch for a tag push carries the tag's ref",
    event: "repository_dispatch",
    body: dispatchEvent({ repository: "inspr-at/janus", sha, ref: "refs/tags/rust-engine-v0.1.34" }),
    request: {
      event: "repository_dispatch",
      inputs: [],
      rev: sha,
      repository: "inspr-at/janus",
      ref: "refs/tags/rust-engine-v0.1.34",
    },
  },
  {
    name: "dispatch naming only the repository",
    event: "repository_dispatch",
    body: dispatchEvent({ repository: "acme/nixfleet", sha }),
    request: { event: "repository_dispatch", inputs: [], rev: sha, repository: "acme/nixfleet" },
  },
  {
    name: "button with inputs and rev",
    event: "workflow_dispatch",
    body: { inputs: { inputs: "nixfleet", rev: sha } },
    request: { event: "workflow_dispatch", inputs: ["nixfleet"], rev: sha },
  },
  {
    name: "button with several inputs, no rev",
    event: "workflow_dispatch",
    body: { inputs: { inputs: "a, b c", rev: "" } },
    request: { event: "workflow_dispatch", inputs: ["a", "b", "c"] },
  },
  {
    name: "button with nothing",
    event: "workflow_dispatch",
    body: { inputs: null },
    request: { event: "workflow_dispatch", inputs: [] },
  },
  {
    name: "nightly",
    event: "schedule",
    body: { schedule: "0 3 * * *" },
    request: { event: "schedule", inputs: [] },
  },
];
test.each(good)("$name", ({ event, body, request }) => {
  expect(requestFromEvent(event, body)).toStrictEqual(request);
});

interface BadCase {
  name: string;
  event: string;
  body: unknown;
  message: RegExp;
}
const bad: BadCase[] = [
  { name: "no payload", event: "repository_dispatch", body: {}, message: /client_payload is malformed/ },
  {
    name: "payload is a string",
    event: "repository_dispatch",
    body: { client_payload: "x" },
    message: /malformed/,
  },
  {
    name: "short sha",
    event: "repository_dispatch",
    body: dispatchEvent({ input: "a", sha: "abc1234" }),
    message: /40 lowercase hex/,
  },
  {
    name: "uppercase sha",
    event: "repository_dispatch",
    body: dispatchEvent({ input: "a", sha: sha.toUpperCase() }),
    message: /40 lowercase hex/,
  },
  {
    name: "sha is a number",
    event: "repository_dispatch",
    body: dispatchEvent({ input: "a", sha: 42 }),
    message: /malformed/,
  },
  {
    name: "input with shell characters",
    event: "repository_dispatch",
    body: dispatchEvent({ input: "a;rm -rf /", sha }),
    message: /flake input name/,
  },
  {
    name: "input with a path",
    event: "repository_dispatch",
    body: dispatchEvent({ input: "../x", sha }),
    message: /flake input name/,
  },
  {
    name: "repository that is not OWNER/REPO",
    event: "repository_dispatch",
    body: dispatchEvent({ repository: "a/b/c", sha }),
    message: /OWNER\/REPO/,
  },
  {
    name: "neither input nor repository",
    event: "repository_dispatch",
    body: dispatchEvent({ sha }),
    message: /neither 'input' nor 'repository'/,
  },
  {
    name: "ref with ..",
    event: "repository_dispatch",
    body: dispatchEvent({ input: "a", sha, ref: "refs/../../x" }),
    message: /git ref/,
  },
  {
    name: "button rev not a sha",
    event: "workflow_dispatch",
    body: { inputs: { inputs: "a", rev: "main" } },
    message: /'rev' input/,
  },
  {
    name: "button input with backticks",
    event: "workflow_dispatch",
    body: { inputs: { inputs: "`id`" } },
    message: /input name/,
  },
  {
    name: "unknown event",
    event: "pull_request_target",
    body: {},
    message: /does not handle the 'pull_request_target' event/,
  },
];
test.each(bad)("refuses $name", ({ event, body, message }) => {
  let caught: unknown;
  try {
    requestFromEvent(event, body);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(UsageError);
  const text = caught instanceof Error ? caught.message : "";
  expect(text).toMatch(message);
  expect(text).not.toContain("\n");
});

test("splitNames accepts commas, spaces and newlines", () => {
  expect(splitNames(" a,b  c\nd ,, ")).toStrictEqual(["a", "b", "c", "d"]);
});
