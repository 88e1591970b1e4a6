#!/bin/sh
# 10,000 × 1 KiB from `fetchbench serve` on 127.0.0.1, 5 rounds of the modes interleaved; wall
# and CPU (user, sys; workers included) by GNU time. MODES="pool procs" to pick modes. Every
# run writes a new directory, all removed at the end: creating files right after deleting as
# many makes ext4 scan for inodes not "recently deleted" (most of the time then goes there).
B=${FETCHBENCH:-target/release/fetchbench}
OUT=${OUT:-$(mktemp -d)}
$B serve --bind 127.0.0.1:0 --files 10000 --size 1KiB --latency 0ms > "$OUT/serve.out" 2>&1 &
SERVER=$!
sleep 0.5
URL=$(head -1 "$OUT/serve.out")
curl -s "$URL/list" > "$OUT/list.txt"
for run in 1 2 3 4 5; do
  for mode in ${MODES:-pool procs spawn}; do
    /usr/bin/time -f "run $run $mode: wall %e s, user %U s, sys %S s" \
      $B -i "$OUT/list.txt" -o "$OUT/dl-$run-$mode" --mode $mode -q > /dev/null
    [ "$(ls "$OUT/dl-$run-$mode" | wc -l)" = 10000 ] || echo "run $run $mode: files missing"
  done
done
kill $SERVER
rm -rf "$OUT"/dl-*
