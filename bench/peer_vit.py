#!/usr/bin/python3
# peer_vit.py - the Python/PyTorch peer of `nfscale bench` for ViT cases: builds the same ViT as nfscale's C++ model
# (timm layout: patch conv, class token or GAP, learned position embedding, pre-LN blocks with one qkv projection,
# GELU MLP, final LayerNorm, linear head) from the JSON spec given in argv[1], with PyTorch's best CPU settings - the
# faster of fp32 / bf16 autocast, chosen separately for training and inference by timing at start-up - and times
# training steps (soft-target cross-entropy + AdamW with global-norm clipping, as nfscale's trainer) and inference.
# Protocol (as peer_nfnet.py): one JSON object per line on stdin -> one per line on stdout:
#   {"cmd":"train","steps":N} -> {"seconds":s}   {"cmd":"infer","steps":N} -> {"seconds":s}
#   {"cmd":"info"} -> {"params":..,"config":{"train":..,"infer":..},"maxrss_kb":..}   {"cmd":"quit"}
# On start-up it prints {"ready":true,...} after building and warming up.
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from peer_loop import serve, timed


class Block(nn.Module):
    def __init__(self, d, m, heads, eps, gelu):
        super().__init__()
        self.norm1 = nn.LayerNorm(d, eps=eps)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.norm2 = nn.LayerNorm(d, eps=eps)
        self.fc1 = nn.Linear(d, m)
        self.fc2 = nn.Linear(m, d)
        self.heads, self.gelu = heads, gelu

    def forward(self, x):
        b, t, d = x.shape
        h = self.qkv(self.norm1(x)).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q = h[0] * (d // self.heads) ** -0.5
        a = torch.softmax(q @ h[1].transpose(-2, -1), -1)
        x = x + self.proj((a.to(h.dtype) @ h[2]).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x)), approximate=self.gelu))


class ViT(nn.Module):
    def __init__(self, a):
        super().__init__()
        d, p = a["width"], a["patch"]
        self.token = a["pool"] == "token"
        self.patch = nn.Conv2d(a["in_channels"], d, p, p)
        g = a["res"] // p
        self.cls = nn.Parameter(torch.zeros(1, 1, d)) if self.token else None
        self.pos = nn.Parameter(torch.randn(1, g * g + (1 if self.token else 0), d) * d ** -0.5)
        gelu = "tanh" if a["gelu"] == "tanh" else "none"
        self.blocks = nn.ModuleList([Block(d, a["mlp_dim"], a["heads"], a["ln_eps"], gelu) for _ in range(a["depth"])])
        self.norm = nn.LayerNorm(d, eps=a["ln_eps"])
        self.head = nn.Linear(d, a["classes"])
        nn.init.normal_(self.head.weight, std=0.01)  # non-zero so every gradient is computed

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        if self.token:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1).to(x.dtype), x], 1)
        x = x + self.pos
        for b in self.blocks:
            x = b(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.token else x.mean(1))


def main():
    a = json.loads(sys.argv[1])
    torch.set_num_threads(a["threads"])
    torch.manual_seed(0)
    model = ViT(a)
    params = sum(p.numel() for p in model.parameters())
    decay = [p for p in model.parameters() if p.dim() >= 2 and p is not model.pos]
    rest = [p for p in model.parameters() if not (p.dim() >= 2 and p is not model.pos)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}], lr=1e-3)
    B, K, R = a["batch"], a["classes"], a["res"]
    x = torch.randn(B, a["in_channels"], R, R)
    t = torch.full((B, K), 0.1 / K)
    t[torch.arange(B), torch.randint(0, K, (B,))] += 0.9
    cfg = {"train": None, "infer": None}

    def train_step():
        bf16 = cfg["train"] == "bf16"
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = -(t * torch.log_softmax(logits.float(), 1)).sum(1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    def infer_step():
        bf16 = cfg["infer"] == "bf16"
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(x)

    times = {"train": {}, "infer": {}}
    for c in ("fp32", "bf16"):
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
    print(json.dumps({"ready": True, "params": params, "config": cfg, "tried_step_s": times,
                      "torch": torch.__version__}), flush=True)
    serve(model, train_step, infer_step, params, cfg)


if __name__ == "__main__":
    main()
