import sys, subprocess, collections, re
data, target = sys.argv[1], sys.argv[2]
out = subprocess.run(['perf','script','-i',data,'-F','ip,sym'],capture_output=True,text=True).stdout
samples = out.split('\n\n')
c = collections.Counter(); total=0; hit=0
for s in samples:
    frames=[l.strip().split(' ',1)[1] if ' ' in l.strip() else l.strip() for l in s.strip().split('\n') if l.strip()]
    if not frames: continue
    total+=1
    for i,f in enumerate(frames):
        if target in f:
            hit+=1
            c[frames[i-1] if i>0 else '(self)']+=1
            break
print(f"{hit}/{total} samples under {target}")
for k,v in c.most_common(12): print(f"{100*v/total:5.1f}% {k[:110]}")
