#!/usr/bin/python3
# peer_parts.py - where the previous peer lost time: times the parts bench/peer_nfnet.py rewrote, old formulation
# against new, alternating in one process (medians and [min..max] of the repetitions): weight standardisation over
# every conv of the model (forward alone, as in inference, and forward + backward), the residual tail, the
# optimiser step, and whole inference / training steps with each WS formulation.
#   bench/peer_parts.py [--model F0|mini-F3] [--threads N] [--reps N] [--batch B] [--res R] [--precision fp32|bf16]
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer_nfnet as pn  # noqa: E402

ARCHS = {  # as nfscale's registry builds them (bench passes the same fields)
    "F0": {"depths": [1, 2, 6, 3], "widths": [256, 512, 1536, 1536], "stem_widths": [16, 32, 64], "group_width": 128,
           "classes": 1000, "in_channels": 3, "dropout": 0.2},
    "mini-F3": {"depths": [2, 4, 12, 6], "widths": [32, 64, 192, 192], "stem_widths": [8, 8, 8], "group_width": 16,
                "classes": 10, "in_channels": 1, "dropout": 0.4},
}


def old_tail(h, shortcut, s, skip_gain, alpha):
    """The previous peer: x * (sigmoid * 2), then * skip_gain * alpha + shortcut (4 passes over the map)."""
    return (h * (s * 2.0)[:, :, None, None]) * skip_gain * alpha + shortcut


def new_tail(h, shortcut, s, skip_gain, alpha):
    return torch.addcmul(shortcut, h, (s * (skip_gain * (2.0 * alpha)))[:, :, None, None])


@torch.no_grad()
def old_opt_step(params, lr=1e-3, m=0.9, wd=2e-5, clip=0.01, eps=1e-3):
    """The previous peer's SgdAgc.step (out-of-place where() clipping)."""
    for p, decay, agc, dims, buf in params:
        g = p.grad
        if agc:
            def unorm(t):
                return (t * t).sum(dim=dims, keepdim=True).sqrt() if dims else t.abs()
            max_norm = unorm(p).clamp_min(eps) * clip
            gn = unorm(g)
            g = torch.where(gn > max_norm, g * (max_norm / gn.clamp_min(1e-6)), g)
        if decay:
            g = g + wd * p
        buf.mul_(m).add_(g)
        p.sub_(lr * (g + m * buf))


def timed(fn, n=1):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="F0", choices=sorted(ARCHS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--res", type=int, default=64)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    a = dict(ARCHS[o.model], bottleneck_ratio=0.5, se_ratio=0.5, alpha=0.2, final_conv_mult=2)
    torch.manual_seed(0)
    model = pn.NFNet(a)
    for n, p in model.named_parameters():
        if n.endswith("skip_gain"):
            p.data.fill_(0.5)
    convs = [m for m in model.modules() if isinstance(m, pn.WSConv2d)]
    bf16 = o.precision == "bf16"
    x = torch.empty(o.batch, a["in_channels"], o.res, o.res, memory_format=torch.channels_last).normal_()
    ws_all = {"reference (previous peer)": pn.ws_reference, "batch_norm (timm)": pn.ws_batchnorm,
              "var_mean + addcmul": pn.ws_varmean}

    parts = {}  # name -> {variant: [seconds per rep]}

    def add(part, variant, s):
        parts.setdefault(part, {}).setdefault(variant, []).append(s)

    # one [B, C, H, W] map of the biggest stage-3 block at this resolution, for the tail
    hw = max(1, o.res // 16)
    c = a["widths"][2]
    h = torch.randn(o.batch, c, hw, hw).contiguous(memory_format=torch.channels_last)
    sc, s = torch.randn_like(h), torch.rand(o.batch, c)
    skip = torch.tensor(0.5)
    # optimiser state: random gradients, both optimisers' own buffers
    opt = pn.SgdAgc(model)
    old_params = [(p, d, g, dims, torch.zeros_like(p)) for (p, d, g, dims, _) in opt.params]
    grads = [torch.randn_like(p) * 1e-2 for p in model.parameters()]

    def set_grads():
        for p, g in zip(model.parameters(), grads):
            p.grad = g.clone()

    def ws_forward(fn):
        with torch.inference_mode():
            for m in convs:
                w = fn(m.weight, m.gain, m.fan_in)
                if bf16:
                    w.to(torch.bfloat16)

    def ws_fwd_bwd(fn):
        outs = [fn(m.weight, m.gain, m.fan_in) for m in convs]
        torch.autograd.backward(outs, [torch.ones_like(w) for w in outs])
        for m in convs:
            m.weight.grad = m.gain.grad = None

    def infer(fn):
        pn._ws = fn
        model.eval()
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    def train(fn):
        pn._ws = fn
        model.train()
        for p in model.parameters():
            p.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = model(x)
        y.float().logsumexp(1).mean().backward()

    for fn in ws_all.values():  # warm-up
        ws_forward(fn), ws_fwd_bwd(fn), infer(fn), train(fn)
    old_tail(h, sc, s, skip, 0.2), new_tail(h, sc, s, skip, 0.2)
    set_grads(), old_opt_step(old_params), set_grads(), opt.step(1e-3)
    for r in range(o.reps):
        order = list(ws_all.items()) if r % 2 == 0 else list(reversed(ws_all.items()))
        for name, fn in order:
            add("WS over all %d convs, forward (inference)" % len(convs), name, timed(lambda: ws_forward(fn)))
            add("WS over all %d convs, forward + backward" % len(convs), name, timed(lambda: ws_fwd_bwd(fn)))
            add("inference batch (%s, channels_last, native GELU)" % o.precision, name, timed(lambda: infer(fn)))
            add("forward + backward of a training step (no optimiser)", name, timed(lambda: train(fn)))
        for name, fn in ((("previous", old_tail), ("addcmul", new_tail)) if r % 2 == 0 else
                         (("addcmul", new_tail), ("previous", old_tail))):
            add("residual tail on [%d,%d,%d,%d] fp32 (x10)" % (o.batch, c, hw, hw), name,
                timed(lambda: fn(h, sc, s, skip, 0.2), 10))
        for name, step in ((("previous", lambda: old_opt_step(old_params)), ("in place", lambda: opt.step(1e-3)))
                           if r % 2 == 0 else (("in place", lambda: opt.step(1e-3)),
                                               ("previous", lambda: old_opt_step(old_params)))):
            set_grads()
            add("optimiser step (%.1fM params)" % (sum(p.numel() for p in model.parameters()) / 1e6), name,
                timed(step))
    print("peer_parts: %s @%d px, batch %d, %s, %d threads, %d reps, load %s" % (
        o.model, o.res, o.batch, o.precision, o.threads, o.reps, open("/proc/loadavg").read().split()[0]))
    out = {}
    for part, variants in parts.items():
        print("  " + part)
        for v, ts in variants.items():
            ms = [1e3 * t for t in ts]
            print("    %-28s %9.2f ms [%.2f..%.2f]" % (v, statistics.median(ms), min(ms), max(ms)))
        out[part] = {v: [1e3 * t for t in ts] for v, ts in variants.items()}
    if os.environ.get("PEER_PARTS_JSON"):
        json.dump(out, open(os.environ["PEER_PARTS_JSON"], "w"), indent=1)


if __name__ == "__main__":
    main()
