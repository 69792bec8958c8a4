#!/bin/bash
# History A/B, three rounds: main before this work (bf8a8d6) against the
# final build (c2b7ee1: the window grows a step at a time, seqs hashed by a
# multiplication, one clone fewer), raw in final/. The runs are hash.sh's.
# Usage: final.sh BEFORE_BIN AFTER_BIN OUT_DIR
exec "$(dirname "$0")/hash.sh" "$@"
