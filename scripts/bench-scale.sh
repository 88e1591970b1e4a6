#!/usr/bin/env bash
# Scale benchmark (the pipeline stage): peak RSS and wall time of fetchbench on lists of N URLs
# (pool and async modes), and files/s against curl --parallel and wget2 on the same lists.
#
# Everything happens on 127.0.0.1: the script starts `fetchbench serve` (a renamed copy) on a
# free loopback port and stops it on exit. Each URL is a distinct 16-byte file, so the run
# measures what every URL costs, not bandwidth.
#
#   scripts/bench-scale.sh                              # 20k, 200k, 1M URLs; peers on 20k and 200k
#   scripts/bench-scale.sh --sizes 20000,200000 --peer-sizes 20000 --runs 3
#   BENCH_TMPDIR=/mnt/tmpfs scripts/bench-scale.sh      # put the downloads on a tmpfs
#   FETCHBENCH=/path/to/fetchbench scripts/bench-scale.sh
#
# Output: a Markdown table on stdout (progress on stderr). Needs curl, wget2, GNU time and
# python3 (for a free port); missing apt packages are installed when running as root.
set -euo pipefail

SIZES=20000,200000,1000000
PEER_SIZES=20000,200000
RUNS=1
JOBS=8
while (($#)); do
    case $1 in
    --sizes) SIZES=$2; shift 2 ;;
    --peer-sizes) PEER_SIZES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -j | --jobs) JOBS=$2; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
    esac
done

log() { printf '%s\n' "$*" >&2; }
die() { log "bench-scale: $*"; exit 1; }

need=()
command -v curl >/dev/null || need+=(curl)
command -v wget2 >/dev/null || need+=(wget2)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
    ((EUID == 0)) || die "missing: ${need[*]} (apt-get install them)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

REPO="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -n "${FETCHBENCH:-}" ]]; then
    FB=$FETCHBENCH
else
    log "building fetchbench (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
    FB="$REPO/target/release/fetchbench"
fi

WORK="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/bench-scale.XXXXXX")"
SERVER_PID=
cleanup() {
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cp "$FB" "$WORK/bench-scale-server"
"$WORK/bench-scale-server" serve --bind "127.0.0.1:$PORT" --size 16 --latency 0 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/files/probe" && break
    sleep 0.05
done

# run TOOL N CMD...: one timed run into a fresh $WORK/out; prints "wall_s rss_kib ok|FAIL".
run() {
    local n=$1
    shift
    rm -rf "$WORK/out" && mkdir "$WORK/out"
    local code=0
    /usr/bin/time -f '%e %M' -o "$WORK/time" "$@" >/dev/null 2>"$WORK/stderr" || code=$?
    local files bytes
    files=$(find "$WORK/out" -type f -name '*.bin' | wc -l)
    bytes=$(find "$WORK/out" -type f -name '*.bin' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    local verdict=ok
    if ((code != 0 || files != n || bytes != 16 * n)); then
        verdict="FAIL(exit $code, $files files, $bytes bytes)"
    fi
    printf '%s %s\n' "$(tail -n1 "$WORK/time")" "$verdict"
}

echo "| URLs | tool | wall s | files/s | peak RSS MiB | result |"
echo "|---:|---|---:|---:|---:|---|"
IFS=, read -r -a sizes <<<"$SIZES"
for n in "${sizes[@]}"; do
    list="$WORK/list-$n.txt"
    seq 1 "$n" | awk -v p="$PORT" '{print "http://127.0.0.1:" p "/files/f" $1 ".bin"}' >"$list"
    tools=(fetchbench-pool fetchbench-async)
    if [[ ",$PEER_SIZES," == *",$n,"* ]]; then
        awk '{n=split($0, a, "/"); print "url = \"" $0 "\"\noutput = \"" a[n] "\""}' "$list" >"$WORK/curl.cfg"
        tools+=(curl wget2)
    fi
    for ((r = 1; r <= RUNS; r++)); do
        for tool in "${tools[@]}"; do
            log "$n URLs, $tool, run $r/$RUNS"
            case $tool in
            fetchbench-pool) cmd=("$FB" -q -i "$list" -o "$WORK/out" --mode pool -j "$JOBS") ;;
            fetchbench-async) cmd=("$FB" -q -i "$list" -o "$WORK/out" --mode async -j "$JOBS") ;;
            curl) cmd=(curl -q -sS --no-progress-meter --fail --parallel --parallel-immediate
                --parallel-max "$JOBS" --output-dir "$WORK/out" -K "$WORK/curl.cfg") ;;
            wget2) cmd=(wget2 -q --no-config --max-threads="$JOBS" -P "$WORK/out" -i "$list"
                --progress=none --no-http2 --no-robots --no-span-hosts --no-hsts --no-hpkp
                --no-tcp-fastopen --no-xattr --no-use-server-timestamps --no-netrc --tries=1) ;;
            esac
            read -r wall rss verdict < <(run "$n" "${cmd[@]}")
            rate=$(awk -v n="$n" -v w="$wall" 'BEGIN { if (w > 0) printf "%.0f", n / w; else print "-" }')
            mib=$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')
            echo "| $n | $tool | $wall | $rate | $mib | $verdict |"
        done
    done
done
