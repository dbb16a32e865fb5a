"""The GPT training step of bench/engine.js in PyTorch, for the ratio: the same model and optimizer.

usage: /usr/bin/python3 bench/torch_gpt.py STEPS WARMUP THREADS [DEVICE]   (DEVICE: cpu (default) or cuda)
Prints one JSON object: {"ms": median ms/step, "threads": ..., "torch": version}.
Model: vocab 256, d_model 256, 4 layers, 4 heads, seq 128, batch 32; pre-norm blocks (LayerNorm, causal
multi-head attention with biases, MLP 4×d with tanh-GELU), learned positions, untied head; Adam lr 1e-3.
"""
import json
import math
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

steps, warmup, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
device = sys.argv[4] if len(sys.argv) > 4 else "cpu"
torch.set_num_threads(threads)
torch.manual_seed(0)
V, T, D, L, H, B = 256, 128, 256, 4, 4, 32


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1 = nn.LayerNorm(D)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.norm2 = nn.LayerNorm(D)
        self.up = nn.Linear(D, 4 * D)
        self.down = nn.Linear(4 * D, D)

    def forward(self, x, mask):
        b, t, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(D, dim=2)
        q, k, v = (z.view(b, t, H, D // H).transpose(1, 2) for z in (q, k, v))
        att = (q @ k.transpose(-2, -1)) / math.sqrt(D // H) + mask
        y = (att.softmax(-1) @ v).transpose(1, 2).reshape(b, t, D)
        x = x + self.proj(y)
        return x + self.down(F.gelu(self.up(self.norm2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(V, D)
        self.pos = nn.Embedding(T, D)
        self.blocks = nn.ModuleList(Block() for _ in range(L))
        self.norm = nn.LayerNorm(D)
        self.head = nn.Linear(D, V, bias=False)

    def forward(self, ids):
        mask = torch.triu(torch.full((T, T), -1e9, device=ids.device), diagonal=1)
        x = self.tok(ids) + self.pos(torch.arange(T, device=ids.device))
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.norm(x))


model = GPT().to(device)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
ids = torch.randint(0, V, (B, T), device=device)
targets = torch.randint(0, V, (B, T), device=device)
times = []
for step in range(warmup + steps):
    t0 = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(ids).view(-1, V), targets.view(-1))
    loss.backward()
    optimizer.step()
    loss.item()  # waits for the step on any device
    if step >= warmup:
        times.append((time.perf_counter() - t0) * 1000)
times.sort()
print(json.dumps({"ms": times[len(times) // 2], "threads": threads, "device": device, "torch": torch.__version__}))
