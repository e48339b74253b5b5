#!/usr/bin/env bash
# Gateway memory while 50 recipients view a 20-page PDF at once (each loads the viewer and all
# its page images; two widths in use). Prints the gateway's peak RSS, the peak sum of its render
# workers' RSS, the time to the last image and how many requests met a full pool (503) and were
# retried. Needs nginx (the origin). Knob: VIEWERS (default 50).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo test --release --test viewer -- --ignored fifty_viewers_at_once --nocapture 2>&1 | grep '^viewers='
