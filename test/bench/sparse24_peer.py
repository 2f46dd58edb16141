#!/usr/bin/env python3
"""The PyTorch peer of gai's 2:4 GEMM figures: llama-1b's projection GEMMs
at a prefill of M tokens, bf16, dense (torch.nn.functional.linear) against
the same weight pruned 2:4 and made semi-structured
(torch.sparse.to_sparse_semi_structured, cuSPARSELt or CUTLASS underneath),
timed with CUDA events. One JSON line per shape: both times, the speedup
and the sparse path PyTorch used.

    python3 test/bench/sparse24_peer.py [--m 2048] [--iters 50]
"""
import argparse, json

import torch
import torch.nn.functional as F

# (name, n, k) of llama-1b (d 2048, 32 heads, 4 KV heads of 64, MLP 5632):
# out = x [m, k] · Wᵀ, W [n, k].
SHAPES = [("q/o", 2048, 2048), ("k/v", 256, 2048), ("gate/up", 5632, 2048),
          ("down", 2048, 5632)]


def prune24(w):
    """The two largest |w| of every four along k stay (gai's rule)."""
    n, k = w.shape
    groups = w.abs().view(n, k // 4, 4)
    keep = groups.topk(2, dim=-1).indices
    mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
    return w * mask.view(n, k)


def time_ms(fn, iters):
    for _ in range(5):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=2048)
    ap.add_argument("--iters", type=int, default=50)
    a = ap.parse_args()
    from torch.sparse import to_sparse_semi_structured, SparseSemiStructuredTensor
    torch.manual_seed(0)
    # Both of PyTorch's kernels for semi-structured weights.
    for backend in ("cusparselt", "cutlass"):
        SparseSemiStructuredTensor._FORCE_CUTLASS = backend == "cutlass"
        for name, n, k in SHAPES:
            x = torch.randn(a.m, k, device="cuda", dtype=torch.bfloat16)
            w = prune24(torch.randn(n, k, device="cuda", dtype=torch.bfloat16))
            row = dict(workload=f"gemm24-{name}", peer="pytorch", backend=backend, m=a.m, n=n,
                       k=k)
            try:
                dense = time_ms(lambda: F.linear(x, w), a.iters)
                sparse_w = to_sparse_semi_structured(w)
                err = (F.linear(x, sparse_w) - F.linear(x, w)).abs().max().item()
                sparse = time_ms(lambda: F.linear(x, sparse_w), a.iters)
                row.update(dense_ms=dense, sparse_ms=sparse, speedup=dense / sparse,
                           tflops_sparse=2 * a.m * n * k / sparse / 1e9, max_abs_diff=err)
            except Exception as e:  # one failing shape must not hide the others
                row["error"] = repr(e)[:300]
            row["device"] = torch.cuda.get_device_name()
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
