#!/usr/bin/env python3
"""The PyTorch peers of gai's multi-GPU training figures: DDP with
torch.compile, DDP with ZeroRedundancyOptimizer (ZeRO-1) and FSDP (full
sharding, each transformer block a unit), on the shared peers script's
models (its LM, bf16 autocast, f32 master weights, fused AdamW, gradient
clipping), with a per-GPU batch, under torchrun:

    torchrun --nproc-per-node 4 test/bench/ddp_peer.py --peers PATH/peers.py \
        --model llama-1b --batch 4 --seq 2048 --modes ddp,zero1,fsdp

Rank 0 prints one JSON line per mode: the world, tokens/s of the whole job,
the step time and the largest peak memory of any rank (or the error).
"""
import argparse, importlib.util, json, os, time

import torch
import torch.distributed as dist
import torch.nn.functional as F


def load_peers(path):
    spec = importlib.util.spec_from_file_location("peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wrap(peers, model, mode, local):
    from torch.nn.parallel import DistributedDataParallel as DDP
    if mode == "fsdp":
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy
        model = FSDP(model, auto_wrap_policy=ModuleWrapPolicy({peers.Block}),
                     device_id=local, use_orig_params=True)
        return model, torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    model = DDP(model, device_ids=[local], bucket_cap_mb=25, gradient_as_bucket_view=True)
    if mode == "zero1":
        from torch.distributed.optim import ZeroRedundancyOptimizer
        opt = ZeroRedundancyOptimizer(model.parameters(), optimizer_class=torch.optim.AdamW,
                                      lr=3e-4, weight_decay=0.1, fused=True)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1, fused=True)
    return model, opt


def bench(peers, name, B, T, mode, steps, compile_model):
    local = int(os.environ["LOCAL_RANK"])
    c = peers.CONFIGS[name]
    torch.manual_seed(0)
    model, opt = wrap(peers, peers.LM(c).cuda(), mode, local)
    fwd = torch.compile(model) if compile_model else model
    g = torch.Generator(device="cuda").manual_seed(1 + dist.get_rank())
    x = torch.randint(0, c["vocab"], (B, T), device="cuda", generator=g)
    y = torch.randint(0, c["vocab"], (B, T), device="cuda", generator=g)

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = F.cross_entropy(fwd(x).float().view(-1, c["vocab"]), y.view(-1))
        loss.backward()
        if mode == "fsdp":
            model.clip_grad_norm_(1.0)
        else:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    dist.barrier()
    start = time.time()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    dt = (time.time() - start) / steps
    peak = torch.tensor([torch.cuda.max_memory_allocated() / 2**30], device="cuda")
    dist.all_reduce(peak, op=dist.ReduceOp.MAX)
    world = dist.get_world_size()
    return dict(workload=f"train-{name}", peer=f"pytorch-{mode}" + ("-compile" if compile_model else ""),
                world=world, batch_per_gpu=B, seq=T, step_ms=dt * 1e3,
                tokens_per_s=world * B * T / dt, peak_mem_gb=peak.item())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--peers", required=True)
    ap.add_argument("--model", default="llama-1b")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=2048)
    ap.add_argument("--modes", default="ddp,zero1,fsdp")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--no-compile-fsdp", action="store_true",
                    help="run FSDP eagerly (DDP and ZeRO-1 always compile)")
    a = ap.parse_args()
    peers = load_peers(a.peers)
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl")
    torch.backends.cuda.matmul.allow_tf32 = True
    for mode in a.modes.split(","):
        try:
            r = bench(peers, a.model, a.batch, a.seq, mode, a.steps,
                      not (mode == "fsdp" and a.no_compile_fsdp))
        except Exception as e:  # one failing peer must not hide the others
            r = dict(workload=f"train-{a.model}", peer=f"pytorch-{mode}", error=repr(e)[:300])
        r["device"] = torch.cuda.get_device_name()
        if dist.get_rank() == 0:
            print(json.dumps(r), flush=True)
        torch.cuda.empty_cache()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
