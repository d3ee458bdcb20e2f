#!/bin/bash
# idle.sh BIN DATA OUT: acld on DATA, 40 s, commands 16 clients 20 s, then RSS and heap every 10 s for 150 s
BIN=$1; D=$2; OUT=$3; mkdir -p $OUT
$BIN/acld --data $D --nats-listen 127.0.0.1:4758 --http-listen 127.0.0.1:8758 --pprof 127.0.0.1:6758 >> $OUT/acld.log 2>&1 & P=$!
sleep 40
$BIN/aclbench run commands --load none --presets compare --records 2e5 --principals 10000 --nats-url nats://127.0.0.1:4758 --http-url http://127.0.0.1:8758 --quiet --clients 16 --duration 20s --out $OUT/cmd.json > $OUT/cmd.txt 2>&1
for i in $(seq 0 15); do
  echo "+$((i*10))s rss $(awk '/^Rss/{print int($2/1024)}' /proc/$P/smaps_rollup) $(curl -s 127.0.0.1:8758/metrics | grep -E '^go_memstats_heap_(inuse|alloc)_bytes|^acl_c_heap_bytes' | awk '{printf "%s=%d ", $1, $2/1048576}')" | tee -a $OUT/log
  sleep 10
done
curl -s '127.0.0.1:6758/debug/pprof/heap?gc=1' > $OUT/heap.prof
kill $P; wait $P
