# Share of perf samples by thread, and by function anywhere on the stack: python3 stacks.py perf.data NAME,NAME,...
import sys, subprocess, collections
data = sys.argv[1]; markers = sys.argv[2].split(',') if len(sys.argv) > 2 else []
out = subprocess.run(['perf','script','-i',data,'-F','comm,ip,sym'],capture_output=True,text=True).stdout
comm = collections.Counter(); inc = collections.Counter(); total = 0
cur = None; stack = []
def flush():
    global total
    if cur is None: return
    total += 1; comm[cur] += 1
    st = '\n'.join(stack)
    for m in markers:
        if m in st: inc[(cur, m)] += 1
for line in out.split('\n'):
    if line and not line[0].isspace():
        flush(); cur = line.split()[0]; stack = []
    elif line.strip():
        stack.append(line.strip())
flush()
print('total', total)
for c, n in comm.most_common(12): print(f'{100*n/total:6.2f}% {c}')
for (c, m), n in sorted(inc.items(), key=lambda x: -x[1]): print(f'{100*n/total:6.2f}% {c} :: {m}')
