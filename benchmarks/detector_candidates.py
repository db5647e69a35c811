"""Candidate drift detectors compared on a study's per-pair statistics (the
numpy simulation behind bundle format 5's choice, docs/validation.md).

Reads DIR/streams/<surface>/statistics.csv written by
`spanwatch study --streams -o DIR`, sets each candidate's threshold for an
ARL0 of 30,000 on an iid smoothed bootstrap of the calibration pairs' normal
scores, and prints its false alarms per 10,000 on the held-out good pairs
and its mean delay on each held-out degraded generator. The absolute rates
are not the study's (no blocks by source); only the ranking was used.

  python benchmarks/detector_candidates.py DIR VARIANT w|n [SURFACE ...]

VARIANT: v4 (format 4), v4d (plus diagonals), v5 / v5nodiag / v6 / v6b
(banks in log-likelihood units); w: residuals given the other score
(format 5 is `v4 w`), n: each score alone.
"""
import csv, sys, numpy as np
R=2**-.5
def load(surf):
    rows=list(csv.DictReader(open(f'{sys.argv[1]}/streams/{surf}/statistics.csv')))
    d={}
    for r in rows:
        d.setdefault((r['split'],r['generator']),[]).append((float(r['alignment_score']),float(r['size_score'])))
    return {k:np.array(v) for k,v in d.items()}
def bank(name, rho=0.0):
    if name=='v4':  # format 4 in std units: k=0.5 alignment, k=1 sizes  -> as (direction, k, scale)
        return [((-1,0),1.0),((0,-1),2.0),((0,1),2.0)], 'std'
    if name=='v5':
        return [((-1,0),1.0),((-1,0),2.0),((0,-1),2.0),((0,1),2.0),((-R,-R),2.0),((-R,R),2.0)], 'llr'
    if name=='v5nodiag':
        return [((-1,0),1.0),((-1,0),2.0),((0,-1),2.0),((0,1),2.0)], 'llr'
    if name=='v4d':
        return [((-1,0),1.0),((0,-1),2.0),((0,1),2.0),((-R,-R),2.0),((-R,R),2.0)], 'std'
    if name=='v6':
        return [((-1,0),1.0),((-1,0),2.0),((0,-1),3.0),((0,1),3.0),((-R,-R),3.0),((-R,R),3.0)], 'llr'
    if name=='v6b':
        return [((-1,0),1.0),((-1,0),2.0),((0,-1),3.0),((0,1),3.0),((-R,-R),2.0),((-R,R),2.0)], 'llr'
def steps(z, charts, kind, h, Sinv):
    # z: (..., 2) -> (..., C) increments
    out=[]
    for (u,v),d in charts:
        mu=np.array([u,v])*d
        if kind=='std':
            m=Sinv@np.array([u,v]); m=m/np.sqrt(m@np.linalg.inv(Sinv)@m)
            k=d/2; out.append(z@m - k)
        else:
            m=Sinv@mu
            out.append(np.minimum(z@m - 0.5*mu@m, 0.6*h))
    return np.stack(out,-1)
def crossings(z, charts, kind, h, Sinv):
    # z: (S, T, 2) streams; restart after crossing; returns count of crossings
    S,T,_=z.shape
    inc=steps(z,charts,kind,h,Sinv)
    sums=np.zeros((S,len(charts))); n=0
    for t in range(T):
        sums=np.maximum(0,sums+inc[:,t]); c=sums.max(1)>h; n+=c.sum(); sums[c]=0
    return n
def draw(rng, data, S, T, bw):
    i=rng.integers(0,len(data),(S,T)); z=data[i]
    if bw: z=z+bw*rng.standard_normal(z.shape)
    return np.clip(z,-6,6)
def calibrate(cal, charts, kind, Sinv, rng, target=30000):
    z=draw(rng,cal,1000,3000,1.06*len(cal)**-0.2)
    lo,hi=1e-3,200
    for _ in range(25):
        mid=(lo+hi)/2
        arl=z.shape[0]*z.shape[1]/max(1,crossings(z,charts,kind,mid,Sinv))
        if arl>=target: hi=mid
        else: lo=mid
    return hi
def delay(data, charts, kind, h, Sinv, rng, S=400, T=300):
    z=np.clip(data[rng.integers(0,len(data),(S,T))],-6,6)
    inc=steps(z,charts,kind,h,Sinv); sums=np.zeros((S,len(charts))); d=np.full(S,T)
    done=np.zeros(S,bool)
    for t in range(T):
        sums=np.maximum(0,sums+inc[:,t]); c=(sums.max(1)>h)&~done; d[c]=t+1; done|=c
    return d.mean()
variant=sys.argv[2]; whiten=sys.argv[3]=='w'
for surf in sys.argv[4:] if len(sys.argv)>4 else ['brick','grass','gravel']:
    D=load(surf); cal=D[('calibration','faithful')]
    rho=np.corrcoef(cal.T)[0,1] if whiten else 0.0
    Sinv=np.linalg.inv(np.array([[1,rho],[rho,1]]))
    charts,kind=bank(variant)
    rng=np.random.default_rng(0)
    h=calibrate(cal,charts,kind,Sinv,rng)
    z=draw(rng,D[('held_out','faithful')],10000,1000,0)
    fa=crossings(z,charts,kind,h,Sinv)/1e7*1e4
    gens=[g for (s,g) in D if s=='held_out' and g!='faithful']
    ds=' '.join(f'{g}:{delay(D[("held_out",g)],charts,kind,h,Sinv,rng):.1f}' for g in sorted(gens))
    print(f'{variant}{"w" if whiten else ""} {surf} rho={rho:.2f} h={h:.2f} FA/10k={fa:.2f} | {ds}', flush=True)
