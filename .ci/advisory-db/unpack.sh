#!/usr/bin/env bash
# Lays the vendored RustSec snapshot out as the git checkout `cargo deny`
# expects under deny.toml's db-path (target/advisory-db by default), so that
# `cargo deny --offline check advisories` needs no network. Run from anywhere;
# prints the database folder. See README.md beside this script.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=${1:-"$here/../../target/advisory-db"}
# cargo-deny names a database's folder after a hash of its URL; this is the
# name for the default one, https://github.com/rustsec/advisory-db.
mkdir -p "$root"
db="$(cd "$root" && pwd)/advisory-db-3157b0e258782691"
date=$(cat "$here/SNAPSHOT_DATE")
commit=$(cat "$here/SNAPSHOT_COMMIT")

rm -rf "$db"
mkdir -p "$db"
tar xzf "$here/advisory-db.tar.gz" -C "$db" --strip-components=1
# cargo-deny opens the folder as a git repository and reads the date of its
# head commit: one commit of the snapshot, dated as the snapshot.
cd "$db"
git init -q
git add -A
GIT_AUTHOR_DATE="$date" GIT_COMMITTER_DATE="$date" \
  git -c user.name=advisory-db -c user.email=advisory-db@localhost \
  -c commit.gpgsign=false commit -q -m "RustSec advisory-db $commit"
git rev-parse HEAD >.git/FETCH_HEAD
echo "$db"
