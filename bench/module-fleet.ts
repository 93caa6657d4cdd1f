/**
 * The module-system fleet (bench/fixtures/module-fleet/fleet.nix): N hosts, each `lib.evalModules`
 * over M NixOS-style modules from nixpkgs' own `lib` (bench/fixtures/nixpkgs-lib), with two
 * upstream flakes a bump moves. Written into a directory as a flake of `path:` inputs and locked.
 */
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { $ } from "zx";
import { ROOT } from "./measure.ts";

export interface FleetSize {
  hosts: number;
  modules: number;
}

export const DEFAULT_FLEET: FleetSize = { hosts: 12, modules: 1_600 };

/**
 * - `packages`: the package set's version moves, so every package of every host moves (as a nixpkgs
 *   bump does) and the two sides share no derivation;
 * - `monitoring`: a module that the first three hosts import changes; the others stay.
 */
export type FleetBump = "packages" | "monitoring";

/** Hosts that import the monitoring module (fleet.nix: `n < 3`). */
export const MONITORED_HOSTS = 3;

const FIXTURES = join(ROOT, "bench", "fixtures");
const LIB_TARBALL = join(
  FIXTURES,
  "nixpkgs-lib",
  "nixpkgs.lib-de42d44212d207476489bce163375d8306a26d59.tar.gz",
);

function packagesFlake(version: string): string {
  return `{ outputs = _: { version = "${version}"; }; }\n`;
}

function monitoringFlake(version: string): string {
  return `{
  outputs = _: {
    nixosModules.default = { pkgs, ... }: {
      environment.systemPackages = [ (pkgs.mkPackage "monitoring-agent-${version}" [ ]) ];
      environment.etc."monitoring.conf" = "version = ${version}";
    };
  };
}
`;
}

function fleetFlake(dir: string, size: FleetSize): string {
  return `{
  inputs.nixpkgs.url = "path:${join(dir, "nixpkgs.lib")}";
  inputs.packages.url = "path:${join(dir, "packages")}";
  inputs.monitoring.url = "path:${join(dir, "monitoring")}";
  outputs = { self, nixpkgs, packages, monitoring }: import ./fleet.nix {
    inherit (nixpkgs) lib;
    inherit packages monitoring;
    size = { hosts = ${size.hosts}; modules = ${size.modules}; };
  };
}
`;
}

export interface PreparedFleet {
  /** The fleet's flake, its flake.lock the new lock. */
  flakeDir: string;
  baseLock: string;
  newLock: string;
}

/** The fleet in `dir` (which must exist), locked before and after `bump`. */
export async function prepareModuleFleet(
  dir: string,
  size: FleetSize,
  bump: FleetBump,
  env: NodeJS.ProcessEnv,
): Promise<PreparedFleet> {
  const flakeDir = join(dir, "fleet");
  await mkdir(flakeDir, { recursive: true });
  await mkdir(join(dir, "packages"), { recursive: true });
  await mkdir(join(dir, "monitoring"), { recursive: true });
  await $({ cwd: dir, quiet: true })`tar xzf ${LIB_TARBALL}`;
  await copyFile(join(FIXTURES, "module-fleet", "fleet.nix"), join(flakeDir, "fleet.nix"));
  await writeFile(join(flakeDir, "flake.nix"), fleetFlake(dir, size));
  const upstreams = async (version: { packages: string; monitoring: string }) => {
    await writeFile(join(dir, "packages", "flake.nix"), packagesFlake(version.packages));
    await writeFile(join(dir, "monitoring", "flake.nix"), monitoringFlake(version.monitoring));
  };
  const lock = async (...args: string[]) => {
    await $({
      cwd: flakeDir,
      env,
      quiet: true,
    })`nix --extra-experimental-features ${"nix-command flakes"} flake lock ${args}`;
    return readFile(join(flakeDir, "flake.lock"), "utf8");
  };
  await upstreams({ packages: "1.0", monitoring: "1.0" });
  const baseLock = await lock();
  // The moved upstream's first version stays in the store under the base lock's narHash.
  await upstreams(
    bump === "packages" ? { packages: "1.1", monitoring: "1.0" } : { packages: "1.0", monitoring: "1.1" },
  );
  const newLock = await lock("--update-input", bump);
  return { flakeDir, baseLock, newLock };
}
