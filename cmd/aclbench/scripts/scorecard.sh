#!/bin/bash
# scorecard.sh BIN OUT: issue 13's aims at 10^5 on one build: a held import, an import, ryw (one and four
# writers), check-http, commands (1, 4, 16 clients), memory, a restart, commands again.
# BIN holds acld, aclctl and aclbench (go build -o BIN/ ./cmd/...); /tmp/compare.jsonl is
# aclbench gen --presets compare --records 2e5 --principals 10000. Needs curl and bc.
# BIN holds acld aclctl aclbench; ports 4758/8758/6758
set -u
BIN=$1; OUT=$2; mkdir -p $OUT; D=$OUT/data; rm -rf $D $OUT/held
N=nats://127.0.0.1:4758; H=http://127.0.0.1:8758
ld() { awk '{print $1}' /proc/loadavg; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }   # ticks (100/s)
rss() { awk '/^Rss/{print int($2/1024)}' /proc/$1/smaps_rollup; }
start() { $BIN/acld --data $1 --nats-listen 127.0.0.1:4758 --http-listen 127.0.0.1:8758 --pprof 127.0.0.1:6758 >> $OUT/acld.log 2>&1 & P=$!
  for i in $(seq 1 300); do curl -sf $H/metrics >/dev/null 2>&1 && break; sleep 0.2; done; }
lag0() { for i in $(seq 1 1200); do l=$(curl -s $H/metrics | awk '/^acl_projector_lag /{print $2}'); [ "$l" = "0" ] && break; sleep 0.5; done; }
peak() { PK=0; while kill -0 $P 2>/dev/null; do r=$(rss $P 2>/dev/null || echo 0); [ "${r:-0}" -gt $PK ] && PK=$r && echo $PK > $OUT/peak.$1; sleep 1; done; }
log() { echo "$*" | tee -a $OUT/log; }
# 1. held import
start $OUT/held; c0=$(cpu $P); t0=$(date +%s.%N); l0=$(ld)
$BIN/aclctl --nats-url $N import --hold-read-side --progress-file $OUT/p-held /tmp/compare.jsonl > $OUT/held.out 2>&1
t1=$(date +%s.%N); l1=$(ld); lag0; t2=$(date +%s.%N); c2=$(cpu $P)
log "held: ack $(echo "$t1-$t0"|bc) s (load $l0/$l1), caught up +$(echo "$t2-$t1"|bc) s, acld cpu $(echo "($c2-$c0)/100"|bc -l|cut -c1-6) s"
kill $P; wait $P 2>/dev/null; rm -rf $OUT/held
# 2. default import
start $D; peak imp & PPK=$!; c0=$(cpu $P); t0=$(date +%s.%N); l0=$(ld)
$BIN/aclctl --nats-url $N import --progress-file $OUT/p /tmp/compare.jsonl > $OUT/imp.out 2>&1
t1=$(date +%s.%N); l1=$(ld); lag0; t2=$(date +%s.%N); c2=$(cpu $P)
log "import: ack $(echo "$t1-$t0"|bc) s (load $l0/$l1), caught up +$(echo "$t2-$t1"|bc) s, acld cpu $(echo "($c2-$c0)/100"|bc -l|cut -c1-6) s"
sleep 15; log "after import +15s: rss $(rss $P) MB, du $(du -sm $D|cut -f1) MB"
kill $PPK 2>/dev/null; peak wl & PPK=$!
B="$BIN/aclbench run --load none --presets compare --records 2e5 --principals 10000 --nats-url $N --http-url $H --quiet"
$B ryw --via http --workers 1 --ryw-link --duration 20s --out $OUT/ryw1.json > $OUT/ryw1.txt 2>&1; log "ryw1 (load $(ld)): $(grep -i p99 $OUT/ryw1.txt | head -3 | tr '\n' ' ')"
$B ryw --via http --ryw-link --duration 20s --out $OUT/ryw4.json > $OUT/ryw4.txt 2>&1; log "ryw4 (load $(ld)): $(grep -i p99 $OUT/ryw4.txt | head -3 | tr '\n' ' ')"
$B check-http --duration 20s --out $OUT/chk.json > $OUT/chk.txt 2>&1; log "check-http (load $(ld)): $(grep -i 'p99' $OUT/chk.txt | head -3 | tr '\n' ' ')"
c0=$(cpu $P); $B commands --duration 20s --out $OUT/cmd.json > $OUT/cmd.txt 2>&1; c1=$(cpu $P)
log "commands (load $(ld)) acld cpu $(echo "($c1-$c0)/100"|bc -l|cut -c1-6) s: $(grep -iE 'clients|/s' $OUT/cmd.txt | head -6 | tr '\n' ' ')"
$B memory --duration 20s --out $OUT/mem.json > $OUT/mem.txt 2>&1
sleep 40; log "after workloads +40s: rss $(rss $P) MB (peak $(cat $OUT/peak.wl 2>/dev/null)), du $(du -sm $D|cut -f1) MB"
kill $PPK; kill $P; wait $P 2>/dev/null
# 3. restart
start $D; sleep 40; log "restart +40s: rss $(rss $P) MB (load $(ld))"
c0=$(cpu $P); $B commands --duration 20s --out $OUT/cmd2.json > $OUT/cmd2.txt 2>&1; c1=$(cpu $P)
log "commands after restart (load $(ld)) acld cpu $(echo "($c1-$c0)/100"|bc -l|cut -c1-6) s: $(grep -iE 'clients|/s' $OUT/cmd2.txt | head -6 | tr '\n' ' ')"
kill $P; wait $P 2>/dev/null; log "du after restart $(du -sm $D|cut -f1) MB"
