#!/usr/bin/env bash
# Nix 2.26 for the tests: Debian 13 ("trixie")'s nix-bin in a chroot, set up by setup-nix-chroot.sh.
# Usage: bash tests/support/setup-nix-2.26.sh [--unmount]    (prints the shim dir; see setup-nix-chroot.sh)
exec bash "$(dirname "${BASH_SOURCE[0]}")/setup-nix-chroot.sh" trixie 2.26 "$@"
