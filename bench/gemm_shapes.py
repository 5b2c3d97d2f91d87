#!/usr/bin/env python3
"""gemm_shapes.py - OpenBLAS's sgemm (torch.mm in Debian's python3-torch) against oneDNN's (dnnl_sgemm from
libdnnl.so.2, through ctypes) at the ladders' pointwise-conv shapes, single-threaded by default: the measurement
behind models/pointwise_linear.cpp's shape rule (docs/performance.md, issue 12 session 9).

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 /usr/bin/python3 bench/gemm_shapes.py [--reps N]

Prints forward ([M, K] @ [K, N]) and weight-gradient ([K, M] @ [M, N], A transposed) GFLOP/s, medians of N calls,
after checking each oneDNN result against torch's."""
import argparse
import ctypes
import statistics
import time

import torch

SHAPES = [  # (rows M, in K, out N): mini's 1x1 convs at batch 128 (8x8, 4x4, 2x2, 1x1 maps), then nano/micro's
    (8192, 32, 16), (8192, 16, 32), (8192, 16, 16), (2048, 64, 32), (2048, 32, 64), (512, 192, 96), (512, 96, 192),
    (128, 192, 96),
    (8192, 8, 4), (8192, 4, 8), (8192, 8, 8), (2048, 16, 8), (2048, 8, 16), (512, 48, 24), (512, 24, 48),
    (8192, 16, 8), (8192, 8, 16)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=30, help="timed calls per shape and side (median reported)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    sgemm = ctypes.CDLL("libdnnl.so.2").dnnl_sgemm
    sgemm.argtypes = [ctypes.c_char, ctypes.c_char] + [ctypes.c_int64] * 3 + [ctypes.c_float, ctypes.c_void_p,
                      ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p, ctypes.c_int64]

    def dnnl(a, b, c, ta=False):  # row-major c = op(a) @ b
        m, n = c.shape
        k = a.shape[0] if ta else a.shape[1]
        sgemm(b"T" if ta else b"N", b"N", m, n, k, 1.0, a.data_ptr(), a.stride(0), b.data_ptr(), b.stride(0), 0.0,
              c.data_ptr(), c.stride(0))

    def median_time(fn):
        fn()
        ts = []
        for _ in range(args.reps):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return statistics.median(ts)

    print("| M | K | N | fwd OpenBLAS GFLOP/s | fwd oneDNN | dW OpenBLAS | dW oneDNN |")
    print("|---|---|---|---|---|---|---|")
    for m, k, n in SHAPES:
        a, b, c = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
        g, w = torch.randn(m, n), torch.empty(k, n)
        dnnl(a, b, c)
        dnnl(a, g, w, ta=True)
        assert torch.allclose(c, a @ b, rtol=1e-4, atol=1e-3) and torch.allclose(w, a.t() @ g, rtol=1e-4, atol=1e-2)
        flop = 2.0 * m * k * n / 1e9
        t = [median_time(lambda: torch.mm(a, b, out=c)), median_time(lambda: dnnl(a, b, c)),
             median_time(lambda: torch.mm(a.t(), g, out=w)), median_time(lambda: dnnl(a, g, w, ta=True))]
        print("| %d | %d | %d | %s |" % (m, k, n, " | ".join("%.0f" % (flop / x) for x in t)))


if __name__ == "__main__":
    main()
