#!/bin/bash
# threads.sh BIN LABEL: bench post 16 s, sample per-thread CPU ticks of the server over 8 s in the middle
bin=$1; label=$2; OUT=${OUT:-.}
taskset -c 1 "$bin" bench post --duration 16 --server-cpus 0 > $OUT/thr-$label.txt 2>&1 &
sleep 6
pid=$(pgrep -f "$(basename $bin) serve" | head -1)
snap() { for t in /proc/$pid/task/*; do c=$(cat $t/comm); s=($(sed 's/.*) //' $t/stat)); echo "$c ${s[11]} ${s[12]}"; done | awk '{a[$1]+=$2+$3} END {for (k in a) print k, a[k]}' | sort; }
snap > $OUT/thr-$label-a; n0=$(grep -o "hearth *[0-9.]*s *[0-9]* requests" $OUT/thr-$label.txt | tail -1 | awk '{print $3}')
sleep 8
snap > $OUT/thr-$label-b; n1=$(grep -o "hearth *[0-9.]*s *[0-9]* requests" $OUT/thr-$label.txt | tail -1 | awk '{print $3}')
wait
echo "$label requests in window: $((n1-n0))"
join $OUT/thr-$label-a $OUT/thr-$label-b | awk -v n=$((n1-n0)) '{d=$3-$2; tot+=d; printf "%-18s %5d ticks %6.2f us/req\n", $1, d, d*10000/n} END {printf "%-18s %5d ticks %6.2f us/req\n", "TOTAL", tot, tot*10000/n}'
