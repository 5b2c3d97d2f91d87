#!/usr/bin/env python3
"""profile_categories.py - sums a `perf record` profile of an nfscale process into the categories a training step
spends CPU time on (oneDNN convolutions, OpenBLAS GEMMs, nfscale's fused and direct kernels (grouped, dense), the
optimiser, data loading, allocation, dispatch/autograd, start-up) and prints each one's share of the samples.

    perf record -F 999 -o P.data nfscale --threads 1 train --model nano-F0 ... ; bench/profile_categories.py P.data

Shares are of CPU samples (not wall time), so they hold on a shared machine; the first matching rule wins.
"""
import collections
import re
import subprocess
import sys

# (category, predicate on (dso, symbol)); order matters: the first match wins.
RULES = [
    ("oneDNN convolutions (JIT code + libdnnl)", lambda d, s: d.startswith("[JIT]") or "libdnnl" in d),
    ("OpenBLAS sgemm (pointwise convs as GEMM, SE, classifier)", lambda d, s: "openblas" in d or "libblas" in d),
    ("nfscale direct grouped 3x3 kernels", lambda d, s: "conv3x3::" in s),
    ("nfscale dense small-channel 3x3 kernels (stems)", lambda d, s: "dense3x3::" in s),
    ("nfscale fused GELU", lambda d, s: "gelu_" in s and "fused::" in s),
    ("nfscale fused residual tail", lambda d, s: "tail_" in s and "fused::" in s),
    ("nfscale fused WS", lambda d, s: "StandardizeWeight" in s),
    ("SgdAgc fused update", lambda d, s: "optim::" in s),
    ("data loading (resize, normalise, batches)", lambda d, s: "data::" in s),
    ("malloc/free", lambda d, s: "libc.so" in d and re.search(r"malloc|free|unlink_chunk|_int_|consolidate|memalign", s)),
    ("memcpy/memset", lambda d, s: "libc.so" in d and re.search(r"mem(move|cpy|set)", s)),
    ("dynamic linker (start-up symbol binding)", lambda d, s: "ld-linux" in d),
    ("kernel (page faults, scheduling, I/O)", lambda d, s: "kernel" in d),
    ("zlib (dataset decompression)", lambda d, s: "libz" in d),
    ("libtorch/c10 (dispatch, autograd, ATen small ops)", lambda d, s: "libtorch" in d or "libc10" in d),
]


def main(path):
    out = subprocess.run(["perf", "report", "-i", path, "--no-children", "--sort", "dso,sym", "-g", "none",
                          "-F", "overhead,dso,sym", "--percent-limit", "0"],
                         capture_output=True, text=True, check=True).stdout
    shares = collections.defaultdict(float)
    other = 0.0
    for line in out.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\S+(?: tid \d+)?)\s+\[.\]\s+(.*)", line)
        if not m:
            continue
        pct, dso, sym = float(m.group(1)), m.group(2), m.group(3)
        name = next((n for n, f in RULES if f(dso, sym)), None)
        if name:
            shares[name] += pct
        else:
            other += pct
    for name, pct in sorted(shares.items(), key=lambda kv: -kv[1]):
        print("%6.1f%%  %s" % (pct, name))
    print("%6.1f%%  other (libc, libstdc++, nfscale misc)" % other)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: profile_categories.py PERF_DATA")
    main(sys.argv[1])
