# Legs: the named, timed parts of a CI run (sourced by .ci/run).
#
#   leg NAME -- COMMAND [ARGS...]   run COMMAND (a program or a shell function) as leg NAME:
#                                   a header and a footer naming it, its status and duration
#                                   recorded; a failing leg does not stop the others
#   leg_async [--stream] NAME -- COMMAND...
#                                   the same in the background, at most CI_LEG_JOBS (2) at once:
#                                   its output printed whole when it ends; --stream: printed as it
#                                   comes, the others' held back until this one ends
#   legs_wait                       wait for the background legs
#   leg_note TEXT                   (inside a leg) versions etc. shown in the summary
#   pytest_passed PYTHON ARGS...    pytest that fails when no test passed (all skipped included)
#   legs_summary                    the table of legs; returns 1 when any leg failed

LEG_RESULTS=()

leg() {
  local name=$1 start=$SECONDS rc status note free
  shift
  [ "${1:-}" = -- ] && shift
  LEG_NOTE_FILE=$(mktemp)
  export LEG_NOTE_FILE
  printf '\n== leg: %s ==\n' "$name"
  set +e
  (set -euo pipefail; "$@")
  rc=$?
  set -e
  note=$(cat "$LEG_NOTE_FILE")
  rm -f "$LEG_NOTE_FILE"
  status=ok
  [ "$rc" = 0 ] || status="FAILED (exit $rc)"
  free=$(_disk_free)
  printf '== leg: %s: %s in %s%s; %s free on disk ==\n' "$name" "$status" \
    "$(_duration $((SECONDS - start)))" "${note:+ ($note)}" "$free"
  LEG_RESULTS+=("$name"$'\t'"$status"$'\t'"$(_duration $((SECONDS - start)))"$'\t'"$free"$'\t'"$note")
}

LEG_JOBS=${CI_LEG_JOBS:-2}
LEG_DIR=  # the background legs' output and results (made by the first, removed by legs_wait)
LEG_RUNNING=()  # "pid streamed(0/1) name" of the background legs
LEG_HELD=()     # ended legs whose output waits for the streamed leg to end

leg_async() {
  local stream=0 name
  if [ "${1:-}" = --stream ]; then stream=1; shift; fi
  name=$1
  shift
  [ "${1:-}" = -- ] && shift
  while [ "${#LEG_RUNNING[@]}" -ge "$LEG_JOBS" ]; do _legs_reap || sleep 1; done
  [ -n "$LEG_DIR" ] || LEG_DIR=$(mktemp -d)
  if [ "$stream" = 1 ]; then
    _leg_recorded "$name" "$@" </dev/null &
  else
    echo "ci: leg $name ran in the background, from $(date -u +%H:%M:%S)" >"$LEG_DIR/$name.log"
    _leg_recorded "$name" "$@" >>"$LEG_DIR/$name.log" 2>&1 </dev/null &
  fi
  LEG_RUNNING+=("$! $stream $name")
}

# (in a background subshell) leg NAME COMMAND..., its summary row left for _legs_reap
_leg_recorded() {
  leg "$@"
  printf '%s' "${LEG_RESULTS[-1]}" >"$LEG_DIR/$1.result"
}

legs_wait() {
  while [ "${#LEG_RUNNING[@]}" -gt 0 ]; do _legs_reap || sleep 1; done
  [ -z "$LEG_DIR" ] || rm -rf "$LEG_DIR"
  LEG_DIR=
}

# Record the background legs that have ended, and print their output unless a streamed leg is
# still printing; false when none had ended.
_legs_reap() {
  local entry pid stream name still=() reaped=1 streaming=0
  for entry in "${LEG_RUNNING[@]}"; do
    read -r pid stream name <<<"$entry"
    if kill -0 "$pid" 2>/dev/null; then
      still+=("$entry")
      [ "$stream" = 0 ] || streaming=1
      continue
    fi
    wait "$pid" || true
    [ "$stream" = 1 ] || LEG_HELD+=("$name")
    if [ -s "$LEG_DIR/$name.result" ]; then
      LEG_RESULTS+=("$(cat "$LEG_DIR/$name.result")")
    else  # the leg's shell itself died
      LEG_RESULTS+=("$name"$'\t'"FAILED (no result)"$'\t'"?"$'\t'"$(_disk_free)"$'\t')
    fi
    reaped=0
  done
  LEG_RUNNING=("${still[@]}")
  if [ "$streaming" = 0 ]; then
    for name in "${LEG_HELD[@]}"; do cat "$LEG_DIR/$name.log"; done
    LEG_HELD=()
  fi
  return "$reaped"
}

leg_note() {
  if [ -n "${LEG_NOTE_FILE:-}" ]; then printf '%s' "$*" >>"$LEG_NOTE_FILE"; fi
}

pytest_passed() {
  local python=$1 log rc
  shift
  log=$(mktemp)
  rc=0
  "$python" -m pytest "$@" 2>&1 | tee "$log" || rc=${PIPESTATUS[0]}  # (errexit would skip the rm)
  if [ "$rc" != 0 ]; then
    echo "ci: pytest failed (exit $rc)"
    rm -f "$log"
    return "$rc"
  fi
  if ! tail -n 1 "$log" | grep -Eq '[0-9]+ passed'; then
    echo "ci: no test passed"
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
}

legs_summary() {
  local row failed=0
  printf '\n== legs ==\n'
  { printf 'LEG\tSTATUS\tTIME\tDISK FREE\tVERSIONS\n'; printf '%s\n' "${LEG_RESULTS[@]}"; } | column -t -s $'\t'
  printf 'total: %s\n' "$(_duration "$SECONDS")"
  for row in "${LEG_RESULTS[@]}"; do
    case "$row" in *$'\t'FAILED*) failed=1 ;; esac
  done
  return "$failed"
}

_disk_free() {
  df -h . 2>/dev/null | awk 'NR == 2 { print $4 }'
}

_duration() {
  printf '%dm%02ds' $(($1 / 60)) $(($1 % 60))
}
