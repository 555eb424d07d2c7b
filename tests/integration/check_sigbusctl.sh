#!/usr/bin/env bash
# sigbusctl itself against a real mount: exit codes (0 ok, 1 the daemon answered err or
# could not be found, 2 usage), the human and --json output, finding the socket from the
# mount point (-m), from $SIGBUSCTL_SOCKET and -S, absolute paths inside the mount, help.
# What the daemon does for each command is tested in C through the client library
# (check_events_*.c, check_revoke.c). Needs $SIGBUSFS, $SIGBUSCTL (meson sets them),
# root and /dev/fuse: exit 77 (skip) without them, unless CI=true.
set -u
: "${SIGBUSFS:?}" "${SIGBUSCTL:?}"

if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/fuse ]; then
  [ "${CI:-}" = true ] && { echo "check_sigbusctl: needs root and /dev/fuse (CI=true)"; exit 1; }
  echo "check_sigbusctl: needs root and /dev/fuse: skipped"
  exit 77
fi

DIR=$(mktemp -d /tmp/sigbusctl-check.XXXXXX) || exit 1
SOCK=$DIR.sock
DAEMON=
failures=0
tests=0

is_mounted() { awk -v d="$DIR" '$5 == d { found = 1 } END { exit !found }' /proc/self/mountinfo; }

cleanup() {
  if is_mounted; then fusermount3 -u "$DIR" 2>/dev/null || umount -l "$DIR"; fi
  [ -n "$DAEMON" ] && { kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null; }
  rmdir "$DIR" 2>/dev/null
  rm -f "$SOCK"
}
trap cleanup EXIT

# check DESCRIPTION WANT_STATUS PATTERN COMMAND...: runs COMMAND with stdout and stderr in
# $out, and passes if it exits with WANT_STATUS and its output matches the extended
# regular expression PATTERN (empty: anything).
check() {
  local what=$1 want=$2 pattern=$3 status
  shift 3
  out=$("$@" 2>&1)
  status=$?
  tests=$((tests + 1))
  if [ "$status" -eq "$want" ] && { [ -z "$pattern" ] || grep -Eq -- "$pattern" <<<"$out"; }; then
    echo "ok $tests - $what"
  else
    echo "not ok $tests - $what: exit $status (expected $want), output:"
    sed 's/^/    /' <<<"$out"
    failures=$((failures + 1))
  fi
}

# json_check DESCRIPTION PYTHON_EXPR COMMAND...: the command's stdout is one JSON object,
# o, for which PYTHON_EXPR is true.
json_check() {
  local what=$1 expr=$2
  shift 2
  check "$what" 0 "" python3 -c "import json, subprocess, sys
o = json.loads(subprocess.run(sys.argv[1:], capture_output=True, text=True).stdout)
sys.exit(0 if ($expr) else 1)" "$@"
}

"$SIGBUSFS" -f -o "ctl=$SOCK" mem:16M "$DIR" </dev/null &
DAEMON=$!
for _ in $(seq 100); do is_mounted && break; sleep 0.1; done
is_mounted || { echo "check_sigbusctl: $DIR not mounted"; exit 1; }

C=$SIGBUSCTL
check "--help lists the commands" 0 "^Commands:" "$C" --help
check "COMMAND --help shows its usage" 0 "^Usage: sigbusctl .* truncate PATH SIZE" "$C" truncate --help
check "--version names the protocol" 0 "control protocol 1" "$C" --version
check "no command: usage error" 2 "no command given" "$C"
check "unknown command: usage error" 2 "unknown command 'nope'" "$C" -S "$SOCK" nope
check "missing argument: usage error" 2 "missing SIZE" "$C" -S "$SOCK" truncate f
check "bad number: usage error" 2 "'12Q' is not a number" "$C" -S "$SOCK" truncate f 12Q
check "no daemon given: usage error" 2 "no daemon given" env -u SIGBUSCTL_SOCKET "$C" status
check "-m on another filesystem: error" 1 "is not a sigbusfs mount" "$C" -m /tmp status
check "-m finds the daemon" 0 "^mountpoint: $DIR\$" "$C" -m "$DIR" status
check "status: backend line" 0 "^backend: mem\$" "$C" -m "$DIR" status
check "SIGBUSCTL_SOCKET finds the daemon" 0 "^inodes: " env SIGBUSCTL_SOCKET="$SOCK" "$C" stats
check "err reply: exit 1, errno and path on stderr" 1 "^sigbusctl: truncate: ENOENT: missing" \
  "$C" -m "$DIR" truncate missing 4K
printf 'hello' >"$DIR/f"
check "truncate: human key: value lines" 0 "^size: 1\$" "$C" -m "$DIR" truncate f 1
check "truncate: the old size" 0 "^old_size: 1\$" "$C" -S "$SOCK" truncate f 5
check "an absolute path inside the -m mount" 0 "^size: 2\$" "$C" -m "$DIR" truncate "$DIR/f" 2
check "a path outside the -m mount: usage error" 2 "outside the mount point" \
  "$C" -m "$DIR" truncate /etc/passwd 2
mkdir "$DIR/d"
check "a '..' inside the mount is resolved by the daemon" 0 "^size: 2\$" \
  "$C" -m "$DIR" stats "$DIR/d/../f"
check "a relative PATH with '..' too" 0 "^size: 2\$" "$C" -m "$DIR" stats d/../f
check "a '..' out of the mount's root and back: refused" 1 "climbs above the mount's root" \
  "$C" -m "$DIR" stats "$DIR/../$(basename "$DIR")/f"
check "a deeper one: refused the same way" 1 "climbs above the mount's root" \
  "$C" -m "$DIR" stats "$DIR/d/../../$(basename "$DIR")/f"
check "an empty PATH is not the root" 1 "ENOENT: PATH is empty" "$C" -m "$DIR" stats ""
check "write --from a device without --len: refused" 1 "/dev/zero: not a regular file.*--len N" \
  "$C" -m "$DIR" write f 0 --from /dev/zero
: >"$DIR/g"
check "write --from a device with --len" 0 "^bytes: 3\$" "$C" -m "$DIR" write g 0 --from /dev/zero --len 3
check "write --from a file in the mount itself: refused" 1 "EXDEV: .*own mount" \
  "$C" -m "$DIR" write f 0 --from "$DIR/f"
check "a trailing / after a file" 1 "ENOTDIR: f/: f is not a directory" "$C" -m "$DIR" stats f/
json_check "--json: one object, numbers as numbers" \
  'o["ok"] is True and o["data"]["size"] == 2 and o["data"]["ino"] > 1' \
  "$C" -m "$DIR" --json stats f
json_check "stats --json: requests and errors per operation, notifications" \
  'any(op["name"] == "getattr" and op["requests"] > 0 and op["errors"] >= 0 for op in o["data"]["op"]) and o["data"]["notifications"] >= o["data"]["notify_inval_inode"] > 0' \
  "$C" -m "$DIR" --json stats
json_check "--json err: errno and message" \
  'o["ok"] is False and o["errno"] == "ENOENT" and "missing" in o["message"]' \
  "$C" -m "$DIR" --json truncate missing 1
check "log prints one event per line, as --follow does" 0 "^seq=[0-9]+ start=[0-9.]+ .*cmd=truncate target=f " \
  "$C" -m "$DIR" log
json_check "log --json: objects with typed fields" \
  'all(isinstance(e["seq"], int) and isinstance(e["start"], float) and e["cmd"] and e["result"] for e in o["data"]["event"]) and any(e["cmd"] == "truncate" and e["target"] == "f" and e["result"] == "ok" and e["size"] == 2 for e in o["data"]["event"])' \
  "$C" -m "$DIR" --json log
head -c 12288 /dev/zero >"$DIR/h"
cat "$DIR/h" >/dev/null
json_check "audit --json: no stale range is an empty array" \
  'o["data"]["stale"] == [] and o["data"]["cached_bytes"] == 12288 and o["data"]["stale_bytes"] == 0' \
  "$C" -m "$DIR" --json audit h
"$C" -m "$DIR" write h 4097 x --no-notify >/dev/null
json_check "audit --json: one stale range is an array of one object, in bytes" \
  'o["data"]["stale"] == [{"off": 4096, "len": 4096}] and o["data"]["stale_bytes"] == 4096' \
  "$C" -m "$DIR" --json audit h
"$C" -m "$DIR" write h 8192 x --no-notify >/dev/null
check "audit: ranges as text, neighbours merged" 0 "^stale: off=4096 len=8192\$" "$C" -m "$DIR" audit h

echo "$((tests - failures)) of $tests passed"
[ "$failures" -eq 0 ]
