"""Golden references for LlamaGoldenTest: tiny random LLaMA checkpoints in Hugging Face layout, and
what PyTorch computes on them (logits, next-token loss, LoRA gradients), so the Java decoder is
checked against an implementation it shares no code with.

Run (from anywhere; needs PyTorch >= 1.13 and numpy, NOT transformers or safetensors):
    /usr/bin/python3 model/src/test/python/llama_golden.py
On Debian, `apt-get install python3-torch` provides PyTorch for /usr/bin/python3.

Writes, for each case, model/src/test/resources/llama/<case>/:
    config.json                    Hugging Face LlamaConfig fields
    model.safetensors              the weights, or for a sharded case
      model-00001-of-00002.safetensors, model-00002-of-00002.safetensors, model.safetensors.index.json
    lora/adapter_model.safetensors LoRA A and B (F32, B nonzero) under PEFT key names
                                   (base_model.model.<module>.lora_A.weight), as AdapterStore reads them
    lora/adapter_config.json       PEFT's r, lora_alpha, target_modules
    reference.safetensors          F64: input_ids, attention_mask, loss_mask (B, T); logits (B*T, V);
                                   loss (); grad.<PEFT key> for every LoRA A and B; adamw_losses (3):
                                   the loss after each of 3 torch.optim.AdamW steps on A and B
                                   (lr 0.01, weight decay 0.01, betas 0.9/0.999, eps 1e-8)
and, for gqa-f32, adapter directories in moelora's layout and what PyTorch computes with them:
    tied-lora-tl6/                 Tied-LoRA preset tl6 on all seven projections: A, B tied per module type
                                   (model.layers.*.<module>.tied_lora_A/_B), u and v per layer, random, not ones
    moelora/                       MoELoRA, 4 experts of rank 2, top-2, on q_proj, v_proj, down_proj: gates and
                                   experts (<module>.moe_gate, .moe_A.<e>, .moe_B.<e>), random
                                   (each: adapter_config.json as moelora writes it, adapter_model.safetensors F32)
    adapter-reference.safetensors  F64: input_ids, attention_mask (2, 7), the second row right-padded; logits.base and
                                   logits.<adapter> (B*T, V) for lora, tied-lora-tl6 and moelora, each computed from
                                   the adapter directory's files alone (saved_adapter_terms), not from the tensors drawn
Cases: gqa-f32 (4 query heads over 2 key/value heads, untied lm_head, F32), tied-bf16 (tied
embeddings, 4 key/value heads, BF16, rope_theta 500000, two EOS ids), sharded-f16 (1 key/value head,
untied, F16, two shards with an index), llama3-rope (Llama 3.1's rope_scaling: factor 8, low/high
frequency factors 1/4, original_max_position_embeddings 64, head_dim 32, so of the 16 frequencies 2
are kept, 3 interpolated and 11 slowed; reference.safetensors also holds rope.inv_freq (D/2)),
qwen2-bias (Qwen2ForCausalLM: random q/k/v biases, tied embeddings, rope_theta 1e6, sliding_window
given but use_sliding_window false), smollm2-shape (SmolLM2-135M's attention: hidden 576, 9 query heads
over 3 key/value heads, head_dim 64, rope_theta 100000, tied, BF16; one layer, vocabulary 256 and an
MLP of 96 instead of 1536 to keep the checkpoint near 2 MB).

The reference runs in float64 on the stored values (rounded to F32/BF16/F16 first), following
transformers' modeling_llama.py and modeling_qwen2.py: LlamaRMSNorm, rotate_half RoPE with
inv_freq = 1 / theta^(arange(0, D, 2) / D), rescaled for rope_type llama3 as
modeling_rope_utils.py's _compute_llama3_parameters does, nn.Linear's bias where Qwen2Attention
(q, k, v) or attention_bias / mlp_bias put one, repeat_kv for grouped-query attention, a causal mask
combined with the key padding mask (finfo.min where hidden), softmax, SiLU-gated MLP. LoRA has PEFT
semantics: y = x W^T + (alpha / r) (x A^T) B^T; Tied-LoRA y = x W^T + (alpha / r) v * ((u * x A^T) B^T); MoELoRA
y = x W^T + sum over the top-k experts of g_k (alpha / r_e) (x A_k^T) B_k^T, g the softmax of x W_g^T renormalised over
the top k. The loss is cross-entropy of logits[:, :-1] against
input_ids[:, 1:] where loss_mask[:, 1:] is 1 (labels -100 elsewhere), averaged over those targets.
"""
import json
import math
import os
import re
import struct

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "resources", "llama")
F64 = torch.float64
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64"}
MODULES = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
RANK, ALPHA = 2, 6


def write_safetensors(path, tensors, metadata=None):
    """The safetensors format: u64 little-endian header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def biased_modules(c):
    """The projections nn.Linear builds with bias=True: Qwen2Attention's q, k, v (modeling_qwen2.py); LlamaAttention's
    q, k, v, o when attention_bias, LlamaMLP's gate, up, down when mlp_bias (modeling_llama.py)."""
    if c["architectures"][0] == "Qwen2ForCausalLM":
        return MODULES[:3]
    return (MODULES[:4] if c.get("attention_bias") else []) + (MODULES[4:] if c.get("mlp_bias") else [])


def weight_shapes(c):
    C, F_, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    D = C // c["num_attention_heads"]
    HD, KVD = c["num_attention_heads"] * D, c["num_key_value_heads"] * D
    shapes = {"model.embed_tokens.weight": (V, C)}
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        shapes.update({p + "input_layernorm.weight": (C,), p + "self_attn.q_proj.weight": (HD, C),
                       p + "self_attn.k_proj.weight": (KVD, C), p + "self_attn.v_proj.weight": (KVD, C),
                       p + "self_attn.o_proj.weight": (C, HD), p + "post_attention_layernorm.weight": (C,),
                       p + "mlp.gate_proj.weight": (F_, C), p + "mlp.up_proj.weight": (F_, C),
                       p + "mlp.down_proj.weight": (C, F_)})
        for m in biased_modules(c):
            shapes[p + m + ".bias"] = (shapes[p + m + ".weight"][0],)
    shapes["model.norm.weight"] = (C,)
    if not c["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (V, C)
    return shapes


def random_weights(c, gen, embed_std=0.5):
    w = {}
    for name, shape in weight_shapes(c).items():
        if name.endswith(".bias"):
            w[name] = 0.5 * torch.randn(shape, generator=gen)
        elif len(shape) == 1:
            w[name] = 1 + 0.1 * torch.randn(shape, generator=gen)
        elif "embed_tokens" in name:
            w[name] = embed_std * torch.randn(shape, generator=gen)
        else:
            w[name] = torch.randn(shape, generator=gen) / math.sqrt(shape[1])
    return w


def rms_norm(x, weight, eps):  # LlamaRMSNorm
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps))


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def repeat_kv(x, n_rep):  # (B, KV, T, D) -> (B, KV * n_rep, T, D)
    b, kv, t, d = x.shape
    return x if n_rep == 1 else x[:, :, None, :, :].expand(b, kv, n_rep, t, d).reshape(b, kv * n_rep, t, d)


def inverse_frequencies(c, D):
    """inv_freq = 1 / theta^(arange(0, D, 2) / D) (_compute_default_rope_parameters), rescaled for rope_type llama3 as
    transformers' _compute_llama3_parameters (modeling_rope_utils.py) does. Returns it with each frequency's band
    ("high": kept, "medium": interpolated, "low": divided by factor; all "plain" without scaling)."""
    inv_freq = 1.0 / (c["rope_theta"] ** (torch.arange(0, D, 2, dtype=torch.int64).to(F64) / D))
    scaling = c.get("rope_scaling")
    if scaling is None or scaling.get("rope_type", scaling.get("type")) == "default":
        return inv_freq, ["plain"] * len(inv_freq)
    assert scaling["rope_type"] == "llama3", scaling
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old_context_len = scaling["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = old_context_len / low, old_context_len / high
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low) / (high - low)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
    inv_freq_llama = torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    bands = ["medium" if m else "low" if w > low_freq_wavelen else "high" for m, w in zip(is_medium_freq, wavelen)]
    return inv_freq_llama, bands


def lora_term(a, b, scale=ALPHA / RANK):
    """PEFT's LoRA: what the adapter adds to x W^T."""
    return lambda x: scale * (x @ a.T) @ b.T


def forward(c, w, adapters, ids, attention_mask):
    """adapters: module name -> function of the module's input x giving what its adapter adds to x W^T."""
    B, T = ids.shape
    H, KV = c["num_attention_heads"], c["num_key_value_heads"]
    D = c["hidden_size"] // H
    eps = c["rms_norm_eps"]

    def linear(x, module):
        y = x @ w[module + ".weight"].T
        if module + ".bias" in w:
            y = y + w[module + ".bias"]
        if module in adapters:
            y = y + adapters[module](x)
        return y

    inv_freq, _ = inverse_frequencies(c, D)
    freqs = torch.outer(torch.arange(T, dtype=F64), inv_freq)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    allowed = torch.tril(torch.ones(T, T, dtype=torch.bool))[None, :, :] & attention_mask.bool()[:, None, :]
    mask = torch.zeros(B, 1, T, T, dtype=F64).masked_fill(~allowed[:, None], torch.finfo(F64).min)

    x = w["model.embed_tokens.weight"][ids]
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        q = linear(h, p + "self_attn.q_proj").view(B, T, H, D).transpose(1, 2)
        k = linear(h, p + "self_attn.k_proj").view(B, T, KV, D).transpose(1, 2)
        v = linear(h, p + "self_attn.v_proj").view(B, T, KV, D).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k, v = repeat_kv(k, H // KV), repeat_kv(v, H // KV)
        att = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(D) + mask, dim=-1)
        ctx = (att @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + linear(ctx, p + "self_attn.o_proj")
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        x = x + linear(F.silu(linear(h, p + "mlp.gate_proj")) * linear(h, p + "mlp.up_proj"), p + "mlp.down_proj")
    x = rms_norm(x, w["model.norm.weight"], eps)
    head = w["model.embed_tokens.weight"] if c["tie_word_embeddings"] else w["lm_head.weight"]
    return x @ head.T


def next_token_loss(logits, ids, loss_mask):
    labels = ids.masked_fill(loss_mask == 0, -100)
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, V), labels[:, 1:].reshape(-1), ignore_index=-100)


def make_case(name, config, dtype, seed, shards=1, embed_std=0.5):
    gen = torch.Generator().manual_seed(seed)
    out = os.path.join(OUT, name)
    os.makedirs(os.path.join(out, "lora"), exist_ok=True)
    for old in os.listdir(out):
        if old.endswith(".safetensors") or old in ("config.json", "model.safetensors.index.json"):  # tokenizer.json is not ours
            os.remove(os.path.join(out, old))
    c = dict(config)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(c, f, indent=2)
        f.write("\n")

    stored = {k: v.to(dtype) for k, v in random_weights(c, gen, embed_std).items()}
    if shards == 1:
        write_safetensors(os.path.join(out, "model.safetensors"), stored, {"format": "pt"})
    else:
        names = list(stored)  # forward order: the first shard takes the embeddings and the first layer
        cut = next(i for i, n in enumerate(names) if n.startswith("model.layers.1."))
        parts = [names[:cut], names[cut:]]
        weight_map = {}
        for i, part in enumerate(parts):
            file = f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors"
            write_safetensors(os.path.join(out, file), {n: stored[n] for n in part}, {"format": "pt"})
            weight_map.update({n: file for n in part})
        total = sum(t.numel() * t.element_size() for t in stored.values())
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
            f.write("\n")
    w = {k: v.to(F64) for k, v in stored.items()}

    lora, adapter = {}, {}
    for l in range(c["num_hidden_layers"]):
        for m in MODULES:
            module = f"model.layers.{l}.{m}"
            d_out, d_in = w[module + ".weight"].shape
            bound = 1 / math.sqrt(d_in)
            a = ((torch.rand(RANK, d_in, generator=gen) * 2 - 1) * bound).float()
            b = (0.3 * torch.randn(d_out, RANK, generator=gen)).float()
            adapter[f"base_model.model.{module}.lora_A.weight"] = a
            adapter[f"base_model.model.{module}.lora_B.weight"] = b
            lora[module] = (a.to(F64).requires_grad_(), b.to(F64).requires_grad_())
    write_safetensors(os.path.join(out, "lora", "adapter_model.safetensors"), adapter, {"format": "pt"})
    with open(os.path.join(out, "lora", "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "r": RANK, "lora_alpha": ALPHA, "lora_dropout": 0.0,
                   "target_modules": [m.split(".")[1] for m in MODULES]}, f, indent=2)
        f.write("\n")

    V = c["vocab_size"]
    ids = torch.randint(3, V, (2, 6), generator=gen)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    ids = ids.masked_fill(attention_mask == 0, 0)  # right padding with id 0
    loss_mask = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]])
    terms = {module: lora_term(a, b) for module, (a, b) in lora.items()}
    logits = forward(c, w, terms, ids, attention_mask)
    loss = next_token_loss(logits, ids, loss_mask)
    loss.backward()
    ref = {"input_ids": ids.to(F64), "attention_mask": attention_mask.to(F64), "loss_mask": loss_mask.to(F64),
           "logits": logits.detach().reshape(-1, V), "loss": loss.detach()}
    for module, (a, b) in lora.items():
        ref[f"grad.base_model.model.{module}.lora_A.weight"] = a.grad.clone()
        ref[f"grad.base_model.model.{module}.lora_B.weight"] = b.grad.clone()
    adamw = torch.optim.AdamW([t for pair in lora.values() for t in pair], lr=0.01, betas=(0.9, 0.999), eps=1e-8,
                              weight_decay=0.01)
    losses = []
    for _ in range(3):
        adamw.step()
        adamw.zero_grad()
        step_loss = next_token_loss(forward(c, w, terms, ids, attention_mask), ids, loss_mask)
        step_loss.backward()
        losses.append(step_loss.item())
    ref["adamw_losses"] = torch.tensor(losses, dtype=F64)
    if c.get("rope_scaling") is not None:
        inv_freq, bands = inverse_frequencies(c, c["hidden_size"] // c["num_attention_heads"])
        ref["rope.inv_freq"] = inv_freq
        print(f"{name}: RoPE bands {bands}")
        assert {"high", "medium", "low"} <= set(bands), "the case must put frequencies in all three bands"
    write_safetensors(os.path.join(out, "reference.safetensors"), ref, {"source": "llama_golden.py"})
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(out) for f in fs)
    print(f"{name}: loss {loss.item():.6f}, after AdamW steps {[round(l, 6) for l in losses]}, {size} bytes")
    return size


def config(kv_heads, tied, theta, eps, eos, torch_dtype, **extra):
    c = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "intermediate_size": 40,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": kv_heads, "vocab_size": 48,
         "max_position_embeddings": 64, "rms_norm_eps": eps, "rope_theta": theta, "rope_scaling": None,
         "hidden_act": "silu", "tie_word_embeddings": tied, "bos_token_id": 1, "eos_token_id": eos,
         "attention_bias": False, "attention_dropout": 0.0, "initializer_range": 0.02, "pretraining_tp": 1,
         "use_cache": True, "torch_dtype": torch_dtype}
    c.update(extra)
    return c


def qwen2_config(**extra):
    """Qwen2ForCausalLM as Qwen2.5's config.json has it: sliding_window given but off (use_sliding_window false)."""
    c = {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 32, "intermediate_size": 40,
         "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 48,
         "max_position_embeddings": 128, "max_window_layers": 1, "use_sliding_window": False, "sliding_window": 4,
         "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_scaling": None, "hidden_act": "silu",
         "tie_word_embeddings": True, "bos_token_id": 1, "eos_token_id": 2, "attention_dropout": 0.0,
         "initializer_range": 0.02, "use_cache": True, "torch_dtype": "float32"}
    c.update(extra)
    return c


def smollm2_config():
    """SmolLM2-135M's attention at full size (hidden 576, 9 query heads over 3 key/value heads, head_dim 64,
    rope_theta 100000, rms_norm_eps 1e-5, tied embeddings), but one layer, a vocabulary of 256 and an MLP of 96
    (SmolLM2's is 1536) to keep the committed checkpoint near 2 MB."""
    c = config(3, True, 100000.0, 1e-5, 0, "bfloat16", hidden_size=576, intermediate_size=96, num_hidden_layers=1,
               num_attention_heads=9, vocab_size=256, max_position_embeddings=8192, bos_token_id=0, head_dim=64)
    return c


def read_safetensors(path):
    """Every tensor of a safetensors file as float64 (F32, F16, BF16 or F64 stored)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        raw = bytearray(data[begin:end])
        if t["dtype"] == "BF16":
            x = (torch.frombuffer(raw, dtype=torch.int16).to(torch.int32) << 16).view(torch.float32)
        else:
            x = torch.frombuffer(raw, dtype={"F32": torch.float32, "F16": torch.float16, "F64": F64}[t["dtype"]])
        out[name] = x.to(F64).reshape(t["shape"])
    return out


def targets_match(module, targets):
    """PEFT's target_modules: a list of name suffixes (whole components), or one regular expression for the whole name."""
    if isinstance(targets, str):
        return re.fullmatch(targets, module) is not None
    return any(module == t or module.endswith("." + t) for t in targets)


def saved_adapter_terms(c, adapter_dir):
    """The adapter terms of an adapter directory as moelora saves it (adapter_config.json, adapter_model.safetensors),
    applied from the file alone: LoRA with PEFT's keys, Tied-LoRA (A and B tied per module type, u and v per layer,
    absent when they are the constant 1), MoELoRA (top-k of softmax(x W_g^T), weights renormalised over the k)."""
    with open(os.path.join(adapter_dir, "adapter_config.json")) as f:
        ac = json.load(f)
    t = read_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"))
    kind = ac.get("moelora_type", ac.get("peft_type"))
    terms = {}
    for l in range(c["num_hidden_layers"]):
        for m in MODULES:
            module = f"model.layers.{l}.{m}"
            if not targets_match(module, ac["target_modules"]):
                continue
            if kind == "LORA":
                a, b = t[f"base_model.model.{module}.lora_A.weight"], t[f"base_model.model.{module}.lora_B.weight"]
                terms[module] = lora_term(a, b, ac["lora_alpha"] / ac["r"])
            elif kind == "TIED_LORA":
                tied = f"model.layers.*.{m}"
                a, b = t[tied + ".tied_lora_A"], t[tied + ".tied_lora_B"]
                u = t.get(module + ".tied_lora_u", torch.ones(a.shape[0], dtype=F64))
                v = t.get(module + ".tied_lora_v", torch.ones(b.shape[0], dtype=F64))
                s = ac["alpha"] / ac["r"]
                terms[module] = (lambda a, b, u, v, s: lambda x: s * v * (((x @ a.T) * u) @ b.T))(a, b, u, v, s)
            elif kind == "MOELORA":
                E, K, s = ac["experts"], ac["top_k"], ac["alpha"] / ac["expert_rank"]
                gate = t[module + ".moe_gate"]
                experts = [(t[f"{module}.moe_A.{e}"], t[f"{module}.moe_B.{e}"]) for e in range(E)]

                def moe(x, gate=gate, experts=experts, K=K, s=s):
                    p = torch.softmax(x @ gate.T, dim=-1)
                    top, index = torch.topk(p, K, dim=-1)
                    g = top / top.sum(dim=-1, keepdim=True)
                    y = torch.zeros(x.shape[:-1] + (experts[0][1].shape[0],), dtype=F64)
                    for e, (a, b) in enumerate(experts):
                        weight = (g * (index == e)).sum(dim=-1, keepdim=True)
                        y = y + weight * (s * (x @ a.T) @ b.T)
                    return y
                terms[module] = moe
            else:
                raise ValueError(f"{adapter_dir}: unknown adapter type {kind}")
    return terms


def make_adapter_cases(name, seed):
    """Tied-LoRA (tl6) and MoELoRA adapters with random tensors for the checkpoint `name`, in moelora's layout, and
    the logits of the checkpoint under each adapter directory (LoRA's too) computed from the files alone."""
    out = os.path.join(OUT, name)
    with open(os.path.join(out, "config.json")) as f:
        c = json.load(f)
    w = read_safetensors(os.path.join(out, "model.safetensors"))
    gen = torch.Generator().manual_seed(seed)
    L, all_modules = c["num_hidden_layers"], [m.split(".")[1] for m in MODULES]

    tied = {}
    for m in MODULES:
        d_out, d_in = w[f"model.layers.0.{m}.weight"].shape
        tied[f"model.layers.*.{m}.tied_lora_A"] = (torch.rand(RANK, d_in, generator=gen) * 2 - 1) / math.sqrt(d_in)
        tied[f"model.layers.*.{m}.tied_lora_B"] = 0.3 * torch.randn(d_out, RANK, generator=gen)
        for l in range(L):
            tied[f"model.layers.{l}.{m}.tied_lora_u"] = 1 + 0.5 * torch.randn(RANK, generator=gen)
            tied[f"model.layers.{l}.{m}.tied_lora_v"] = 1 + 0.5 * torch.randn(d_out, generator=gen)
    write_adapter(os.path.join(out, "tied-lora-tl6"), tied, {
        "moelora_type": "TIED_LORA", "base_model_name_or_path": name, "preset": "tl6", "r": RANK, "alpha": float(ALPHA),
        "dropout": 0.0, "target_modules": all_modules, "share_a_across_qkv": False, "seed": 1,
        "description": f"Tied-LoRA tl6 r={RANK} alpha={ALPHA} dropout=0 on {7 * L} modules {all_modules} (A tied trained, B tied trained, "
                       "u trained, v trained)", "task_type": "CAUSAL_LM"})

    E, K, R_E, moe_targets = 4, 2, 2, ["q_proj", "v_proj", "down_proj"]
    moe = {}
    for l in range(L):
        for m in MODULES:
            module = f"model.layers.{l}.{m}"
            if not targets_match(module, moe_targets):
                continue
            d_out, d_in = w[module + ".weight"].shape
            moe[module + ".moe_gate"] = torch.randn(E, d_in, generator=gen)
            for e in range(E):
                moe[f"{module}.moe_A.{e}"] = (torch.rand(R_E, d_in, generator=gen) * 2 - 1) / math.sqrt(d_in)
                moe[f"{module}.moe_B.{e}"] = 0.3 * torch.randn(d_out, R_E, generator=gen)
    write_adapter(os.path.join(out, "moelora"), moe, {
        "moelora_type": "MOELORA", "base_model_name_or_path": name, "experts": E, "top_k": K, "expert_rank": R_E,
        "alpha": float(ALPHA), "dropout": 0.0, "target_modules": moe_targets, "balance_weight": 0.01, "contrastive_weight": 0.1,
        "temperature": 0.1, "max_features_per_expert": 8,
        "description": f"MoELoRA E={E} top-{K} r_e={R_E} alpha={ALPHA} on {3 * L} modules {moe_targets}", "task_type": "CAUSAL_LM"})

    ids = torch.randint(3, c["vocab_size"], (2, 7), generator=gen)
    attention_mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 0, 0]])
    ids = ids.masked_fill(attention_mask == 0, 0)
    ref = {"input_ids": ids.to(F64), "attention_mask": attention_mask.to(F64),
           "logits.base": forward(c, w, {}, ids, attention_mask).reshape(-1, c["vocab_size"])}
    for adapter in ["lora", "tied-lora-tl6", "moelora"]:
        logits = forward(c, w, saved_adapter_terms(c, os.path.join(out, adapter)), ids, attention_mask)
        ref["logits." + adapter] = logits.reshape(-1, c["vocab_size"])
        print(f"{name}/{adapter}: max |logits - base logits| {(ref['logits.' + adapter] - ref['logits.base']).abs().max().item():.4f}")
    write_safetensors(os.path.join(out, "adapter-reference.safetensors"), ref, {"source": "llama_golden.py"})


def write_adapter(adapter_dir, tensors, adapter_config):
    os.makedirs(adapter_dir, exist_ok=True)
    write_safetensors(os.path.join(adapter_dir, "adapter_model.safetensors"), {k: v.float() for k, v in tensors.items()},
                      {"format": "pt", "step": "0"})
    with open(os.path.join(adapter_dir, "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    total = make_case("gqa-f32", config(2, False, 10000.0, 1e-6, 2, "float32"), torch.float32, 1)
    total += make_case("tied-bf16", config(4, True, 500000.0, 1e-5, [2, 3], "bfloat16", head_dim=8), torch.bfloat16, 2)
    total += make_case("sharded-f16", config(1, False, 10000.0, 1e-5, 2, "float16"), torch.float16, 3, shards=2)
    llama3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 64}
    total += make_case("llama3-rope", config(1, False, 10000.0, 1e-5, [2, 3], "float32", hidden_size=64, num_attention_heads=2,
                                             max_position_embeddings=128, rope_scaling=llama3), torch.float32, 4)
    total += make_case("qwen2-bias", qwen2_config(), torch.float32, 5)
    total += make_case("smollm2-shape", smollm2_config(), torch.bfloat16, 6, embed_std=0.1)
    make_adapter_cases("gqa-f32", 101)
    print(f"total {total} bytes of checkpoints")
