#!/usr/bin/env python3
"""The PyTorch peer of gai's rematerialization figures: llama-1b training with
activation checkpointing on every transformer block (torch.utils.checkpoint,
non-reentrant), eager and torch.compile, beside the same run without it.

It reuses the model, configurations and timing of the shared peers script
(its LM), so the numerics are the same: bf16 autocast, f32
master weights, fused AdamW, gradient clipping.

    python3 test/bench/remat_peer.py --peers PATH/peers.py --shapes 4x2048,16x4096
Prints one JSON line per configuration and mode (tokens_per_s, peak_mem_gb,
or the error, e.g. out of memory).
"""
import argparse, importlib.util, json, time

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def load_peers(path):
    spec = importlib.util.spec_from_file_location("peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def bench(peers, cfg_name, B, T, mode, ckpt, steps):
    c = dict(peers.CONFIGS[cfg_name], max_t=max(peers.CONFIGS[cfg_name]["max_t"], T))
    torch.manual_seed(0)
    m = peers.LM(c).cuda()
    if ckpt:
        # Every block recomputed in the backward pass: only its input is kept.
        for block in m.blocks:
            block.forward = (lambda f: lambda *a, **k: checkpoint(f, *a, use_reentrant=False, **k))(
                block.forward)
    n = peers.n_params(m)
    opt = torch.optim.AdamW(m.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    fwd = torch.compile(m) if mode == "compile" else m
    x = torch.randint(0, c["vocab"], (B, T), device="cuda")
    y = torch.randint(0, c["vocab"], (B, T), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(fwd(x).float().view(-1, c["vocab"]), y.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        opt.step(); opt.zero_grad(set_to_none=True)
        return loss

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    dt = peers.events_time(step, steps)
    tok_s = B * T / dt
    return dict(workload=f"train-{cfg_name}", peer=f"pytorch-{mode}" + ("-ckpt" if ckpt else ""),
                batch=B, seq=T, step_ms=dt * 1e3, tokens_per_s=tok_s,
                tflops=peers.train_flops_per_token(c, n, T) * tok_s / 1e12,
                peak_mem_gb=torch.cuda.max_memory_allocated() / 2**30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", required=True)
    ap.add_argument("--config", default="llama-1b")
    ap.add_argument("--shapes", default="4x2048,16x4096")
    ap.add_argument("--modes", default="compile")
    ap.add_argument("--steps", type=int, default=5)
    a = ap.parse_args()
    peers = load_peers(a.peers)
    torch.backends.cuda.matmul.allow_tf32 = True
    for shape in a.shapes.split(","):
        B, T = map(int, shape.split("x"))
        for mode in a.modes.split(","):
            for ckpt in (False, True):
                try:
                    r = bench(peers, a.config, B, T, mode, ckpt, a.steps)
                except Exception as e:  # out of memory is a result here
                    r = dict(workload=f"train-{a.config}", batch=B, seq=T,
                             peer=f"pytorch-{mode}" + ("-ckpt" if ckpt else ""),
                             error=repr(e)[:200])
                print(json.dumps(r), flush=True)
                torch._dynamo.reset()
                torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
