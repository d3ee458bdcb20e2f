#!/bin/bash
# ab.sh LABEL BIN DATA OUT: one build's commands workload on a fresh copy of DATA (a data directory
# after scorecard.sh): acld idle 40 s, then 1, 4 and 16 clients 20 s each; prints acld's CPU a
# command (utime+stime of /proc/PID/stat over the commands done). Interleave builds: A1 B1 A2 B2.
L=$1; BIN=$2; SRC=$3; OUT=$4/$L; rm -rf $OUT; mkdir -p $OUT; D=$4/data-$L; rm -rf $D; cp -a $SRC $D
$BIN/acld --data $D --nats-listen 127.0.0.1:4758 --http-listen 127.0.0.1:8758 --pprof 127.0.0.1:6758 >> $OUT/acld.log 2>&1 & P=$!
sleep 40; l0=$(awk '{print $1}' /proc/loadavg)
c0=$(awk '{print $14+$15}' /proc/$P/stat)
$BIN/aclbench run commands --load none --presets compare --records 2e5 --principals 10000 --nats-url nats://127.0.0.1:4758 --http-url http://127.0.0.1:8758 --quiet --duration 20s --out $OUT/cmd.json > $OUT/cmd.txt 2>&1
c1=$(awk '{print $14+$15}' /proc/$P/stat); l1=$(awk '{print $1}' /proc/loadavg)
n=$(python3 -c "import json,re;s=json.dumps(json.load(open('$OUT/cmd.json')));print(sum(int(x) for x in re.findall(r'\"ops\": (\d+)',s)))")
echo "$L load $l0/$l1 cmds $n cpu $(( (c1-c0)*10 ))ms us/cmd $(( (c1-c0)*10000000/n/1000 )) $(grep -E 'clients=' $OUT/cmd.txt | grep commands/s | awk '{print $2, $4}' | tr '\n' ' ')" | tee -a $4/log
kill $P; wait $P; rm -rf $D
