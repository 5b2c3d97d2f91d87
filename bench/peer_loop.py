"""peer_loop.py - what the PyTorch peers of `nfscale bench` (peer_nfnet.py, peer_vit.py) share: timing a step and
answering nfscale's JSON-line commands (train, infer, info, quit) on stdin/stdout."""
import json
import resource
import sys
import time


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
            print(json.dumps({"params": params, "config": config,
                              "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
        else:
            break
