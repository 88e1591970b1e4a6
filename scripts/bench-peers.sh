#!/usr/bin/env bash
# Peer benchmark: fetchbench against curl, aria2c and wget2 on the same local workloads.
#
#   scripts/bench-peers.sh [--runs N] [--warmup N] [--workloads 1,...,13] [--quick] [--out FILE]
#
# Every server is started here on 127.0.0.1 (nginx for raw throughput, `fetchbench serve`
# for latency- and bandwidth-shaped workloads, and `fetchbench serve --rtt 50ms --tls` for the
# wide-area ones: each connection's round trips, handshakes included, delayed as on a 50 ms
# path; for 12 and 13, nginx over HTTPS behind scripts/delay-relay.rs, the same delays in a
# TCP relay) and stopped on exit; nothing else is contacted.
# Each tool run is timed with GNU time (wall, user, sys, peak RSS) in a fresh output
# directory, verified byte for byte against the source, then removed. See BENCHMARKS.md.
#
# Environment: FETCHBENCH=/path/to/fetchbench skips `cargo build --release`.
#              BENCH_TMPDIR=/dir puts the work directory there (default: $TMPDIR or /tmp).
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: scripts/bench-peers.sh [--runs N] [--warmup N] [--workloads LIST] [--quick] [--out FILE]

  --runs N          timed runs of every tool per workload, interleaved (default 3; 1 with --quick)
  --warmup N        untimed rounds of every tool before the timed ones (default 1; 0 with --quick)
  --workloads LIST  comma-separated subset of 1-13 (default: 1-5, the loopback ones; `wan` for
                    6-13, `all` for every one)
                      1  latency-bound: 50 x 64 KiB, 200 ms latency, 8 at a time (fetchbench serve)
                      2  many small files: 2000 x 4 KiB from nginx, 8 at a time (+ a cp floor)
                      3  large files: 4 x 256 MiB from nginx, 4 at a time
                      4  one big file: 1 x 1 GiB from nginx
                      5  one big file, bandwidth-limited per connection: 1 x 256 MiB at 16 MiB/s
                         per connection (fetchbench serve); segmented downloads
                    Over an emulated 50 ms round trip, HTTPS (fetchbench serve --rtt 50ms --tls):
                      6  1000 x 4 KiB over HTTP/2, every tool at its defaults
                      7  1000 x 4 KiB, HTTP/1.1 only (the server offers no h2), at the defaults
                      8  1000 x 4 KiB over HTTP/2, every tool capped at 16 at once
                      9  1000 x 4 KiB over HTTP/2, every tool capped at 128 at once
                     10  1 x 256 MiB over HTTP/2 (one connection), at the defaults
                     11  1 x 256 MiB at 32 MiB/s per connection, in 4 ranges (fetchbench -s 4,
                         aria2c -x4)
                    nginx over HTTPS (HTTP/2 by ALPN, 128 streams per connection) behind a
                    relay that adds a 50 ms round trip (scripts/delay-relay.rs), at the defaults;
                    skipped when nginx lacks its ssl or http_v2 module:
                     12  1 x 256 MiB over HTTP/2 (one connection)
                     13  1000 x 4 KiB over HTTP/2
  --quick           small sizes, for a smoke test
  --out FILE        also write the Markdown report to FILE

Environment: FETCHBENCH=/path/to/binary (skip the cargo build), BENCH_TMPDIR=/dir,
FETCHBENCH_BASE=/path/to/binary (an A/B: every fetchbench row also runs with that build, as
"ROW@base", interleaved with the others in the same rounds), SKIP_TOOLS="wget2:10 ..." (rows left
out: TOOL everywhere, TOOL:N in workload N only, e.g. a peer known to time out).
EOF
}

RUNS=""
WARMUP=""
WORKLOADS="1,2,3,4,5"
QUICK=0
OUT_FILE=""
RUN_TIMEOUT=300
BIG_H2_WGET2_TIMEOUT=30

while (($#)); do
    case "$1" in
    --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
    --runs=*) RUNS="${1#*=}"; shift ;;
    --warmup) WARMUP="${2:?--warmup needs a number}"; shift 2 ;;
    --warmup=*) WARMUP="${1#*=}"; shift ;;
    --workloads) WORKLOADS="${2:?--workloads needs a list}"; shift 2 ;;
    --workloads=*) WORKLOADS="${1#*=}"; shift ;;
    --quick) QUICK=1; shift ;;
    --out) OUT_FILE="${2:?--out needs a file}"; shift 2 ;;
    --out=*) OUT_FILE="${1#*=}"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench-peers: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [[ -z "$RUNS" ]]; then RUNS=$((QUICK ? 1 : 3)); fi
if [[ -z "$WARMUP" ]]; then WARMUP=$((QUICK ? 0 : 1)); fi
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "bench-peers: --runs must be >= 1" >&2; exit 2; }
[[ "$WARMUP" =~ ^[0-9]+$ ]] || { echo "bench-peers: --warmup must be >= 0" >&2; exit 2; }
case "$WORKLOADS" in
wan) WORKLOADS="6,7,8,9,10,11,12,13" ;;
all) WORKLOADS="1,2,3,4,5,6,7,8,9,10,11,12,13" ;;
esac
IFS=, read -r -a WL_LIST <<<"$WORKLOADS"
for w in "${WL_LIST[@]}"; do
    [[ "$w" =~ ^([1-9]|1[0-3])$ ]] || { echo "bench-peers: unknown workload '$w' (1-13)" >&2; exit 2; }
done

log() { printf '[bench-peers] %s\n' "$*" >&2; }
die() { printf 'bench-peers: error: %s\n' "$*" >&2; exit 1; }

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# ---------------------------------------------------------------------------
# Tools: install what is missing from apt, then insist.
# ---------------------------------------------------------------------------
need_pkgs=()
command -v curl >/dev/null || need_pkgs+=(curl)
command -v aria2c >/dev/null || need_pkgs+=(aria2)
command -v wget2 >/dev/null || need_pkgs+=(wget2)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || need_pkgs+=(nginx-light)
[[ -x /usr/bin/time ]] || need_pkgs+=(time)
command -v python3 >/dev/null || need_pkgs+=(python3)
command -v timeout >/dev/null || need_pkgs+=(coreutils)
if ((${#need_pkgs[@]})); then
    log "installing from apt: ${need_pkgs[*]}"
    SUDO=()
    ((EUID == 0)) || SUDO=(sudo)
    if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >&2; then
        "${SUDO[@]}" apt-get update -q >&2 || true
        "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need_pkgs[@]}" >&2 ||
            die "apt-get install ${need_pkgs[*]} failed"
    fi
    # Debian starts the packaged nginx service on install (where an init system runs):
    # it is not ours and not needed; we run our own instance below.
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
for t in curl aria2c wget2 python3 timeout rustc; do
    command -v "$t" >/dev/null || die "'$t' is still missing (apt package for it: see BENCHMARKS.md)"
done
[[ -x "$NGINX" ]] || die "nginx is still missing (apt-get install nginx-light)"
[[ -x /usr/bin/time ]] || die "GNU time (/usr/bin/time) is still missing (apt-get install time)"

# ---------------------------------------------------------------------------
# fetchbench binary
# ---------------------------------------------------------------------------
if [[ -n "${FETCHBENCH:-}" ]]; then
    FB="$FETCHBENCH"
else
    log "building fetchbench (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet) || die "cargo build --release failed"
    FB="$REPO/target/release/fetchbench"
fi
[[ -x "$FB" ]] || die "fetchbench binary not found or not executable: $FB"
FB_BASE="${FETCHBENCH_BASE:-}"
[[ -z "$FB_BASE" || -x "$FB_BASE" ]] || die "FETCHBENCH_BASE is not an executable: $FB_BASE"
FB_SEGMENTS=0
if "$FB" --help 2>/dev/null | grep -q -- '--segments'; then FB_SEGMENTS=1; fi

# ---------------------------------------------------------------------------
# Work directory, servers, clean-up
# ---------------------------------------------------------------------------
WORK="$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/bench-peers.XXXXXX")"
chmod 755 "$WORK" # nginx workers may run as another user
# Servers this script started: name -> pid, and name -> the command that (re)starts it.
declare -A SRV_PID=() SRV_CMD=() SRV_PROBE=()
SERVER_RESTARTS=0
cleanup() {
    local name
    for name in "${!SRV_PID[@]}"; do
        kill "${SRV_PID[$name]}" 2>/dev/null || true
    done
    for name in "${!SRV_PID[@]}"; do
        wait "${SRV_PID[$name]}" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Disk: sources plus one run's output must fit, with room to spare.
if ((QUICK)); then need_gib=1; else need_gib=5; fi
avail_kib=$(df -Pk "$WORK" | awk 'NR==2 {print $4}')
((avail_kib > need_gib * 1024 * 1024)) ||
    die "need ${need_gib} GiB free under $WORK, only $((avail_kib / 1024)) MiB available"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The reference content of `fetchbench serve` files, reimplemented from the spec in
# src/server/content.rs (`fill`): FNV-1a seed, splitmix64 blocks, little-endian. Independent of
# the code under test, so a download is checked against the spec, not against itself.
SYNTHGEN="$WORK/synthgen"
cat >"$WORK/synthgen.rs" <<'EOF'
use std::io::Write;
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
fn main() {
    // synthgen NAME SIZE > file
    let args: Vec<String> = std::env::args().collect();
    let name = &args[1];
    let size: u64 = args[2].parse().expect("size in bytes");
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, out.lock());
    let mut buf = vec![0u8; 1 << 20];
    let (mut written, mut block) = (0u64, 0u64);
    while written < size {
        for chunk in buf.chunks_exact_mut(8) {
            chunk.copy_from_slice(&splitmix64(seed ^ block).to_le_bytes());
            block += 1;
        }
        let n = (size - written).min(buf.len() as u64) as usize;
        out.write_all(&buf[..n]).unwrap();
        written += n as u64;
    }
    out.flush().unwrap();
}
EOF
rustc -O -o "$SYNTHGEN" "$WORK/synthgen.rs" >&2 || die "rustc could not build the reference generator"

# spawn_server NAME PROBE_URL CMD...: starts CMD in the background (its output in
# $WORK/NAME.log) and waits until PROBE_URL answers. The command is kept, so that a server
# that dies (e.g. killed by someone's `pkill`) is restarted on the same port: see check_servers.
spawn_server() {
    local name=$1 probe=$2 i
    shift 2
    SRV_CMD[$name]="$(printf '%q ' "$@")"
    SRV_PROBE[$name]="$probe"
    "$@" >>"$WORK/$name.log" 2>&1 &
    SRV_PID[$name]=$!
    for i in $(seq 200); do
        # shellcheck disable=SC2086 # the probe may carry curl options (--cacert FILE)
        curl -s -o /dev/null --max-time 5 $probe && return 0
        kill -0 "${SRV_PID[$name]}" 2>/dev/null || break
        sleep 0.05
    done
    cat "$WORK/$name.log" >&2 || true
    die "$name did not start (probe: $probe)"
}

# Restarts any of our servers that is no longer running (a run that used it has failed
# and is reported as such; the restart is counted in the report).
check_servers() {
    local name
    for name in "${!SRV_PID[@]}"; do
        if ! kill -0 "${SRV_PID[$name]}" 2>/dev/null; then
            wait "${SRV_PID[$name]}" 2>/dev/null || true
            log "WARNING: server $name (pid ${SRV_PID[$name]}) has died; restarting it on the same port"
            SERVER_RESTARTS=$((SERVER_RESTARTS + 1))
            eval "spawn_server $name ${SRV_PROBE[$name]@Q} ${SRV_CMD[$name]}"
        fi
    done
}

# nginx_conf_http DIR: the start of an nginx.conf running from DIR, which every nginx of this
# script shares: up to the settings of its `http {` block; the caller adds its server and the
# closing brace.
nginx_conf_http() {
    local dir=$1 user_line=""
    ((EUID == 0)) && user_line="user root;"
    cat <<EOF
$user_line
worker_processes auto;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000;
    keepalive_timeout 60s;
    gzip off;
    etag on;
    types { }
    default_type application/octet-stream;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
EOF
}

NGINX_PORT=""
start_nginx() {
    [[ -n "$NGINX_PORT" ]] && return 0
    local dir="$WORK/nginx"
    mkdir -p "$dir/tmp" "$WORK/www"
    chmod 755 "$WORK/www"
    NGINX_PORT="$(free_port)"
    {
        nginx_conf_http "$dir"
        cat <<EOF
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/www;
        location / { }
    }
}
EOF
    } >"$dir/nginx.conf"
    spawn_server nginx "http://127.0.0.1:$NGINX_PORT/" \
        "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;'
}

# start_nginx_wan: nginx over HTTPS with HTTP/2 by ALPN (WAN_STREAMS streams per connection)
# behind the delay relay (scripts/delay-relay.rs: WAN_RTT_MS per round trip, handshakes
# included), for workloads 12 and 13; sets NGINX_WAN_URL (the relay's https URL) and
# NGINX_WAN_CERT. Returns 1, with NGINX_WAN_MISSING saying why, where nginx cannot serve
# HTTP/2 over TLS.
NGINX_WAN_URL=""
NGINX_WAN_MISSING=""
start_nginx_wan() {
    [[ -n "$NGINX_WAN_URL" ]] && return 0
    [[ -n "$NGINX_WAN_MISSING" ]] && return 1
    local modules dir="$WORK/nginx-wan" port relay_port
    modules="$("$NGINX" -V 2>&1)"
    if [[ "$modules" != *--with-http_ssl_module* || "$modules" != *--with-http_v2_module* ]]; then
        NGINX_WAN_MISSING="$NGINX has no http_ssl or http_v2 module (apt-get install nginx-light)"
        return 1
    fi
    mkdir -p "$dir/tmp" "$WORK/www"
    chmod 755 "$WORK/www"
    # A certificate for 127.0.0.1, self-signed and not a CA (every client is given it with
    # --cacert), made here for the run.
    NGINX_WAN_CERT="$dir/cert.pem"
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
        -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
        -addext extendedKeyUsage=serverAuth \
        -keyout "$dir/key.pem" -out "$NGINX_WAN_CERT" >"$dir/openssl.log" 2>&1; then
        NGINX_WAN_MISSING="openssl could not make a certificate: $(tail -n 1 "$dir/openssl.log")"
        return 1
    fi
    port="$(free_port)"
    {
        nginx_conf_http "$dir"
        cat <<EOF
    server {
        listen 127.0.0.1:$port ssl http2;
        ssl_certificate $NGINX_WAN_CERT;
        ssl_certificate_key $dir/key.pem;
        # nginx before 1.23.4 offers TLS 1.2 at most by default (a round trip more).
        ssl_protocols TLSv1.2 TLSv1.3;
        http2_max_concurrent_streams $WAN_STREAMS;
        root $WORK/www;
        location / { }
    }
}
EOF
    } >"$dir/nginx.conf"
    spawn_server nginx-wan "https://127.0.0.1:$port/ --cacert $NGINX_WAN_CERT" \
        "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;'
    rustc -O -o "$WORK/delay-relay" "$REPO/scripts/delay-relay.rs" >&2 ||
        die "rustc could not build scripts/delay-relay.rs"
    relay_port="$(free_port)"
    spawn_server relay "https://127.0.0.1:$relay_port/ --cacert $NGINX_WAN_CERT" \
        "$WORK/delay-relay" "127.0.0.1:$relay_port" "127.0.0.1:$port" "$WAN_RTT_MS"
    NGINX_WAN_URL="https://127.0.0.1:$relay_port"
}

# The server runs from a copy of the binary with its own name, so that a `pkill fetchbench`
# or `pkill -f 'fetchbench serve'` aimed at someone else's server does not hit ours.
FB_SERVER="$WORK/bench-peers-server"
cp "$FB" "$FB_SERVER"

# start_fbserve NAME VAR ARGS...: starts `fetchbench serve ARGS` on a free port of
# 127.0.0.1 and sets VAR to its base URL.
start_fbserve() {
    local name=$1 var=$2 port
    shift 2
    port="$(free_port)"
    spawn_server "$name" "http://127.0.0.1:$port/list?files=1" \
        "$FB_SERVER" serve --bind "127.0.0.1:$port" "$@"
    printf -v "$var" 'http://127.0.0.1:%s' "$port"
}

# start_fbserve_tls NAME VAR ARGS...: `fetchbench serve --tls ARGS` (its certificate in
# $WORK/NAME.pem, which every client is given), VAR set to its https base URL.
start_fbserve_tls() {
    local name=$1 var=$2 port
    shift 2
    port="$(free_port)"
    spawn_server "$name" "https://127.0.0.1:$port/list?files=1 --cacert $WORK/$name.pem" \
        "$FB_SERVER" serve --bind "127.0.0.1:$port" --tls --cert-out "$WORK/$name.pem" "$@"
    printf -v "$var" 'https://127.0.0.1:%s' "$port"
    WL_CERT="$WORK/$name.pem"
}

# ---------------------------------------------------------------------------
# Workload definitions
# ---------------------------------------------------------------------------
if ((QUICK)); then
    W1_FILES=16; W2_FILES=200; W3_SIZE=$((16 << 20)); W4_SIZE=$((64 << 20)); W5_SIZE=$((32 << 20))
else
    W1_FILES=50; W2_FILES=2000; W3_SIZE=$((256 << 20)); W4_SIZE=$((1 << 30)); W5_SIZE=$((256 << 20))
fi
W1_SIZE=$((64 << 10)); W1_LATENCY_MS=200; W1_J=8
W2_SIZE=$((4 << 10)); W2_J=8
W3_FILES=4; W3_J=4
W4_FILES=1; W4_J=1
W5_FILES=1; W5_J=1; W5_RATE_MIB=16
# The wide-area workloads: every connection's round trip is WAN_RTT_MS, TLS, HTTP/2 by ALPN
# with at most WAN_STREAMS streams per connection (as nginx's default).
WAN_RTT_MS=50; WAN_STREAMS=128
if ((QUICK)); then WAN_SMALL=200; WAN_BIG=$((32 << 20)); else WAN_SMALL=1000; WAN_BIG=$((256 << 20)); fi
WAN_SMALL_SIZE=$((4 << 10)); W11_LINK_MIB=32; W11_RANGES=4

# make_nginx_files DIR COUNT SIZE: random files file-NNNN.bin under $WORK/www/DIR.
make_nginx_files() {
    local dir="$WORK/www/$1" count=$2 size=$3 i name
    mkdir -p "$dir"
    if ((size >= 1 << 20)); then
        for ((i = 1; i <= count; i++)); do
            printf -v name 'file-%04d.bin' "$i"
            head -c "$size" /dev/urandom >"$dir/$name"
        done
    else
        # Many small files: one Python process instead of thousands of `head`s.
        python3 - "$dir" "$count" "$size" <<'EOF'
import os, sys
d, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(1, n + 1):
    with open(os.path.join(d, f"file-{i:04d}.bin"), "wb") as f:
        f.write(os.urandom(size))
EOF
    fi
    chmod -R a+rX "$dir"
}

# make_synth_refs REFDIR COUNT SIZE: reference copies of fetchbench-serve files.
make_synth_refs() {
    local dir=$1 count=$2 size=$3 i name
    mkdir -p "$dir"
    for ((i = 1; i <= count; i++)); do
        printf -v name 'file-%04d.bin' "$i"
        "$SYNTHGEN" "$name" "$size" >"$dir/$name"
    done
}

# setup_workload N: sets WL_* globals: REF (reference dir), URLS file, J, BYTES, TOOLS; or
# WL_SKIP, why the workload cannot run here.
setup_workload() {
    local n=$1 base i name count size
    WL_SKIP=""
    case $n in
    1)
        start_fbserve fbserve1 FBS1_URL --latency "${W1_LATENCY_MS}ms" --size "$W1_SIZE" --files "$W1_FILES"
        base="$FBS1_URL/files"; count=$W1_FILES; size=$W1_SIZE; WL_J=$W1_J
        WL_TITLE="Workload 1: latency-bound ($count x $((size >> 10)) KiB, ${W1_LATENCY_MS} ms latency, $WL_J at a time, fetchbench serve)"
        WL_REF="$WORK/ref1"; make_synth_refs "$WL_REF" "$count" "$size"
        ;;
    2)
        start_nginx
        base="http://127.0.0.1:$NGINX_PORT/w2"; count=$W2_FILES; size=$W2_SIZE; WL_J=$W2_J
        WL_TITLE="Workload 2: many small files ($count x $((size >> 10)) KiB, nginx, $WL_J at a time)"
        make_nginx_files w2 "$count" "$size"; WL_REF="$WORK/www/w2"
        ;;
    3)
        start_nginx
        base="http://127.0.0.1:$NGINX_PORT/w3"; count=$W3_FILES; size=$W3_SIZE; WL_J=$W3_J
        WL_TITLE="Workload 3: large files ($count x $((size >> 20)) MiB, nginx, $WL_J at a time)"
        make_nginx_files w3 "$count" "$size"; WL_REF="$WORK/www/w3"
        ;;
    4)
        start_nginx
        base="http://127.0.0.1:$NGINX_PORT/w4"; count=$W4_FILES; size=$W4_SIZE; WL_J=$W4_J
        WL_TITLE="Workload 4: one big file ($count x $((size >> 20)) MiB, nginx)"
        make_nginx_files w4 "$count" "$size"; WL_REF="$WORK/www/w4"
        ;;
    5)
        start_fbserve fbserve5 FBS5_URL --rate "${W5_RATE_MIB}MiB/s" --size "$W5_SIZE" --files "$W5_FILES"
        base="$FBS5_URL/files"; count=$W5_FILES; size=$W5_SIZE; WL_J=$W5_J
        WL_TITLE="Workload 5: one big file, bandwidth-limited ($count x $((size >> 20)) MiB, ${W5_RATE_MIB} MiB/s per connection, fetchbench serve)"
        WL_REF="$WORK/ref5"; make_synth_refs "$WL_REF" "$count" "$size"
        ;;
    6 | 7 | 8 | 9)
        local extra=()
        ((n == 7)) && extra=(--http1-only)
        start_fbserve_tls "fbwan$n" FBW_URL --rtt "${WAN_RTT_MS}ms" --max-streams "$WAN_STREAMS" \
            --size "$WAN_SMALL_SIZE" --files "$WAN_SMALL" "${extra[@]}"
        base="$FBW_URL/files"; count=$WAN_SMALL; size=$WAN_SMALL_SIZE
        case $n in
        6) WL_J=default; WL_TITLE="Workload 6: $count x 4 KiB over HTTP/2, RTT ${WAN_RTT_MS} ms, HTTPS, every tool at its defaults" ;;
        7) WL_J=default; WL_TITLE="Workload 7: $count x 4 KiB, HTTP/1.1 only, RTT ${WAN_RTT_MS} ms, HTTPS, every tool at its defaults" ;;
        8) WL_J=16; WL_TITLE="Workload 8: $count x 4 KiB over HTTP/2, RTT ${WAN_RTT_MS} ms, HTTPS, every tool capped at 16 at once" ;;
        9) WL_J=128; WL_TITLE="Workload 9: $count x 4 KiB over HTTP/2, RTT ${WAN_RTT_MS} ms, HTTPS, every tool capped at 128 at once" ;;
        esac
        WL_REF="$WORK/ref$n"; make_synth_refs "$WL_REF" "$count" "$size"
        ;;
    10)
        start_fbserve_tls fbwan10 FBW_URL --rtt "${WAN_RTT_MS}ms" --size "$WAN_BIG" --files 1
        base="$FBW_URL/files"; count=1; size=$WAN_BIG; WL_J=default
        WL_TITLE="Workload 10: 1 x $((size >> 20)) MiB over HTTP/2 (one connection), RTT ${WAN_RTT_MS} ms, HTTPS, at the defaults"
        WL_REF="$WORK/ref10"; make_synth_refs "$WL_REF" "$count" "$size"
        ;;
    11)
        start_fbserve_tls fbwan11 FBW_URL --rtt "${WAN_RTT_MS}ms" --link-rate "${W11_LINK_MIB}MiB/s" \
            --size "$WAN_BIG" --files 1
        base="$FBW_URL/files"; count=1; size=$WAN_BIG; WL_J=1
        WL_TITLE="Workload 11: 1 x $((size >> 20)) MiB at ${W11_LINK_MIB} MiB/s per connection, $W11_RANGES ranges, RTT ${WAN_RTT_MS} ms, HTTPS"
        WL_REF="$WORK/ref11"; make_synth_refs "$WL_REF" "$count" "$size"
        ;;
    12 | 13)
        if ! start_nginx_wan; then
            WL_SKIP="$NGINX_WAN_MISSING"
            return 0
        fi
        base="$NGINX_WAN_URL/w$n"; WL_J=default; WL_CERT="$NGINX_WAN_CERT"
        if ((n == 12)); then
            count=1; size=$WAN_BIG
            WL_TITLE="Workload 12: 1 x $((size >> 20)) MiB over HTTP/2 (one connection), nginx behind a ${WAN_RTT_MS} ms relay, HTTPS, at the defaults"
        else
            count=$WAN_SMALL; size=$WAN_SMALL_SIZE
            WL_TITLE="Workload 13: $count x 4 KiB over HTTP/2, nginx behind a ${WAN_RTT_MS} ms relay, HTTPS, every tool at its defaults"
        fi
        make_nginx_files "w$n" "$count" "$size"; WL_REF="$WORK/www/w$n"
        ;;
    esac
    WL_BYTES=$((count * size))
    WL_DIR="$WORK/wl$n"
    mkdir -p "$WL_DIR"
    WL_URLS="$WL_DIR/urls.txt"
    : >"$WL_URLS"
    : >"$WL_DIR/curl.cfg"
    : >"$WL_DIR/aria2.in"
    for ((i = 1; i <= count; i++)); do
        printf -v name 'file-%04d.bin' "$i"
        printf '%s/%s\n' "$base" "$name" >>"$WL_URLS"
        printf 'url = "%s/%s"\noutput = "%s"\n' "$base" "$name" "$name" >>"$WL_DIR/curl.cfg"
        printf '%s/%s\n  out=%s\n' "$base" "$name" "$name" >>"$WL_DIR/aria2.in"
    done
    case $n in
    6 | 7 | 8 | 9) WL_TOOLS=(fetchbench fetchbench-pool curl wget2 aria2c) ;;
    10 | 12) WL_TOOLS=(fetchbench fetchbench-h1 curl curl-h1 wget2 aria2c) ;;
    13) WL_TOOLS=(fetchbench fetchbench-pool curl wget2 aria2c) ;;
    11) WL_TOOLS=(fetchbench-s4 fetchbench curl aria2c-x4) ;;
    *)
        WL_TOOLS=(fetchbench-pool fetchbench-async)
        if ((n == 5 && FB_SEGMENTS)); then WL_TOOLS+=(fetchbench-s1 fetchbench-s8); fi
        WL_TOOLS+=(curl wget2)
        if ((n == 5)); then WL_TOOLS+=(aria2c-x1 aria2c-x8); else WL_TOOLS+=(aria2c); fi
        if ((n == 2)); then WL_TOOLS+=(cp-floor); fi
        ;;
    esac
    if [[ -n "${SKIP_TOOLS:-}" ]]; then
        local kept=() t
        for t in "${WL_TOOLS[@]}"; do
            [[ " $SKIP_TOOLS " == *" $t "* || " $SKIP_TOOLS " == *" $t:$n "* ]] || kept+=("$t")
        done
        WL_TOOLS=("${kept[@]}")
    fi
    if [[ -n "$FB_BASE" ]]; then
        # The A/B: each fetchbench row again with the base build, right after it.
        local tools=() t
        for t in "${WL_TOOLS[@]}"; do
            tools+=("$t")
            [[ "$t" == fetchbench* ]] && tools+=("$t@base")
        done
        WL_TOOLS=("${tools[@]}")
    fi
}

# wan_cmd TOOL OUTDIR: CMD for the wide-area workloads (6-11): every tool over HTTPS with the
# server's certificate; WL_J=default leaves each tool's own concurrency and protocol defaults.
wan_cmd() {
    local tool=$1 out=$2 j=$WL_J cert=$WL_CERT
    local fbj=() curlj=() wgetj=() ariaj=()
    if [[ "$j" != default ]]; then
        fbj=(-j "$j"); curlj=(--parallel-max "$j"); wgetj=(--max-threads="$j"); ariaj=(-j "$j")
    fi
    local aria=(aria2c --no-conf=true -i "$WL_DIR/aria2.in" -d "$out" --ca-certificate="$cert"
        --allow-overwrite=true --auto-file-renaming=false --file-allocation=none
        --auto-save-interval=0 --remove-control-file=true --console-log-level=error -q
        --summary-interval=0 --no-netrc=true --max-tries=1)
    case $tool in
    fetchbench) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --cacert "$cert" "${fbj[@]}") ;;
    fetchbench-pool) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --cacert "$cert" --mode pool "${fbj[@]}") ;;
    fetchbench-h1) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --cacert "$cert" --http1.1) ;;
    fetchbench-s4) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --cacert "$cert" -s "$W11_RANGES") ;;
    curl) CMD=(curl -q -sS --fail --parallel "${curlj[@]}" --cacert "$cert" --output-dir "$out"
        -K "$WL_DIR/curl.cfg") ;;
    curl-h1) CMD=(curl -q -sS --fail --parallel --http1.1 --cacert "$cert" --output-dir "$out"
        -K "$WL_DIR/curl.cfg") ;;
    wget2) CMD=(wget2 -q --no-config -P "$out" -i "$WL_URLS" --ca-certificate="$cert"
        --progress=none --no-xattr --no-use-server-timestamps --no-netrc --tries=1 "${wgetj[@]}") ;;
    aria2c) CMD=("${aria[@]}" "${ariaj[@]}") ;;
    aria2c-x4) CMD=("${aria[@]}" -x "$W11_RANGES" -s "$W11_RANGES" --min-split-size=1M) ;;
    *) die "unknown tool $tool" ;;
    esac
}

# tool_cmd TOOL OUTDIR: sets CMD (array) to the command line for TOOL writing into OUTDIR.
tool_cmd() {
    local tool=$1 out=$2 j=$WL_J
    if [[ "$tool" == *@base ]]; then
        # The same row with the base build (seen by the functions below: bash scopes
        # dynamically).
        local FB=$FB_BASE
        tool=${tool%@base}
    fi
    if ((WL_NUM >= 6)); then
        wan_cmd "$tool" "$out"
        return
    fi
    local aria=(aria2c --no-conf=true -i "$WL_DIR/aria2.in" -d "$out" -j "$j"
        --allow-overwrite=true --auto-file-renaming=false --file-allocation=none
        --auto-save-interval=0 --remove-control-file=true --console-log-level=error -q
        --summary-interval=0 --no-netrc=true --async-dns=false --max-tries=1 --retry-wait=0)
    case $tool in
    fetchbench-pool) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --mode pool -j "$j") ;;
    fetchbench-async) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --mode async -j "$j") ;;
    fetchbench-s1) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --mode pool -j "$j" -s 1) ;;
    fetchbench-s8) CMD=("$FB" -q -i "$WL_URLS" -o "$out" --mode pool -j "$j" -s 8) ;;
    curl) CMD=(curl -q -sS --no-progress-meter --fail --parallel --parallel-immediate --parallel-max "$j"
        --output-dir "$out" -K "$WL_DIR/curl.cfg") ;;
    wget2) CMD=(wget2 -q --no-config --max-threads="$j" -P "$out" -i "$WL_URLS" --progress=none
        --no-http2 --no-robots --no-span-hosts --no-hsts --no-hpkp --no-tcp-fastopen --no-xattr
        --no-use-server-timestamps --no-netrc --tries=1) ;;
    aria2c) CMD=("${aria[@]}" -x 1 -s 1) ;;
    aria2c-x1) CMD=("${aria[@]}" -x 1 -s 1) ;;
    aria2c-x8) CMD=("${aria[@]}" -x 8 -s 8 --min-split-size=1M) ;;
    cp-floor) CMD=(cp -r "$WL_REF/." "$out/") ;;
    *) die "unknown tool $tool" ;;
    esac
}

# verify REFDIR OUTDIR: exactly the reference's files (no leftovers), same bytes.
verify() {
    python3 - "$1" "$2" <<'EOF'
import os, sys
ref, out = sys.argv[1], sys.argv[2]
want, got = sorted(os.listdir(ref)), sorted(os.listdir(out))
if want != got:
    missing = sorted(set(want) - set(got))[:3]
    extra = sorted(set(got) - set(want))[:3]
    sys.exit(f"files differ: {len(got)} of {len(want)}; missing {missing} extra {extra}")
for name in want:
    a, b = os.path.join(ref, name), os.path.join(out, name)
    if os.path.getsize(a) != os.path.getsize(b):
        sys.exit(f"{name}: {os.path.getsize(b)} bytes, expected {os.path.getsize(a)}")
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(1 << 20), fb.read(1 << 20)
            if x != y:
                sys.exit(f"{name}: content differs")
            if not x:
                break
EOF
}

# The timer: `timed.py` spawns `/usr/bin/time -f %M timeout 300 TOOL...` and measures
#  - wall: a monotonic clock around the spawn, in microseconds;
#  - user, sys: the kernel's wait4() rusage of that tree (the tool, plus ~1 ms for GNU time
#    and timeout themselves), in microseconds;
#  - peak RSS: GNU time's %M (KiB), the largest resident set of the tool or `timeout`.
# GNU time alone prints wall and CPU to 10 ms only, too coarse for sub-second runs; and a
# Python wait4() alone would count Python's own 13 MiB as the child's peak RSS (Linux keeps
# the pre-exec high-water mark), hence the combination.
RUNNER="$WORK/timed.py"
cat >"$RUNNER" <<'PYEOF'
import os, sys, time
# timed.py OUTFILE CMD...: runs CMD, writes "wall user sys maxrss_kib" to OUTFILE, exits with its status.
out, cmd = sys.argv[1], sys.argv[2:]
rss_file = out + ".rss"
argv = ["/usr/bin/time", "-f", "%M", "-o", rss_file] + cmd
t0 = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - t0
with open(rss_file) as f:
    rss = int(f.read().split()[-1])
with open(out, "w") as f:
    f.write(f"{wall:.6f} {ru.ru_utime:.6f} {ru.ru_stime:.6f} {rss}\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
PYEOF

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
META="$WORK/meta.tsv"
: >"$META"

# measure WL TOOL RUN (RUN=0: warm-up, not recorded)
measure() {
    local wl=$1 tool=$2 run=$3
    local out="$WORK/out" tf="$WORK/time.txt" lf="$WORK/tool.log" rc=0 ok=1 why=""
    check_servers
    rm -rf "$out"
    mkdir -p "$out"
    tool_cmd "$tool" "$out"
    local limit=$RUN_TIMEOUT
    # wget2 takes minutes over one big HTTP/2 stream (more than 120 s in the issue).
    if [[ "$tool" == wget2 ]] && ((wl == 10 || wl == 12)); then limit=$BIG_H2_WGET2_TIMEOUT; fi
    python3 "$RUNNER" "$tf" timeout "$limit" "${CMD[@]}" >"$lf" 2>&1 || rc=$?
    if ((rc == 124)); then
        ok=0
        why="timed out after $limit s"
    elif ((rc != 0)); then
        ok=0
        why="exit $rc: $(tail -n 2 "$lf" | tr '\n' ' ' | cut -c1-200)"
    elif ! why="$(verify "$WL_REF" "$out" 2>&1)"; then
        ok=0
    fi
    local wall user sys rss
    read -r wall user sys rss < <(tail -n 1 "$tf")
    rm -rf "$out"
    sync # flush this run's writes now, not during the next tool's run
    if ((run > 0)); then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$wl" "$tool" "$run" "$ok" "$wall" "$user" "$sys" "$rss" >>"$RESULTS"
    fi
    if ((ok)); then
        log "  w$wl run $run $tool: $(printf '%.3fs wall, %.3f+%.3fs cpu' "$wall" "$user" "$sys"), $((rss / 1024)) MiB"
    else
        log "  w$wl run $run $tool: FAILED ($why)"
        printf '%s\t%s\t%s\t%s\n' "$wl" "$tool" "$run" "$why" >>"$WORK/failures.tsv"
    fi
}

# ---------------------------------------------------------------------------
# Machine info
# ---------------------------------------------------------------------------
REPORT="$WORK/report.md"
{
    echo "# fetchbench peer benchmark"
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, kernel $(uname -r)"
    echo "- os: $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "- work dir filesystem: $(df -PT "$WORK" | awk 'NR==2 {print $2}')"
    if [[ -n "${FETCHBENCH:-}" ]]; then
        fb_origin="FETCHBENCH=$FB"
    else
        fb_origin="built from git $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$REPO" diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' + uncommitted changes')"
    fi
    [[ -n "$FB_BASE" ]] && echo "- base build for the A/B rows (ROW@base): FETCHBENCH_BASE=$FB_BASE"
    echo "- fetchbench: $("$FB" --version 2>&1 | head -n1) ($fb_origin)$( ((FB_SEGMENTS)) && echo ', --segments supported' || echo ', no --segments')"
    echo "- curl: $(curl --version | head -n1 | cut -d' ' -f1-2)"
    echo "- aria2c: $(aria2c --version | head -n1 | awk '{print $3}')"
    echo "- wget2: $(wget2 --version 2>&1 | head -n1 | awk '{print $3}')"
    echo "- nginx: $("$NGINX" -v 2>&1 | sed 's/.*nginx\///')"
    echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other processes share the $(nproc) cores)"
    echo "- runs: $RUNS timed + $WARMUP warm-up per tool, interleaved (order rotated each round); $( ((QUICK)) && echo 'QUICK sizes (smoke test)' || echo 'full sizes')"
    echo
} >"$REPORT"

# ---------------------------------------------------------------------------
# Run
# ---------------------------------------------------------------------------
: >"$WORK/failures.tsv"
: >"$WORK/skipped.tsv"
for wl in "${WL_LIST[@]}"; do
    WL_NUM=$wl
    setup_workload "$wl"
    if [[ -n "$WL_SKIP" ]]; then
        log "workload $wl skipped: $WL_SKIP"
        printf '%s\t%s\n' "$wl" "$WL_SKIP" >>"$WORK/skipped.tsv"
        continue
    fi
    log "$WL_TITLE"
    printf '%s\t%s\t%s\t%s\n' "$wl" "$WL_BYTES" "$QUICK" "$WL_TITLE" >>"$META"
    for ((r = 1; r <= WARMUP; r++)); do
        for tool in "${WL_TOOLS[@]}"; do measure "$wl" "$tool" 0; done
    done
    # Interleaved, and the order rotated each round so that no tool always follows the same one.
    for ((r = 1; r <= RUNS; r++)); do
        for ((k = 0; k < ${#WL_TOOLS[@]}; k++)); do
            measure "$wl" "${WL_TOOLS[(k + r - 1) % ${#WL_TOOLS[@]}]}" "$r"
        done
    done
    # Free the disk before the next workload.
    case $wl in 2 | 3 | 4) rm -rf "$WORK/www/w$wl" ;; *) rm -rf "$WL_REF" ;; esac
    # The wide-area servers are stopped as their workload ends (each has its own settings).
    if ((wl >= 6 && wl <= 11)); then
        kill "${SRV_PID[fbwan$wl]}" 2>/dev/null || true
        wait "${SRV_PID[fbwan$wl]}" 2>/dev/null || true
        unset "SRV_PID[fbwan$wl]"
    fi
done

# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
python3 - "$RESULTS" "$META" "$WORK/failures.tsv" "$W1_FILES" "$W1_J" "$W1_LATENCY_MS" \
    "$WAN_RTT_MS" "$WAN_SMALL" "$WAN_STREAMS" "$W11_LINK_MIB" "$W11_RANGES" "$WORK/skipped.tsv" >>"$REPORT" <<'EOF'
import math, statistics, sys
from collections import defaultdict

results, meta_path, failures_path = sys.argv[1:4]
w1_files, w1_j, w1_latency_ms = map(int, sys.argv[4:7])
rtt_ms, wan_small, wan_streams, w11_link_mib, w11_ranges = map(int, sys.argv[7:12])
skipped_path = sys.argv[12]
rtt = rtt_ms / 1000
# The bound of each wide-area workload: the round trips of the handshakes (TCP, then TLS 1.3)
# plus one request round trip per round of `width` files, or the transfer at the link rate.
def wan_bound(wl, nbytes):
    if wl in ("6", "9", "13"):
        return 2 * rtt + math.ceil(wan_small / wan_streams) * rtt, f"2 handshake RTTs + ceil({wan_small}/{wan_streams}) request RTTs"
    if wl == "7":
        return 2 * rtt + math.ceil(wan_small / 64) * rtt, f"2 handshake RTTs + ceil({wan_small}/64) request RTTs (64 connections, fetchbench's cap)"
    if wl == "8":
        return 2 * rtt + math.ceil(wan_small / 16) * rtt, f"2 handshake RTTs + ceil({wan_small}/16) request RTTs"
    if wl == "11":
        return nbytes / (w11_ranges * w11_link_mib * (1 << 20)) + 3 * rtt, f"{nbytes >> 20} MiB / ({w11_ranges} x {w11_link_mib} MiB/s) + 3 RTTs"
    return None, None
GIB = 1 << 30
runs = defaultdict(list)  # (wl, tool) -> rows
order = defaultdict(list)
for line in open(results):
    wl, tool, run, ok, wall, user, sys_, rss = line.rstrip("\n").split("\t")
    key = (wl, tool)
    if tool not in order[wl]:
        order[wl].append(tool)
    runs[key].append(dict(ok=ok == "1", wall=float(wall), cpu=float(user) + float(sys_),
                          rss=int(rss) / 1024))
meta = {}
for line in open(meta_path):
    wl, nbytes, quick, title = line.rstrip("\n").split("\t", 3)
    meta[wl] = (int(nbytes), quick == "1", title)
failures = [l.rstrip("\n").split("\t") for l in open(failures_path) if l.strip()]
skipped = [l.rstrip("\n").split("\t", 1) for l in open(skipped_path) if l.strip()]

def is_peer(tool):
    # A peer at its own settings: not fetchbench, not the floor, not a tool held to
    # HTTP/1.1 (curl-h1: what the path costs over HTTP/1.1, for the HTTP/2 rows).
    return not tool.startswith("fetchbench") and tool != "cp-floor" and not tool.endswith("-h1")

def stats(wl, tool):
    good = [r for r in runs[(wl, tool)] if r["ok"]]
    n_all = len(runs[(wl, tool)])
    if not good:
        return None, n_all
    return dict(
        wall=statistics.median(r["wall"] for r in good),
        cpu=statistics.median(r["cpu"] for r in good),
        rss=max(r["rss"] for r in good),
        walls=[r["wall"] for r in good],
        ok=len(good),
    ), n_all

checks = []
def check(ok, text):
    checks.append(("PASS" if ok else "FAIL") + ": " + text)

for wl in sorted(meta, key=int):
    nbytes, quick, title = meta[wl]
    print(f"## {title}\n")
    st = {t: stats(wl, t)[0] for t in order[wl]}
    peers = {t: s for t, s in st.items() if is_peer(t) and s}
    best_peer = min(peers, key=lambda t: peers[t]["wall"]) if peers else None
    best = peers[best_peer]["wall"] if best_peer else None
    floor = st.get("cp-floor")
    per_gib = wl in ("3", "4", "5")
    head = "| tool | median wall s | median CPU s (user+sys) |"
    head += " CPU s/GiB |" if per_gib else ""
    head += " peak RSS MiB | wall / best peer | runs ok/failed | all walls s |"
    print(head)
    print("|" + "|".join(["---"] * (head.count("|") - 1)) + "|")
    for t in order[wl]:
        s, n_all = stats(wl, t)
        if s is None:
            cells = [t, "failed", "", *([""] if per_gib else []), "", "", f"0/{n_all}", ""]
        else:
            ratio = f"{s['wall'] / best:.2f}" if best else "n/a"
            if t == best_peer:
                ratio += " (best peer)"
            cells = [t, f"{s['wall']:.3f}", f"{s['cpu']:.3f}"]
            if per_gib:
                cells.append(f"{s['cpu'] / (nbytes / GIB):.2f}")
            cells += [f"{s['rss']:.1f}", ratio, f"{s['ok']}/{n_all - s['ok']}",
                      " ".join(f"{w:.3f}" for w in s["walls"])]
        print("| " + " | ".join(cells) + " |")
    print()
    if floor:
        print(f"cp floor (plain `cp -r` of the same files into a fresh directory): {floor['wall']:.3f} s.")
        for t in order[wl]:
            s = st.get(t)
            if s and t != "cp-floor":
                print(f"- {t}: {s['wall'] - floor['wall']:.3f} s above the floor")
        print()

    for t, v in st.items():
        base = st.get(f"{t}@base")
        if v and base and not t.endswith("@base"):
            checks.append(f"A/B: w{wl} {t}: {v['wall']:.3f} s against the base build's {base['wall']:.3f} s (ratio {v['wall'] / max(base['wall'], 1e-9):.2f}; CPU {v['cpu']:.3f} s / {base['cpu']:.3f} s; peak RSS {v['rss']:.1f} / {base['rss']:.1f} MiB)")

    if int(wl) >= 6:
        bound, how = wan_bound(wl, nbytes)
        if bound:
            print(f"Bound: {bound:.2f} s ({how}).\n")
        s = st.get("fetchbench") or st.get("fetchbench-s4")
        name = "fetchbench" if st.get("fetchbench") else "fetchbench-s4"
        if wl in ("6", "7", "10", "13") and best_peer:
            if not s:
                check(False, f"w{wl} {name} at its defaults: no successful runs")
            else:
                check(s["wall"] <= best, f"w{wl} {name} at its defaults: median {s['wall']:.3f} s <= best peer {best_peer} {best:.3f} s (ratio {s['wall'] / max(best, 1e-9):.2f})")
        if wl in ("6", "13") and s and bound:
            check(s["wall"] <= 1.5 * bound, f"w{wl} fetchbench: median {s['wall']:.3f} s within 1.5x of the bound {bound:.2f} s ({s['wall'] / bound:.2f}x)")
        if wl == "12" and s and st.get("curl"):
            c = st["curl"]["wall"]
            check(s["wall"] <= c, f"w12 fetchbench at its defaults: median {s['wall']:.3f} s <= curl's {c:.3f} s (ratio {s['wall'] / c:.2f})")
        if wl in ("10", "12") and s and st.get("fetchbench-h1"):
            h1 = st["fetchbench-h1"]["wall"]
            check(s["wall"] <= 1.1 * h1, f"w{wl} fetchbench over HTTP/2: median {s['wall']:.3f} s within 1.1x of --http1.1's {h1:.3f} s ({s['wall'] / h1:.2f}x)")
        if wl in ("10", "12") and st.get("curl") and st.get("curl-h1"):
            c2, c1 = st["curl"]["wall"], st["curl-h1"]["wall"]
            checks.append(f"INFO: w{wl} curl over HTTP/2 {c2:.3f} s, with --http1.1 {c1:.3f} s ({c2 / c1:.2f}x: what HTTP/2 costs on this path)")
        if wl in ("8", "9", "11"):
            for t, v in st.items():
                if t.startswith("fetchbench") and v and best_peer:
                    ratio = f"{v['wall'] / bound:.2f}x the bound, " if bound else ""
                    checks.append(f"INFO: w{wl} {t}: {v['wall']:.2f} s, {ratio}best peer {best_peer} {best:.2f} s (ratio {v['wall'] / max(best, 1e-9):.2f})")
        continue

    for fb in ("fetchbench-pool", "fetchbench-async"):
        s = st.get(fb)
        if wl in ("1", "2", "3", "4"):
            if not s or not best_peer:
                check(False, f"w{wl} {fb}: median wall <= best peer's (no successful runs)")
            else:
                check(s["wall"] <= best, f"w{wl} {fb}: median wall {s['wall']:.3f} s <= best peer {best_peer} {best:.3f} s (ratio {s['wall'] / max(best, 1e-9):.2f})")
        if wl == "1" and s:
            ideal = math.ceil(w1_files / w1_j) * w1_latency_ms / 1000
            check(s["wall"] <= ideal * 1.05, f"w1 {fb}: median wall {s['wall']:.3f} s within 5% of the theoretical {ideal:.2f} s (limit {ideal * 1.05:.3f} s; {100 * (s['wall'] / ideal - 1):+.1f}%)")
        if wl == "2" and s and floor and best_peer:
            mine, theirs = s["wall"] - floor["wall"], best - floor["wall"]
            # The inequality holds its meaning when the peer is at or under the floor (the
            # tools' network work overlaps cp's reading of its source files): fetchbench must
            # then be further under it.
            at_floor = " (best peer at or under the floor)" if theirs <= 0 else ""
            check(mine <= theirs / 2, f"w2 {fb}: time above cp floor {mine:+.3f} s <= half of best peer's {theirs:+.3f} s (= {theirs / 2:+.3f} s){at_floor}")
        if wl in ("3", "4") and s:
            gib = nbytes / GIB
            c = st.get("curl")
            if c:
                check(s["cpu"] / gib <= c["cpu"] / gib, f"w{wl} {fb}: CPU {s['cpu'] / gib:.2f} s/GiB <= curl's {c['cpu'] / gib:.2f} s/GiB")
            check(s["rss"] < 32, f"w{wl} {fb}: peak RSS {s['rss']:.1f} MiB < 32 MiB")
    if wl == "5":
        for t, s in st.items():
            if t.startswith("fetchbench") and s and best_peer:
                checks.append(f"INFO: w5 {t}: {s['wall']:.2f} s vs best peer {best_peer} {best:.2f} s (ratio {s['wall'] / max(best, 1e-9):.2f})")

for wl, why in skipped:
    print(f"## Workload {wl}: skipped ({why})\n")
print("## Target checks\n")
print("```")
for c in checks:
    print(c)
print("```")
if failures:
    print("\n## Failed runs\n")
    for wl, tool, run, why in failures:
        kind = "warm-up" if run == "0" else f"run {run}"
        print(f"- w{wl} {tool} {kind}: {why}")
EOF

printf '\nLoad average at the end: %s.\n' "$(cut -d' ' -f1-3 /proc/loadavg)" >>"$REPORT"
if ((SERVER_RESTARTS)); then
    printf '\nWARNING: servers died and were restarted %d time(s) during the benchmark (see the failed runs).\n' "$SERVER_RESTARTS" >>"$REPORT"
fi
cat "$REPORT"
if [[ -n "$OUT_FILE" ]]; then
    cp "$REPORT" "$OUT_FILE"
    log "report written to $OUT_FILE"
fi
