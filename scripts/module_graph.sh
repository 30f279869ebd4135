#!/usr/bin/env bash
# Prints, for each folder of src/, the other folders its files import (`use crate::X` and
# `crate::X::` paths), one line per folder: the module graph the README's Layout describes.
# Run from the repository root: scripts/module_graph.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in src/*/; do
    name=$(basename "$dir")
    deps=$( (grep -rhoE 'crate::[a-z_]+' "$dir" --include='*.rs' || true) \
        | sed 's/crate:://' | sort -u | (grep -vx "$name" || true) | tr '\n' ' ')
    printf '%-12s -> %s\n' "$name" "$deps"
done
