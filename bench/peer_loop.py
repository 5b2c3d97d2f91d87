"""peer_loop.py - what the PyTorch peers of `nfscale bench` (peer_nfnet.py, peer_vit.py) share: timing a step and
answering nfscale's JSON-line commands (train, infer, info, quit) on stdin/stdout; and the same glibc malloc
tuning nfscale applies to itself (util/runtime.cpp), so neither side pays page faults the other does not."""
import ctypes
import json
import os
import resource
import sys
import time

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def tune_malloc():
    """Applies the glibc malloc thresholds nfscale itself runs with. `nfscale bench` passes them in
    NFSCALE_PEER_MALLOC as "<mmap threshold bytes>:<trim threshold bytes>", or "off" (NFSCALE_MALLOC_TUNE=0), from
    their one source, util/runtime.h's malloc_tuning(). Without them glibc returns every large temporary (a 16 MB
    activation, say) to the kernel with munmap and page-faults it back on the next step: the untuned peer lost 35% of
    its F0 inference rate to that. Run by hand without the variable, the peer keeps glibc's defaults. Returns the
    applied settings, or None."""
    given = os.environ.get("NFSCALE_PEER_MALLOC", "off")
    if given == "off":
        return None
    try:
        mmap_threshold, trim_threshold = (int(v) for v in given.split(":"))
    except ValueError:
        sys.exit("peer_loop.py: NFSCALE_PEER_MALLOC='%s' is not '<mmap bytes>:<trim bytes>' or 'off' "
                 "(nfscale bench sets it; unset it to run with glibc's defaults)" % given)
    libc = ctypes.CDLL("libc.so.6")
    if not (libc.mallopt(M_MMAP_THRESHOLD, mmap_threshold) and libc.mallopt(M_TRIM_THRESHOLD, trim_threshold)):
        sys.exit("peer_loop.py: glibc refused NFSCALE_PEER_MALLOC='%s'" % given)
    return {"mmap_threshold": mmap_threshold, "trim_threshold": trim_threshold}


MALLOC = tune_malloc()


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
            print(json.dumps({"params": params, "config": config, "malloc_tuned": MALLOC is not None,
                              "malloc": MALLOC,
                              "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
        else:
            break
