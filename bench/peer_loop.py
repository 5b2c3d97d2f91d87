"""peer_loop.py - what the PyTorch peers of `nfscale bench` (peer_nfnet.py, peer_vit.py) share: timing a step and
answering nfscale's JSON-line commands (train, infer, info, quit) on stdin/stdout; and the same glibc malloc
tuning nfscale applies to itself (util/runtime.cpp), so neither side pays page faults the other does not."""
import ctypes
import json
import os
import resource
import sys
import time

# nfscale's defaults (util/runtime.h RuntimeOptions): allocations below 1 GiB come from the heap, and up to 2 GiB of
# free heap is kept. Without them glibc returns every large temporary (a 16 MB activation, say) to the kernel with
# munmap and page-faults it back on the next step: the untuned peer lost 35% of its F0 inference rate to that.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def tune_malloc():
    """Applies nfscale's mallopt settings unless NFSCALE_MALLOC_TUNE=0 (the same switch nfscale obeys; the peer
    inherits nfscale's environment). Returns whether they were applied."""
    if os.environ.get("NFSCALE_MALLOC_TUNE", "1") == "0":
        return False
    libc = ctypes.CDLL("libc.so.6")
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30)) and bool(libc.mallopt(M_TRIM_THRESHOLD, (1 << 31) - 1))


MALLOC_TUNED = tune_malloc()


def timed(fn, n):
    """Seconds for n calls of fn."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def serve(model, train_step, infer_step, params, config):
    """Answers commands until "quit" (or any unknown one): train/infer run `steps` steps and reply their seconds;
    info replies the parameter count, the chosen config and the peak RSS."""
    for line in sys.stdin:
        c = json.loads(line)
        if c["cmd"] == "train":
            model.train()
            print(json.dumps({"seconds": timed(train_step, c["steps"])}), flush=True)
        elif c["cmd"] == "infer":
            model.eval()
            s = timed(infer_step, c["steps"])
            model.train()
            print(json.dumps({"seconds": s}), flush=True)
        elif c["cmd"] == "info":
            print(json.dumps({"params": params, "config": config, "malloc_tuned": MALLOC_TUNED,
                              "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
        else:
            break
