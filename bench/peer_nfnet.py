#!/usr/bin/python3
# peer_nfnet.py - the Python/PyTorch peer of `nfscale bench`: builds the same NFNet as nfscale's C++ model from an
# architecture given as JSON (argv[1]), with PyTorch's best CPU settings - the fastest of fp32 / bf16 autocast x
# NCHW / channels_last x every *correct* tanh-GELU it gradient-checks, chosen separately for training and inference
# by timing at start-up - and times training steps (soft-target cross-entropy +
# SGD-Nesterov with adaptive gradient clipping, as nfscale's trainer) and inference on command.
# Protocol: one JSON object per line on stdin -> one per line on stdout:
#   {"cmd":"train","steps":N} -> {"seconds":s}   {"cmd":"infer","steps":N} -> {"seconds":s}
#   {"cmd":"info"} -> {"params":..,"config":{"train":..,"infer":..},"maxrss_kb":..}   {"cmd":"quit"}
# On start-up it prints {"ready":true,...} after building, checking and warming up.
import json
import math
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

GAMMA_GELU = 1.7015043497085571


# ---- GELU variants ---------------------------------------------------------------------------------------------
class _FlatGelu(torch.autograd.Function):
    """tanh-GELU over the tensor's dense storage as a 1-D array (layout-agnostic, exact same math as aten)."""

    @staticmethod
    def forward(ctx, x):
        xf = x.permute(0, 2, 3, 1).reshape(-1) if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) \
            else x.contiguous().reshape(-1)
        ctx.save_for_backward(xf)
        ctx.shape, ctx.cl = x.shape, x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        yf = torch.ops.aten.gelu(xf, approximate="tanh")
        return _unflat(yf, ctx.shape, ctx.cl)

    @staticmethod
    def backward(ctx, g):
        (xf,) = ctx.saved_tensors
        gf = g.permute(0, 2, 3, 1).reshape(-1) if ctx.cl else g.contiguous().reshape(-1)
        return _unflat(torch.ops.aten.gelu_backward(gf, xf, approximate="tanh"), ctx.shape, ctx.cl)


def _unflat(yf, shape, cl):
    if cl:
        b, c, h, w = shape
        return yf.view(b, h, w, c).permute(0, 3, 1, 2)  # channels_last-strided [B,C,H,W]
    return yf.view(shape)


GELUS = {
    "native": lambda x: F.gelu(x, approximate="tanh"),
    "flat": _FlatGelu.apply,
    "formula": lambda x: 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))),
}
_gelu = GELUS["native"]


def act(x):
    return _gelu(x) * GAMMA_GELU


def gelu_gradcheck(fn):
    """Gradient of fn vs the reference F.gelu on NCHW, double, on a channels_last input; also bf16 forward."""
    torch.manual_seed(0)
    x = (torch.randn(2, 5, 3, 4, dtype=torch.double) * 3).contiguous(memory_format=torch.channels_last)
    g = torch.randn(2, 5, 3, 4, dtype=torch.double)
    a = x.clone().requires_grad_()
    b = x.contiguous().requires_grad_()
    (fn(a) * g).sum().backward()
    (F.gelu(b, approximate="tanh") * g).sum().backward()
    ok = torch.allclose(a.grad, b.grad, atol=1e-10) and torch.allclose(fn(x), F.gelu(x.contiguous(), approximate="tanh"))
    return ok and torch.autograd.gradcheck(fn, (x[:1, :2].clone().requires_grad_(),))


# ---- model (mirrors src/nfscale/models/layers.cpp, nfnet.cpp) ----------------------------------------------------
def same_pad(n, k, s):
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class WSConv2d(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.k, self.stride, self.groups = k, stride, groups
        self.weight = nn.Parameter(torch.randn(cout, cin // groups, k, k) / math.sqrt(cin // groups * k * k))
        self.gain = nn.Parameter(torch.ones(cout))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x):
        w = self.weight
        fan_in = w[0].numel()
        mean = w.mean((1, 2, 3), keepdim=True)
        var = w.var((1, 2, 3), unbiased=False, keepdim=True)
        scale = torch.rsqrt(torch.clamp_min(var * fan_in, 1e-4)) * self.gain.view(-1, 1, 1, 1)
        w_hat = w * scale - mean * scale
        ph, pw = same_pad(x.shape[2], self.k, self.stride), same_pad(x.shape[3], self.k, self.stride)
        if ph[0] == ph[1] and pw[0] == pw[1]:
            return F.conv2d(x, w_hat, self.bias, self.stride, (ph[0], pw[0]), 1, self.groups)
        x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
        return F.conv2d(x, w_hat, self.bias, self.stride, 0, 1, self.groups)


class SE(nn.Module):
    def __init__(self, c, ratio):
        super().__init__()
        hidden = max(1, int(c * ratio))
        self.fc0, self.fc1 = nn.Linear(c, hidden), nn.Linear(hidden, c)

    def forward(self, x):
        h = self.fc1(F.relu(self.fc0(x.mean((2, 3)))))
        return x * (torch.sigmoid(h)[:, :, None, None] * 2.0)


class Block(nn.Module):
    def __init__(self, cin, cout, stride, width, groups, se_ratio, alpha, beta):
        super().__init__()
        self.stride, self.alpha, self.beta = stride, alpha, beta
        self.conv0 = WSConv2d(cin, width, 1)
        self.conv1 = WSConv2d(width, width, 3, stride, groups)
        self.conv1b = WSConv2d(width, width, 3, 1, groups)
        self.conv2 = WSConv2d(width, cout, 1)
        self.conv_shortcut = WSConv2d(cin, cout, 1) if (stride > 1 or cin != cout) else None
        self.se = SE(cout, se_ratio)
        self.skip_gain = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        out = act(x) * self.beta
        if self.stride > 1:
            shortcut = self.conv_shortcut(F.avg_pool2d(out, 2, 2, 0, ceil_mode=True, count_include_pad=False))
        elif self.conv_shortcut is not None:
            shortcut = self.conv_shortcut(out)
        else:
            shortcut = x
        h = self.conv0(out)
        h = self.conv1(act(h))
        h = self.conv1b(act(h))
        h = self.se(self.conv2(act(h)))
        return h * self.skip_gain * self.alpha + shortcut


class NFNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        stem_out = list(a["stem_widths"]) + [a["widths"][0] // 2]
        ch, convs = a["in_channels"], []
        for i, w in enumerate(stem_out):
            convs.append(WSConv2d(ch, w, 3, 2 if (i == 0 or i + 1 == len(stem_out)) else 1))
            ch = w
        self.stem = nn.ModuleList(convs)
        blocks, expected = [], 1.0
        for s, (depth, width) in enumerate(zip(a["depths"], a["widths"])):
            for b in range(depth):
                bw = int(width * a["bottleneck_ratio"])
                groups = max(1, bw // a["group_width"])
                if bw % groups:
                    bw = groups * a["group_width"]
                stride = [1, 2, 2, 2][s] if b == 0 else 1
                blocks.append(Block(ch, width, stride, bw, groups, a["se_ratio"], a["alpha"], 1.0 / expected))
                ch = width
                if b == 0:
                    expected = 1.0
                expected = math.sqrt(expected ** 2 + a["alpha"] ** 2)
        self.blocks = nn.ModuleList(blocks)
        self.final_conv = WSConv2d(ch, a["final_conv_mult"] * ch, 1)
        self.fc = nn.Linear(a["final_conv_mult"] * ch, a["classes"])
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)
        self.dropout = a["dropout"]

    def forward(self, x):
        for i, c in enumerate(self.stem):
            x = c(x)
            if i + 1 < len(self.stem):
                x = act(x)
        for b in self.blocks:
            x = b(x)
        x = act(self.final_conv(x)).mean((2, 3))
        return self.fc(F.dropout(x, self.dropout, self.training))


# ---- optimiser (mirrors optim/sgd_agc.cpp: AGC per output unit, then decay, then Nesterov momentum) -------------
class SgdAgc:
    def __init__(self, model, momentum=0.9, wd=2e-5, clip=0.01, eps=1e-3):
        self.params = []
        for name, p in model.named_parameters():
            decay = not (name.endswith("gain") or name.endswith("bias"))
            self.params.append((p, decay, name != "fc.weight", torch.zeros_like(p)))
        self.m, self.wd, self.clip, self.eps = momentum, wd, clip, eps

    @torch.no_grad()
    def step(self, lr):
        for p, decay, agc, buf in self.params:
            g = p.grad
            if agc:
                dims = tuple(range(1, p.dim())) if p.dim() > 1 else None
                def unorm(t):
                    return (t * t).sum(dim=dims, keepdim=True).sqrt() if dims else t.abs()
                max_norm = unorm(p).clamp_min(self.eps) * self.clip
                gn = unorm(g)
                g = torch.where(gn > max_norm, g * (max_norm / gn.clamp_min(1e-6)), g)
            if decay:
                g = g + self.wd * p
            buf.mul_(self.m).add_(g)
            p.sub_(lr * (g + self.m * buf))


def main():
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    torch.manual_seed(0)
    model = NFNet(a)
    for n, p in model.named_parameters():
        if n.endswith("skip_gain"):
            p.data.fill_(0.5)  # as the C++ side: non-zero so every branch's backward runs
    params = sum(p.numel() for p in model.parameters())
    opt = SgdAgc(model)
    B, K, R = a["batch"], a["classes"], a["res"]
    x_nchw = torch.randn(B, a["in_channels"], R, R)
    t = torch.full((B, K), 0.1 / K)
    t[torch.arange(B), torch.randint(0, K, (B,))] += 0.9
    # A configuration is (precision, memory format, gelu); train and inference each use their fastest one.
    cfg = {"train": None, "infer": None}
    state = {"fmt": None}

    def use(c):
        global _gelu
        _gelu = GELUS[c[2]]
        fmt = torch.channels_last if c[1] == "channels_last" else torch.contiguous_format
        if state["fmt"] != fmt:
            model.to(memory_format=fmt)
            # torch.empty gives canonical channels_last strides even for 1 channel, where .contiguous() is a no-op
            x = torch.empty(x_nchw.shape, memory_format=fmt)
            x.copy_(x_nchw)
            state["fmt"], state["x"] = fmt, x
        return c[0] == "bf16"

    def train_step():
        bf16 = use(cfg["train"])
        for p in model.parameters():
            p.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(state["x"])
        loss = -(t * torch.log_softmax(logits.float(), 1)).sum(1).mean()
        loss.backward()
        opt.step(1e-3)

    def infer_step():
        bf16 = use(cfg["infer"])
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(state["x"])

    def timed(fn, n):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - t0

    # Candidates: fp32 and bf16 autocast, NCHW and channels_last; on channels_last every GELU that passes the
    # gradient check (in double, vs F.gelu on NCHW). NCHW uses the native GELU (its layout is the fast one).
    checked = {name: gelu_gradcheck(fn) for name, fn in GELUS.items()}
    candidates = []
    for prec in ("fp32", "bf16"):
        candidates.append((prec, "nchw", "native"))
        candidates += [(prec, "channels_last", g) for g, ok in checked.items() if ok]
    times = {"train": {}, "infer": {}}
    for c in candidates:
        cfg["train"] = cfg["infer"] = c
        model.train()
        train_step()
        times["train"][c] = min(timed(train_step, 1) for _ in range(2))
        model.eval()
        infer_step()
        times["infer"][c] = min(timed(infer_step, 1) for _ in range(2))
        model.train()
    for k in cfg:
        cfg[k] = min(times[k], key=times[k].get)
    model.train(); train_step()
    model.eval(); infer_step(); model.train()
    describe = {k: "/".join(v) for k, v in cfg.items()}
    tried = {k: {"/".join(c): s for c, s in v.items()} for k, v in times.items()}
    print(json.dumps({"ready": True, "params": params, "gelu": describe["train"], "config": describe,
                      "gelu_checked": checked, "tried_step_s": tried, "torch": torch.__version__}), flush=True)
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
            print(json.dumps({"params": params, "config": describe,
                              "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
        else:
            break


if __name__ == "__main__":
    main()
