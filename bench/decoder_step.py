"""The training step of `./moelora bench --decoder` in PyTorch, for a comparison on the same machine.

Measured, not asserted. Same shapes, same math, same optimizer as the Java bench
(cluster/src/main/java/dev/moelora/cluster/bench/DecoderBench.java and StepBench.java): a randomly
initialised LLaMA-shaped decoder (d_model 256, 4 layers, 8 heads, no grouping, FFN 688, vocabulary
4096, untied LM head, RMSNorm eps 1e-5, RoPE theta 10000, float32), batch 8 x 128 random tokens,
next-token cross-entropy on every token, one of three adapter families on q, k, v and o of every
layer, global-norm clipping at 1 and torch.optim.AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, no
weight decay). A change of shapes or defaults there must be made here too.

  lora       y = x W^T + (alpha / r) (x A^T) B^T, r 8, alpha 16, A ~ U(+-1/sqrt(d_in)), B = 0
  tied-lora  tl6: y = x W^T + (alpha / r) v * ((u * (x A^T)) B^T), A and B tied across the layers per
             module type (one pair for all q_proj, one for all k_proj, ...), u (r) and v (d_out) per
             layer, starting at 1; all four trained
  moelora    4 experts of rank 2, top-2: p = softmax(x W_g^T), W_g ~ N(0, 0.02^2); the two largest p
             renormalised, g_k = p_k / (p_1 + p_2); y = x W^T + sum_k g_k (alpha / r_e) (x A_k^T) B_k^T;
             the rows of each expert gathered, computed and added back (as moelora's ExpertDispatch);
             plus, per module, (lambda_bal L_bal + lambda_cl L_cl) / modules with
             L_bal = E sum_e f_e P_e (f_e = routed share, a constant; P_e = mean gate probability),
             L_cl = supervised-contrastive InfoNCE over at most M = 32 outputs H_e (before g) per
             expert, sampled without replacement, L2-normalised, positives = same expert, tau 0.1,
             lambda_bal 0.01, lambda_cl 0.1 (model/.../moelora/AuxiliaryLosses.java and
             SupervisedContrastive.java)

A step is timed in the Java bench's phases: forward = forward + loss (the auxiliary losses
included), backward = loss.backward(), optimizer = zero_grad + clip_grad_norm_ + AdamW.step.
Differences that remain: autograd skips the input gradients of layer 0's q, k and v (they would
flow into the frozen embeddings; the Java step computes them, 0.4 of its 19.3 GFLOP), and it
computes the loss's gradient in backward where Java computes it with the loss, in forward.

Run:  OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/decoder_step.py --adapter lora
(PyTorch >= 1.13 CPU; Debian's python3-torch. Two intra-op threads by default, as the machine
has 2 cores; OPENBLAS_NUM_THREADS=1 keeps OpenBLAS from starting threads of its own beside them.)
Debian's torch is built with BLAS_INFO=generic and calls whatever libblas.so.3 the system has; on
a machine where that is the reference (netlib) BLAS its GEMMs run at a few GFLOP/s, so
bench/compare-pytorch.sh preloads the OpenBLAS 0.3.19 that ND4J itself uses (LD_PRELOAD): the
`blas=` line says which one this process got, and `sgemm_gflop_per_s=` what it delivers.
Prints one key=value line per figure, the keys of the Java bench.
"""
import argparse
import math
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before torch loads its BLAS

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

C, LAYERS, HEADS, KV_HEADS, FFN, VOCAB = 256, 4, 8, 8, 688, 4096
HEAD_DIM = C // HEADS
EPS, THETA = 1e-5, 10000.0
RANK, ALPHA = 8, 16.0
EXPERTS, TOP_K, EXPERT_RANK = 4, 2, 2
BALANCE_WEIGHT, CONTRASTIVE_WEIGHT, TEMPERATURE, MAX_FEATURES = 0.01, 0.1, 0.1, 32
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]
FAMILIES = ["lora", "tied-lora", "moelora"]


def normal(gen, std, *shape):
    return torch.randn(*shape, generator=gen) * std


def uniform(gen, bound, *shape):
    return (torch.rand(*shape, generator=gen) * 2 - 1) * bound


class Frozen(torch.nn.Module):
    """A frozen projection y = x W^T, W (d_out, d_in) ~ N(0, 1/d_in) as LlamaDecoder.randomWeights."""

    def __init__(self, gen, d_in, d_out):
        super().__init__()
        self.weight = torch.nn.Parameter(normal(gen, 1 / math.sqrt(d_in), d_out, d_in), requires_grad=False)
        self.d_in, self.d_out = d_in, d_out

    def forward(self, x):
        return x @ self.weight.t()


class Lora(torch.nn.Module):
    def __init__(self, gen, base):
        super().__init__()
        self.base, self.scale = base, ALPHA / RANK
        self.a = torch.nn.Parameter(uniform(gen, 1 / math.sqrt(base.d_in), RANK, base.d_in))
        self.b = torch.nn.Parameter(torch.zeros(base.d_out, RANK))

    def forward(self, x):
        return self.base(x) + self.scale * ((x @ self.a.t()) @ self.b.t())


class TiedLora(torch.nn.Module):
    """tl6: a and b are the module type's tied Parameters (registered by the model once), u and v this layer's."""

    def __init__(self, base, a, b):
        super().__init__()
        self.base, self.scale, self.tied = base, ALPHA / RANK, (a, b)
        self.u = torch.nn.Parameter(torch.ones(RANK))
        self.v = torch.nn.Parameter(torch.ones(base.d_out))

    def forward(self, x):
        a, b = self.tied
        return self.base(x) + self.scale * self.v * ((self.u * (x @ a.t())) @ b.t())


def supervised_contrastive(h, labels, tau):
    """SupervisedContrastive.lossAndGradient's loss: mean over anchors with a positive of -(1/|P|) sum log softmax."""
    z = F.normalize(h, dim=1, eps=1e-12)
    sim = z @ z.t() / tau
    s = sim.shape[0]
    eye = torch.eye(s, dtype=torch.bool)
    positive = (labels[:, None] == labels[None, :]) & ~eye
    count = positive.sum(1)
    anchors = count > 0
    if not bool(anchors.any()):
        return sim.sum() * 0
    log_den = torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    per_anchor = -((sim - log_den) * positive).sum(1) / count.clamp(min=1)
    return per_anchor[anchors].mean()


class MoeLora(torch.nn.Module):
    def __init__(self, gen, base, modules, aux):
        super().__init__()
        self.base, self.scale, self.modules_count, self.aux = base, ALPHA / EXPERT_RANK, modules, aux
        self.gate = torch.nn.Parameter(normal(gen, 0.02, EXPERTS, base.d_in))
        a, b = [], []
        for _ in range(EXPERTS):  # the order MoeLora.initialise draws them in
            a.append(uniform(gen, 1 / math.sqrt(base.d_in), EXPERT_RANK, base.d_in))
            b.append(torch.zeros(base.d_out, EXPERT_RANK))
        self.a = torch.nn.Parameter(torch.stack(a))  # (E, R, d_in)
        self.b = torch.nn.Parameter(torch.stack(b))  # (E, d_out, R)

    def forward(self, x):
        y = self.base(x)
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        n = x.shape[0]
        p = torch.softmax(x @ self.gate.t(), dim=1)                    # (N, E)
        top_p, top_e = torch.topk(p, TOP_K, dim=1)                      # (N, K)
        g = top_p / top_p.sum(1, keepdim=True)
        g_full = torch.zeros_like(p).scatter(1, top_e, g)               # (N, E), zero off the top k
        routed = torch.zeros(n, EXPERTS, dtype=torch.bool).scatter(1, top_e, True)
        out = torch.zeros(n, y.shape[-1])
        features, labels = [], []
        for e in range(EXPERTS):
            rows = routed[:, e].nonzero().squeeze(1)                    # ascending
            if rows.numel() == 0:
                continue
            h = self.scale * ((x[rows] @ self.a[e].t()) @ self.b[e].t())  # (n_e, d_out) H_e
            out = out.index_add(0, rows, g_full[rows, e, None] * h)
            take = torch.randperm(rows.numel())[:MAX_FEATURES].sort().values if rows.numel() > MAX_FEATURES \
                else torch.arange(rows.numel())
            features.append(h[take])
            labels.append(torch.full((take.numel(),), e))
        f = (routed.sum(0).double() / (n * TOP_K)).float()              # f_e, a constant
        balance = EXPERTS * (f * p.mean(0)).sum()
        contrastive = supervised_contrastive(torch.cat(features), torch.cat(labels), TEMPERATURE) \
            if sum(t.shape[0] for t in features) >= 2 else p.sum() * 0
        self.aux.append((BALANCE_WEIGHT * balance + CONTRASTIVE_WEIGHT * contrastive) / self.modules_count)
        return y + out.reshape(*shape[:-1], -1)


def rms_norm(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Decoder(torch.nn.Module):
    def __init__(self, family, seq, seed=1):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.embed = normal(gen, 0.5, VOCAB, C)
        self.lm_head = normal(gen, 1 / math.sqrt(C), VOCAB, C)
        self.final_norm = 1 + normal(gen, 0.1, C)
        self.aux = []
        self.blocks = []
        shapes = {"q_proj": (C, HEADS * HEAD_DIM), "k_proj": (C, KV_HEADS * HEAD_DIM), "v_proj": (C, KV_HEADS * HEAD_DIM),
                  "o_proj": (HEADS * HEAD_DIM, C), "gate_proj": (C, FFN), "up_proj": (C, FFN), "down_proj": (FFN, C)}
        tied = torch.nn.ParameterDict()
        adapters = torch.nn.ModuleList()
        agen = torch.Generator().manual_seed(seed + 1)
        for _ in range(LAYERS):
            block = {"input_norm": 1 + normal(gen, 0.1, C), "post_norm": 1 + normal(gen, 0.1, C)}
            for name, (d_in, d_out) in shapes.items():
                base = Frozen(gen, d_in, d_out)
                if name in TARGETS:
                    if family == "lora":
                        base = Lora(agen, base)
                    elif family == "tied-lora":
                        if name + "_A" not in tied:
                            tied[name + "_A"] = torch.nn.Parameter(uniform(agen, 1 / math.sqrt(d_in), RANK, d_in))
                            tied[name + "_B"] = torch.nn.Parameter(torch.zeros(d_out, RANK))
                        base = TiedLora(base, tied[name + "_A"], tied[name + "_B"])
                    else:
                        base = MoeLora(agen, base, LAYERS * len(TARGETS), self.aux)
                    adapters.append(base)
                block[name] = base
            self.blocks.append(block)
        self.tied, self.adapters = tied, adapters
        inv_freq = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM))
        angles = torch.arange(seq, dtype=torch.float64)[:, None] * inv_freq[None, :]
        emb = torch.cat((angles, angles), dim=-1)
        self.cos, self.sin = emb.cos().float(), emb.sin().float()       # (T, D)
        self.causal = torch.full((seq, seq), float("-inf")).triu(1)     # (T, T)

    def forward(self, ids):
        bsz, t = ids.shape
        x = self.embed[ids]                                             # (B, T, C)
        for blk in self.blocks:
            h = rms_norm(x, blk["input_norm"])
            q = blk["q_proj"](h).view(bsz, t, HEADS, HEAD_DIM).transpose(1, 2)
            k = blk["k_proj"](h).view(bsz, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
            v = blk["v_proj"](h).view(bsz, t, KV_HEADS, HEAD_DIM).transpose(1, 2)
            q = q * self.cos + rotate_half(q) * self.sin
            k = k * self.cos + rotate_half(k) * self.sin
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(HEAD_DIM) + self.causal, dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(bsz, t, HEADS * HEAD_DIM)
            x = x + blk["o_proj"](ctx)
            h = rms_norm(x, blk["post_norm"])
            x = x + blk["down_proj"](F.silu(blk["gate_proj"](h)) * blk["up_proj"](h))
        return rms_norm(x, self.final_norm) @ self.lm_head.t()          # (B, T, V)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "unknown"


def blas_library():
    """The BLAS this process mapped: an OpenBLAS when one is loaded, else the system's libblas.so.3."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in os.path.basename(path).lower():
                    libs.add(path)
    except OSError:
        return "unknown"
    openblas = sorted(p for p in libs if "openblas" in os.path.basename(p).lower())
    if openblas:
        return "openblas " + openblas[0]
    return "system " + (", ".join(sorted(libs)) or "none") + " (reference BLAS unless an alternative points elsewhere)"


def sgemm_rate(m, k, n):
    """GFLOP/s of an (m, k) x (k, n) float32 torch.matmul, median of ~0.2 s of repetitions, as Sgemm.rate."""
    a, b = torch.rand(m, k), torch.rand(k, n)
    a @ b
    t = time.perf_counter()
    a @ b
    once = max(1e-6, time.perf_counter() - t)
    times = []
    for _ in range(int(max(5, min(200, 0.2 / once)))):
        t = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t)
    return 2.0 * m * k * n / sorted(times)[len(times) // 2] / 1e9


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--adapter", default="lora", help="lora, tied-lora or moelora (default: lora)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--steps", type=int, default=10, help="timed steps after the warm-up (default: 10)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps (default: 3)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default: 2)")
    args = ap.parse_args(argv)
    if args.adapter not in FAMILIES:
        ap.error("--adapter must be one of %s; got '%s'" % (", ".join(FAMILIES), args.adapter))
    if args.steps < 1 or args.warmup < 0 or args.batch < 1 or args.seq < 2:
        ap.error("--steps must be >= 1, --warmup >= 0, --batch >= 1 and --seq >= 2")
    torch.set_num_threads(args.threads)
    torch.manual_seed(42)
    print("machine: %s, %d cores, %s %s, Python %s, PyTorch %s, %d threads, OPENBLAS_NUM_THREADS=%s"
          % (cpu_model(), os.cpu_count(), platform.system(), platform.release(), platform.python_version(), torch.__version__,
             torch.get_num_threads(), os.environ.get("OPENBLAS_NUM_THREADS", "unset")))
    print("load_at_start=%s (1, 5, 15 min)" % load())
    print("blas=%s" % blas_library())
    model = Decoder(args.adapter, args.seq)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    gen = torch.Generator().manual_seed(3)
    ids = torch.randint(0, VOCAB, (args.batch, args.seq), generator=gen)
    n = args.batch * args.seq
    fwd, bwd, optim, total = [], [], [], []
    loss = aux = torch.zeros(())
    for i in range(-args.warmup, args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t1 = time.perf_counter()
        model.aux.clear()
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        aux = torch.stack(model.aux).sum() if model.aux else torch.zeros(())
        t2 = time.perf_counter()
        (loss + aux).backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        t4 = time.perf_counter()
        if not math.isfinite(float(loss + aux)):
            raise SystemExit("the loss became %s at step %d" % (float(loss + aux), i + args.warmup))
        if i >= 0:
            fwd.append((t2 - t1) * 1e3)
            bwd.append((t3 - t2) * 1e3)
            optim.append(((t1 - t0) + (t4 - t3)) * 1e3)
            total.append((t4 - t0) * 1e3)

    def median(xs):  # the upper median of an even count, as Machine.median
        return sorted(xs)[len(xs) // 2]

    step = median(total)
    print("bench=pytorch decoder %s: %s on %d modules %s; random LLaMA decoder C=%d L=%d H=%d KV=%d F=%d V=%d float32; batch %d x seq %d"
          % (args.adapter, {"lora": "LoRA r=8 alpha=16", "tied-lora": "Tied-LoRA tl6 r=8 alpha=16",
                            "moelora": "MoELoRA E=4 top-2 r_e=2 alpha=16 lambda_bal=0.01 lambda_cl=0.1 tau=0.1 M=32"}[args.adapter],
             LAYERS * len(TARGETS), TARGETS, C, LAYERS, HEADS, KV_HEADS, FFN, VOCAB, args.batch, args.seq))
    print("trainable_parameters=%d" % sum(p.numel() for p in params))
    print("tokens_per_step=%d (timed steps %d after %d warm-up; medians)" % (n, args.steps, args.warmup))
    print("tokens_per_s=%.0f" % (n / step * 1e3))
    print("step_ms=%.1f" % step)
    print("forward_ms=%.1f (forward + loss)" % median(fwd))
    print("backward_ms=%.1f" % median(bwd))
    print("optimizer_ms=%.1f (zero grads + clip + AdamW)" % median(optim))
    sgemm = sgemm_rate(n, C, FFN)
    print("sgemm_gflop_per_s=%.1f (%dx%d * %dx%d, the MLP's gate/up projection, this process)" % (sgemm, n, C, C, FFN))
    print("loss=%.4f (task, last step; auxiliary %.6f)" % (float(loss), float(aux)))
    print("load_at_end=%s" % load())


if __name__ == "__main__":
    main(sys.argv[1:])
