#!/bin/bash
# Builds main.rs against the vendored sled with tunables.patch applied (in a
# temporary directory, nothing in the tree changes), then runs each
# configuration twice on CPU 0, each with a fresh database.
# Usage: docs/bench/sled-micro/run.sh [GROUP ...]   (default: 200)
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "$here/../../../vendor/sled" "$work/sled"
(cd "$work/sled" && patch -s -p1 < "$here/tunables.patch")
mkdir -p "$work/micro/src"
cp "$here/main.rs" "$work/micro/src/main.rs"
cat > "$work/micro/Cargo.toml" <<TOML
[package]
name = "sled-micro"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
sled = { path = "$work/sled" }
[workspace]
TOML
(cd "$work/micro" && cargo build --release --quiet)
bin=$work/micro/target/release/sled-micro
groups=${*:-200}
for round in 1 2; do
  for g in $groups; do
    for cfg in "16 256 0" "16 256 1" "16 32 0" "16 32 1" "32 32 0" "64 32 1" "8 32 0"; do
      set -- $cfg
      rm -rf "$work/db"
      SLED_LEAF=$1 SLED_INDEX=$2 SLED_APPEND=$3 taskset -c 0 "$bin" "$work/db" 351000 "$g"
    done
    rm -rf "$work/db"
    NOHEAD=1 taskset -c 0 "$bin" "$work/db" 351000 "$g"
  done
done
