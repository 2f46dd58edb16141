#!/usr/bin/env python3
"""PyTorch on the same training as a `gai-run train` run: the same starting
weights, the same rows of the same token file in the same order, the same
learning rate each step, AdamW and clipping as gai's Trainer computes them.
It prints gai's loss and PyTorch's for each step and fails when they differ
by more than --tolerance (relative).

    gai-run init model.gai -o init.safetensors
    gai-run train model.gai --weights init.safetensors --data tokens.bin \\
        --steps 50 --batch 4 --seed 0 --metrics gai.jsonl --quiet
    python3 train_loss_peer.py --config config.json --weights init.safetensors \\
        --data tokens.bin --rows 4 --seq 2048 --micro-rows 4 --seed 0 \\
        --metrics gai.jsonl [--bf16]

The model is transformers' own (AutoModelForCausalLM from the config, in
eval mode: gai trains without dropout). With --bf16 (CUDA) it trains as gai
does with `gaic --dtype=bf16`: f32 parameters, gradients and moments, the
products under bf16 autocast. Without it, f32 throughout, as gai on the CPU.
"""
import argparse, json, math, os, sys

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

LLMC_MAGIC, LLMC_HEADER = 20240520, 1024
MASK = (1 << 64) - 1


def mix(x):  # SplitMix64, as runtime/core/TrainData.cpp
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def read_tokens(path, data_format):
    raw = open(path, "rb").read()
    kind = data_format
    if kind == "auto":
        kind = "u16" if path.endswith(".bin") else "text"
    header = 0
    if kind == "u16" and len(raw) >= LLMC_HEADER:
        if int.from_bytes(raw[0:4], "little", signed=True) == LLMC_MAGIC:
            header = LLMC_HEADER
    body = raw[header:]
    if kind == "text":
        return torch.frombuffer(bytearray(body), dtype=torch.uint8).to(torch.int64)
    dtype = torch.int16 if kind == "u16" else torch.int32
    values = torch.frombuffer(bytearray(body), dtype=dtype).to(torch.int64)
    return values & (0xFFFF if kind == "u16" else 0xFFFFFFFF)


def rows_of(tokens, seed, step, micro, rows, seq):
    """TrainData::batch on the training split (no held-out part)."""
    starts = tokens.numel() - seq
    stream = mix(seed) ^ mix(step)
    x, y = [], []
    for r in range(rows):
        at = mix(stream ^ mix((micro << 32) | r)) % starts
        x.append(tokens[at:at + seq])
        y.append(tokens[at + 1:at + seq + 1])
    return torch.stack(x), torch.stack(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", required=True, help="the model's config.json")
    ap.add_argument("--weights", required=True, help="the weights both runs start from")
    ap.add_argument("--data", required=True)
    ap.add_argument("--data-format", default="auto")
    ap.add_argument("--metrics", required=True, help="gai-run train's --metrics file")
    ap.add_argument("--rows", type=int, required=True, help="rows a step (gai-run --batch)")
    ap.add_argument("--micro-rows", type=int, required=True,
                    help="rows a micro-batch (gaic --train-batch)")
    ap.add_argument("--seq", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--beta1", type=float, default=0.9)
    ap.add_argument("--beta2", type=float, default=0.95)
    ap.add_argument("--eps", type=float, default=1e-8)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--grad-clip", type=float, default=1.0)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--tolerance", type=float, default=0.01)
    a = ap.parse_args()

    import transformers as tf
    gai = [json.loads(line) for line in open(a.metrics) if line.strip()]
    gai = [m for m in gai if "loss" in m and not m.get("skipped")]
    device = "cuda" if a.bf16 else "cpu"
    config = tf.AutoConfig.from_pretrained(os.path.dirname(os.path.abspath(a.config)))
    model = tf.AutoModelForCausalLM.from_config(config).to(torch.float32)
    missing, unexpected = model.load_state_dict(load_file(a.weights), strict=False)
    if unexpected or any("lm_head" not in m for m in missing):
        sys.exit(f"{a.weights}: does not fit the model (missing {missing}, unexpected {unexpected})")
    model.tie_weights()
    model.to(device).eval()  # eval: no dropout, as gai trains
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": a.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=0.0, betas=(a.beta1, a.beta2), eps=a.eps)
    tokens = read_tokens(a.data, a.data_format)
    micro = a.rows // a.micro_rows
    worst = 0.0
    for m in gai:
        step = m["step"] - 1  # metrics count from 1
        total = 0.0
        opt.zero_grad(set_to_none=True)
        for mb in range(micro):
            x, y = rows_of(tokens, a.seed, step, mb, a.micro_rows, a.seq)
            x, y = x.to(device), y.to(device)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=a.bf16):
                logits = model(input_ids=x).logits
            loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1))
            (loss / micro).backward()
            total += loss.item() / micro
        if a.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(params, a.grad_clip)
        for g in opt.param_groups:
            g["lr"] = m["lr"]
        opt.step()
        rel = abs(m["loss"] - total) / max(abs(total), 1e-12)
        worst = max(worst, rel)
        print(json.dumps({"step": m["step"], "gai_loss": m["loss"], "torch_loss": total,
                          "relative_difference": rel}), flush=True)
    print(json.dumps({"steps": len(gai), "worst_relative_difference": worst,
                      "tolerance": a.tolerance, "device": device,
                      "bf16_autocast": a.bf16}), flush=True)
    sys.exit(0 if worst <= a.tolerance else 1)


if __name__ == "__main__":
    main()
