#!/usr/bin/python3
# peer_nfnet.py - the Python/PyTorch peer of `nfscale bench`: the same NFNet as nfscale's C++ model, built from an
# architecture given as JSON (argv[1]) and written the fastest way PyTorch 1.13 on a CPU allows (timm's tricks:
# weight standardisation as ONE F.batch_norm over the weight viewed as [1, O, K], static SAME padding where it is
# symmetric; plus folded scale multiplies, a one-op residual tail and an in-place optimiser), with PyTorch's best
# settings - the fastest of fp32 / bf16 autocast x NCHW / channels_last x every *correct* tanh-GELU it
# gradient-checks (PyTorch's, two layout variants, and the sigmoid form, which is 4x faster in bf16) x both WS
# formulations, chosen separately for training and inference by timing at start-up; with nfscale's malloc tuning
# (peer_loop.py) - and
# times training steps (soft-target cross-entropy + SGD-Nesterov with adaptive gradient clipping, as nfscale's
# trainer) and inference on command.
# Protocol: one JSON object per line on stdin -> one per line on stdout:
#   {"cmd":"train","steps":N} -> {"seconds":s}   {"cmd":"infer","steps":N} -> {"seconds":s}
#   {"cmd":"info"} -> {"params":..,"config":{"train":..,"infer":..},"maxrss_kb":..}   {"cmd":"quit"}
#   {"cmd":"check","weights":PATH,"input":PATH} -> {"logits":{ws variant: [[..]..]}, "names":[..]}: loads nfscale's
#       parameters (a dict name -> tensor written by torch::pickle_save) and an input batch, returns the eval-mode
#       logits in float64 for each WS formulation (tests/perf compares them with nfscale's own forward).
# On start-up it prints {"ready":true,...} after building, checking and warming up ("check_only": true in the
# architecture skips the timing, for the check command; "setting": "bf16/channels_last/flat/batchnorm" fixes the
# setting instead of searching).
# Layer self-checks: `peer_nfnet.py --self-check` compares each fast layer with the plain formula in float64.
import json
import math
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_loop import serve, timed

GAMMA_GELU = 1.7015043497085571
WS_EPS = 1e-4  # nfscale: w_hat = gain * (w - mean) / sqrt(max(var * fan_in, 1e-4))
WS_BN_EPS = 1e-8  # batch_norm WS: gain * (w - mean) / sqrt(var * fan_in + 1e-8)


# ---- GELU variants (each returns scale * gelu_tanh(x)) -------------------------------------------------------------
class _FlatGelu(torch.autograd.Function):
    """tanh-GELU over the tensor's dense storage as a 1-D array (layout-agnostic, exact same math as aten)."""

    @staticmethod
    def forward(ctx, x):
        cl = x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last)
        xf = x.permute(0, 2, 3, 1).reshape(-1) if cl else x.contiguous().reshape(-1)
        ctx.save_for_backward(xf)
        ctx.shape, ctx.cl = x.shape, cl
        return _unflat(torch.ops.aten.gelu(xf, approximate="tanh"), ctx.shape, ctx.cl)

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


GELU_C1 = 1.5957691216057308  # 2 sqrt(2/pi)
GELU_C3 = GELU_C1 * 0.044715


class _SigmoidGelu(torch.autograd.Function):
    """tanh-GELU as x * sigmoid(v), v = 2 sqrt(2/pi) (x + 0.044715 x^3), since 0.5 (1 + tanh(v/2)) = sigmoid(v): the
    same function, in vectorised multiplies and one sigmoid. PyTorch 1.13's bf16 tanh-GELU kernel takes 15 ms on a
    [32, 512, 16, 16] map at 2 threads here; this takes 3.6 ms (4.2x), with the same max error against float64 in
    bf16 (0.010 vs 0.0093; each in-place op rounds to the input's dtype). Saves only x, like aten's."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        v = x * x  # [same shape as x], in x's dtype and layout
        v.mul_(GELU_C3).add_(GELU_C1).mul_(x)
        return torch.sigmoid_(v).mul_(x)

    @staticmethod
    def backward(ctx, g):
        # d/dx x s(v) = s + x s (1 - s) v',  v' = C1 + 3 C3 x^2
        (x,) = ctx.saved_tensors
        x2 = x * x
        s = torch.sigmoid_((x2 * GELU_C3).add_(GELU_C1).mul_(x))
        d = x2.mul_(3.0 * GELU_C3).add_(GELU_C1).mul_(x)  # x v'
        d.mul_(1.0 - s).mul_(s).add_(s)
        return d.mul_(g)


GELUS = {
    "native": lambda x: F.gelu(x, approximate="tanh"),
    "sigmoid": _SigmoidGelu.apply,
    "flat": _FlatGelu.apply,
    "formula": lambda x: 0.5 * x * (1.0 + torch.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))),
}
_gelu = GELUS["native"]


def act(x, scale=GAMMA_GELU):
    """scale * gelu(x); the block input's gamma * beta is folded into one multiply."""
    return _gelu(x) * scale


def gelu_gradcheck(fn):
    """Gradient of fn vs the reference F.gelu on NCHW, double, on a channels_last input."""
    torch.manual_seed(0)
    x = (torch.randn(2, 5, 3, 4, dtype=torch.double) * 3).contiguous(memory_format=torch.channels_last)
    g = torch.randn(2, 5, 3, 4, dtype=torch.double)
    a = x.clone().requires_grad_()
    b = x.contiguous().requires_grad_()
    (fn(a) * g).sum().backward()
    (F.gelu(b, approximate="tanh") * g).sum().backward()
    ok = torch.allclose(a.grad, b.grad, atol=1e-10) and torch.allclose(fn(x), F.gelu(x.contiguous(), approximate="tanh"))
    return ok and torch.autograd.gradcheck(fn, (x[:1, :2].clone().requires_grad_(),))


# ---- weight standardisation variants: w [O, I, kh, kw], gain [O] -> w_hat [O, I, kh, kw] -------------------------
def ws_batchnorm(w, gain, fan_in):
    """timm's ScaledStdConv2d: one fused batch_norm over w as [1, O, K] (K = fan_in), affine weight gain/sqrt(K):
    gain * (w - mean) / sqrt(var * K + 1e-8). nfscale floors instead, max(var * K, 1e-4): the two agree to ~1e-8 / (var
    * K) relative (~1e-8 at the variance-scaling init) and differ only on channels whose variance is below the floor
    (ws_varmean reproduces the floor exactly). The eps only changes numbers, not the speed."""
    o = w.shape[0]
    return F.batch_norm(w.reshape(1, o, -1), None, None, weight=gain * (fan_in ** -0.5), training=True, momentum=0.0,
                        eps=WS_BN_EPS / fan_in).view_as(w)


def ws_varmean(w, gain, fan_in):
    """nfscale's exact formula in two full-size passes: one var_mean, one addcmul (per-channel math on [O, 1])."""
    w2 = w.reshape(w.shape[0], -1)  # [O, K]
    var, mean = torch.var_mean(w2, dim=1, unbiased=False, keepdim=True)  # [O, 1] each
    scale = torch.rsqrt(torch.clamp_min(var * fan_in, WS_EPS)) * gain.view(-1, 1)  # [O, 1]
    return torch.addcmul(-mean * scale, w2, scale).view_as(w)


def ws_reference(w, gain, fan_in):
    """The plain formula (the previous peer; mirrors models/layers.cpp standardize_weight), for the self-check."""
    mean = w.mean((1, 2, 3), keepdim=True)
    var = w.var((1, 2, 3), unbiased=False, keepdim=True)
    return (w - mean) * torch.rsqrt(torch.clamp_min(var * fan_in, WS_EPS)) * gain.view(-1, 1, 1, 1)


WS = {"batchnorm": ws_batchnorm, "varmean": ws_varmean}
_ws = WS["batchnorm"]


# ---- model (mirrors src/nfscale/models/layers.cpp, nfnet.cpp; parameter names are nfscale's) --------------------
def same_pad(n, k, s):
    out = (n + s - 1) // s
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


class WSConv2d(nn.Module):
    def __init__(self, cin, cout, k, stride=1, groups=1):
        super().__init__()
        self.k, self.stride, self.groups = k, stride, groups
        self.fan_in = cin // groups * k * k
        self.weight = nn.Parameter(torch.randn(cout, cin // groups, k, k) / math.sqrt(self.fan_in))
        self.gain = nn.Parameter(torch.ones(cout))
        self.bias = nn.Parameter(torch.zeros(cout))
        # TF 'SAME' is symmetric, hence static, at stride 1 with an odd kernel (timm's is_static_pad)
        self.static_pad = (k - 1) // 2 if stride == 1 and k % 2 == 1 else None

    def forward(self, x):
        w_hat = _ws(self.weight, self.gain, self.fan_in)
        if self.static_pad is not None:
            return F.conv2d(x, w_hat, self.bias, 1, self.static_pad, 1, self.groups)
        ph, pw = same_pad(x.shape[2], self.k, self.stride), same_pad(x.shape[3], self.k, self.stride)
        if ph[0] == ph[1] and pw[0] == pw[1]:
            return F.conv2d(x, w_hat, self.bias, self.stride, (ph[0], pw[0]), 1, self.groups)
        x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))  # asymmetric (stride 2): one extra row/column after
        return F.conv2d(x, w_hat, self.bias, self.stride, 0, 1, self.groups)


class SqueezeExcite(nn.Module):
    def __init__(self, c, ratio):
        super().__init__()
        hidden = max(1, int(c * ratio))
        self.fc0, self.fc1 = nn.Linear(c, hidden), nn.Linear(hidden, c)

    def gate(self, x):
        """x [B, C, H, W] -> sigmoid gate [B, C] (the caller folds in the 2x)."""
        return torch.sigmoid(self.fc1(F.relu(self.fc0(x.mean((2, 3))))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride, width, groups, se_ratio, alpha, beta):
        super().__init__()
        self.stride, self.alpha, self.beta = stride, alpha, beta
        self.conv0 = WSConv2d(cin, width, 1)
        self.conv1 = WSConv2d(width, width, 3, stride, groups)
        self.conv1b = WSConv2d(width, width, 3, 1, groups)
        self.conv2 = WSConv2d(width, cout, 1)
        self.conv_shortcut = WSConv2d(cin, cout, 1) if (stride > 1 or cin != cout) else None
        self.se = SqueezeExcite(cout, se_ratio)
        self.skip_gain = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        out = act(x, GAMMA_GELU * self.beta)
        if self.stride > 1:
            shortcut = self.conv_shortcut(F.avg_pool2d(out, 2, 2, 0, ceil_mode=True, count_include_pad=False))
        elif self.conv_shortcut is not None:
            shortcut = self.conv_shortcut(out)
        else:
            shortcut = x
        h = self.conv0(out)
        h = self.conv1(act(h))
        h = self.conv1b(act(h))
        h = self.conv2(act(h))
        # out = shortcut + alpha * skip_gain * 2 * sigmoid-gate[b, c] * h: the scalars go into the [B, C] gate, then
        # one addcmul over the map
        gate = self.se.gate(h) * (self.skip_gain * (2.0 * self.alpha))  # [B, C]
        return torch.addcmul(shortcut, h, gate[:, :, None, None])


class NFNet(nn.Module):
    def __init__(self, a):
        super().__init__()
        stem_out = list(a["stem_widths"]) + [a["widths"][0] // 2]
        ch = a["in_channels"]
        self.stem = []
        for i, w in enumerate(stem_out):
            conv = WSConv2d(ch, w, 3, 2 if (i == 0 or i + 1 == len(stem_out)) else 1)
            self.add_module("stem_conv%d" % i, conv)
            self.stem.append(conv)
            ch = w
        self.blocks, expected = [], 1.0
        for s, (depth, width) in enumerate(zip(a["depths"], a["widths"])):
            for b in range(depth):
                bw = int(width * a["bottleneck_ratio"])
                groups = max(1, bw // a["group_width"])
                if bw % groups:
                    bw = groups * a["group_width"]
                stride = [1, 2, 2, 2][s] if b == 0 else 1
                block = Block(ch, width, stride, bw, groups, a["se_ratio"], a["alpha"], 1.0 / expected)
                self.add_module("block%d" % len(self.blocks), block)
                self.blocks.append(block)
                ch = width
                if b == 0:
                    expected = 1.0
                expected = math.sqrt(expected ** 2 + a["alpha"] ** 2)
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
    """In place on the fresh gradient (the step sets p.grad = None before each backward, so it owns it):
    g *= min(1, max_norm / max(|g|_unit, 1e-6)) - the same as where(|g| > max_norm, g * max_norm / |g|, g) since
    max_norm >= clip * eps > 1e-6 - then g += wd p, buf = m buf + g, p -= lr (g + m buf)."""

    def __init__(self, model, momentum=0.9, wd=2e-5, clip=0.01, eps=1e-3):
        self.params = []
        for name, p in model.named_parameters():
            decay = not (name.endswith("gain") or name.endswith("bias"))
            dims = tuple(range(1, p.dim())) if p.dim() > 1 else None
            self.params.append((p, decay, name != "fc.weight", dims, torch.zeros_like(p)))
        self.m, self.wd, self.clip, self.eps = momentum, wd, clip, eps

    @torch.no_grad()
    def step(self, lr):
        for p, decay, agc, dims, buf in self.params:
            g = p.grad
            if agc:
                def unorm(t):
                    return torch.linalg.vector_norm(t, dim=dims, keepdim=True) if dims else t.abs()
                max_norm = unorm(p).clamp_min_(self.eps).mul_(self.clip)
                g.mul_(max_norm.div_(unorm(g).clamp_min_(1e-6)).clamp_max_(1.0))
            if decay:
                g.add_(p, alpha=self.wd)
            buf.mul_(self.m).add_(g)
            p.add_(g, alpha=-lr).add_(buf, alpha=-lr * self.m)


# ---- self-check: each fast layer against the plain formula, float64 -----------------------------------------------
def self_check():
    torch.manual_seed(0)
    results = {}
    w = torch.randn(6, 4, 3, 3, dtype=torch.double)
    gain = torch.rand(6, dtype=torch.double) + 0.5
    w[5] *= 1e-4  # one channel below the variance floor: only varmean reproduces max(var * K, 1e-4) there
    ref = ws_reference(w, gain, 36)
    results["ws_varmean_exact"] = torch.allclose(ws_varmean(w, gain, 36), ref, rtol=1e-12, atol=1e-14)
    bn = ws_batchnorm(w, gain, 36)
    results["ws_batchnorm_1e-7"] = torch.allclose(bn[:5], ref[:5], rtol=1e-7, atol=0)
    for name, fn in WS.items():  # gradients in float64 against finite differences
        results["ws_%s_gradcheck" % name] = torch.autograd.gradcheck(
            lambda a, b: fn(a, b, 36), (w[:5].clone().requires_grad_(), gain[:5].clone().requires_grad_()))
    for name, fn in GELUS.items():
        results["gelu_%s" % name] = gelu_gradcheck(fn)
    # the residual tail: addcmul with the folded gate == shortcut + h * gate2 * skip_gain * alpha
    sc, h = torch.randn(2, 3, 4, 4, dtype=torch.double), torch.randn(2, 3, 4, 4, dtype=torch.double)
    s, skip, alpha = torch.rand(2, 3, dtype=torch.double), torch.tensor(0.7, dtype=torch.double), 0.2
    tail = torch.addcmul(sc, h, (s * (skip * (2 * alpha)))[:, :, None, None])
    results["residual_tail"] = torch.allclose(tail, h * (s * 2.0)[:, :, None, None] * skip * alpha + sc, rtol=1e-14)
    # the optimiser: in-place update == the where() formulation of the previous peer
    p = torch.randn(5, 3, dtype=torch.double)
    g = torch.randn(5, 3, dtype=torch.double) * torch.tensor([[1e-4], [1.0], [30.0], [1e-9], [0.0]], dtype=torch.double)
    buf = torch.randn(5, 3, dtype=torch.double)
    mx = (p * p).sum(1, keepdim=True).sqrt().clamp_min(1e-3) * 0.01
    gn = (g * g).sum(1, keepdim=True).sqrt()
    gr = torch.where(gn > mx, g * (mx / gn.clamp_min(1e-6)), g) + 2e-5 * p
    br = buf * 0.9 + gr
    pr = p - 0.1 * (gr + 0.9 * br)
    q = nn.Parameter(p.clone())
    q.grad = g.clone()
    opt = SgdAgc(nn.ModuleDict({"w": nn.Linear(1, 1)}))
    opt.params = [(q, True, True, (1,), buf.clone())]
    opt.step(0.1)
    results["sgd_agc"] = torch.allclose(q.data, pr, rtol=1e-13, atol=1e-15) and torch.allclose(
        opt.params[0][4], br, rtol=1e-13, atol=1e-15)
    return results


def check_against(model, weights_path, input_path):
    """Eval-mode float64 logits of nfscale's weights and input, once per WS formulation."""
    global _ws
    state = torch.load(weights_path)
    names = [n for n, _ in model.named_parameters()]
    missing = sorted(set(names) ^ set(state.keys()))
    if missing:
        return {"error": "parameter names differ: %s" % missing[:8]}
    model.double()
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(state[n].reshape(p.shape))
    x = torch.load(input_path)
    if isinstance(x, dict):
        x = x["input"]
    out = {}
    model.eval()
    with torch.no_grad():
        for name, fn in WS.items():
            _ws = fn
            out[name] = model(x.double()).tolist()
    return {"logits": out, "names": names}


def main():
    if sys.argv[1:] == ["--self-check"]:
        r = self_check()
        print(json.dumps(r))
        sys.exit(0 if all(r.values()) else 1)
    global _gelu, _ws
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    torch.manual_seed(0)
    model = NFNet(a)
    for n, p in model.named_parameters():
        if n.endswith("skip_gain"):
            p.data.fill_(0.5)  # as the C++ side: non-zero so every branch's backward runs
    params = sum(p.numel() for p in model.parameters())
    if a.get("check_only"):
        print(json.dumps({"ready": True, "params": params, "torch": torch.__version__}), flush=True)
        for line in sys.stdin:
            c = json.loads(line)
            if c["cmd"] != "check":
                break
            print(json.dumps(check_against(model, c["weights"], c["input"])), flush=True)
        return
    opt = SgdAgc(model)
    B, K, R = a["batch"], a["classes"], a["res"]
    x_nchw = torch.randn(B, a["in_channels"], R, R)
    t = torch.full((B, K), 0.1 / K)
    t[torch.arange(B), torch.randint(0, K, (B,))] += 0.9
    # A configuration is (precision, memory format, gelu, ws); train and inference each use their fastest one.
    cfg = {"train": None, "infer": None}
    state = {"fmt": None}

    def use(c):
        global _gelu, _ws
        _gelu, _ws = GELUS[c[2]], WS[c[3]]
        fmt = torch.channels_last if c[1] == "channels_last" else torch.contiguous_format
        if state["fmt"] != fmt:
            # the input's layout selects the convolutions' (weights stay contiguous: WS views them as [1, O, K]
            # without a copy); torch.empty gives canonical channels_last strides even for 1 channel, where
            # .contiguous() is a no-op
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

    def time_config(c, kind):
        cfg["train"] = cfg["infer"] = c
        model.train()
        if kind == "train":
            train_step()
            return min(timed(train_step, 1) for _ in range(2))
        model.eval()
        infer_step()
        s = min(timed(infer_step, 1) for _ in range(2))
        model.train()
        return s

    # Candidates: fp32 and bf16 autocast, NCHW and channels_last; on channels_last every GELU that passes the
    # gradient check (in double, vs F.gelu on NCHW). NCHW tries the native and the sigmoid-form GELU (flat exists
    # for channels_last strides). All
    # with timm's batch_norm WS; then the best of each kind is also timed with the var_mean WS.
    checks = self_check()
    candidates = []
    for prec in ("fp32", "bf16"):
        candidates += [(prec, "nchw", g, "batchnorm") for g in ("native", "sigmoid") if checks["gelu_" + g]]
        candidates += [(prec, "channels_last", g, "batchnorm") for g in GELUS if checks["gelu_" + g]]
    only = a.get("setting")  # one fixed setting (nfscale bench --peer-setting): no search
    if only:
        c = tuple(only.split("/"))
        if len(c) != 4 or c[0] not in ("fp32", "bf16") or c[1] not in ("nchw", "channels_last") or \
                c[2] not in GELUS or c[3] not in WS or not checks["gelu_" + c[2]]:
            sys.exit("peer_nfnet.py: setting '%s' is not PRECISION/LAYOUT/GELU/WS with PRECISION fp32|bf16, LAYOUT "
                     "nchw|channels_last, GELU %s (gradient-checked), WS %s" % (only, "|".join(GELUS), "|".join(WS)))
        candidates = [c]
    times = {"train": {}, "infer": {}}
    for c in candidates:
        for kind in times:
            times[kind][c] = time_config(c, kind)
    chosen = {}
    for kind in times:
        best = min(times[kind], key=times[kind].get)
        if not only:
            alt = best[:3] + ("varmean",)
            times[kind][alt] = time_config(alt, kind)
        chosen[kind] = min(times[kind], key=times[kind].get)
    cfg.update(chosen)
    model.train(); train_step()
    model.eval(); infer_step(); model.train()
    describe = {k: "/".join(v) for k, v in cfg.items()}
    tried = {k: {"/".join(c): s for c, s in v.items()} for k, v in times.items()}
    print(json.dumps({"ready": True, "params": params, "gelu": describe["train"], "config": describe,
                      "self_check": checks, "tried_step_s": tried, "torch": torch.__version__}), flush=True)
    serve(model, train_step, infer_step, params, describe)


if __name__ == "__main__":
    main()
