/**
 * Host impact's progress for the log: which hosts each `nix eval` process evaluates, then one line
 * per host and side as it finishes (`[7/24] nixosConfigurations.web changed (8.1 s)`), so a slow or
 * stuck host shows while it runs, not only when the time budget runs out.
 */

/** A host as `[output, name]`, as lib/impact.ts names it. */
type HostPath = readonly [string, string];

export interface ProgressEvent {
  side: number;
  /** `nixosConfigurations.web`. */
  attr: string;
  seconds?: number;
}

const SHOWN = 6;

function seconds(value: number | undefined): string {
  return value === undefined ? "" : ` (${value.toFixed(1)} s)`;
}

/**
 * @param sideNames how each side is named: side 0 is the base lock, every other side the lock of
 *   the inputs it moves.
 * @param write where each line goes (the log).
 */
export class ImpactProgress {
  private total = 0;
  private finished = 0;
  private readonly listed = new Set<string>();
  /** By side, then attr: the drvPath each side gave. */
  private readonly drvs: Map<string, string>[];

  constructor(
    private readonly sideNames: readonly string[],
    private readonly write: (line: string) => void,
    private readonly attrOf: (path: HostPath) => string,
  ) {
    this.drvs = sideNames.map(() => new Map());
  }

  /** A process listed its hosts of one side (a retry lists what is left: counted once per shard). */
  hosts(shard: { index: number; count: number }, side: number, hosts: readonly HostPath[]): void {
    const key = `${shard.index} ${side}`;
    if (this.listed.has(key)) return;
    this.listed.add(key);
    this.total += hosts.length;
    if (hosts.length === 0) return;
    const names = hosts.slice(0, SHOWN).map(this.attrOf);
    const more = hosts.length > SHOWN ? `, and ${hosts.length - SHOWN} more` : "";
    const process = shard.count > 1 ? `nix eval ${shard.index + 1}/${shard.count}, ` : "";
    this.write(
      `${process}${this.sideName(side)}: evaluating ${hosts.length} host${hosts.length === 1 ? "" : "s"} (${names.join(", ")}${more})`,
    );
  }

  /** A host of one side has its drvPath. */
  done(event: ProgressEvent & { drvPath: string }): void {
    this.drvs[event.side]?.set(event.attr, event.drvPath);
    this.finished++;
    this.write(`${this.counter()} ${event.attr} ${this.outcome(event)}${seconds(event.seconds)}`);
  }

  /** A host of one side failed to evaluate. */
  failed(event: ProgressEvent & { error: string }): void {
    this.finished++;
    const first = event.error.split("\n")[0] ?? "";
    this.write(`${this.counter()} ${event.attr} failed with ${this.sideName(event.side)}: ${first}`);
  }

  private counter(): string {
    return `[${this.finished}/${Math.max(this.total, this.finished)}]`;
  }

  private sideName(side: number): string {
    return side === 0 ? "the base lock" : `the lock for ${this.sideNames[side] ?? `side ${side}`}`;
  }

  /** `changed` once the base and another side are both known, else which lock it was evaluated with. */
  private outcome({ side, attr }: ProgressEvent): string {
    const base = this.drvs[0]?.get(attr);
    const compared = (other: number) => {
      const theirs = this.drvs[other]?.get(attr);
      if (base === undefined || theirs === undefined) return undefined;
      const status = base === theirs ? "unchanged" : "changed";
      return this.sideNames.length > 2 ? `${status} by ${this.sideNames[other]}` : status;
    };
    const statuses =
      side === 0
        ? this.sideNames.flatMap((_, other) => (other === 0 ? [] : [compared(other) ?? []].flat()))
        : [compared(side) ?? []].flat();
    return statuses.length > 0 ? statuses.join(", ") : `evaluated with ${this.sideName(side)}`;
  }
}
