#!/usr/bin/env bash
# Nix 2.34 for the tests: Debian unstable ("sid")'s nix-bin in a chroot, set up by setup-nix-chroot.sh.
# Usage: bash tests/support/setup-nix-2.34.sh [--unmount]    (prints the shim dir; see setup-nix-chroot.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/setup-nix-chroot.sh" sid 2.34 "$@"
