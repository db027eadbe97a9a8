#!/usr/bin/env bash
# The floor: what any backup must at least do. `git clone --mirror` + `git lfs fetch --all` of every repository,
# CONCURRENCY at a time, largest first (the task's order), nothing else (no verify, no archive, no upload; the
# mirrors are left in place and removed by the bench after the clock stops).
# env: LIST (file: one "<index> <clone url>" line per repository), CONCURRENCY, WORK (empty folder); the
#      Authorization header comes through GIT_CONFIG_COUNT/KEY/VALUE, as the task gives it.
set -uo pipefail
export GIT_TERMINAL_PROMPT=0
one() {
  local dir="$WORK/$1"
  git clone --mirror --no-progress "$2" "$dir" || return 1
  if [ -n "$(git -C "$dir" for-each-ref --count=1)" ]; then (cd "$dir" && git lfs fetch --all origin) || return 1; fi
}
while read -r index url; do
  while [ "$(jobs -rp | wc -l)" -ge "$CONCURRENCY" ]; do wait -n; done
  { one "$index" "$url" || echo "$index" >> "$WORK/failed.txt"; } &
done < "$LIST"
wait
if [ -s "$WORK/failed.txt" ]; then echo "failed: $(tr '\n' ' ' < "$WORK/failed.txt")" >&2; exit 1; fi
