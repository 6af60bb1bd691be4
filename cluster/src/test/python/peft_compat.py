"""What Hugging Face transformers and PEFT compute with moelora's files, for PeftCompatibilityTest.

Needs transformers, peft and torch (not part of the build: the test runs this only when
MOELORA_PEFT_PYTHON names a Python that has them). Everything runs in float32 on the CPU.

    python peft_compat.py --base DIR --ids 1,5,9 [--adapter NAME=DIR ...] [--merged NAME=DIR ...] [--save-peft DIR]

--base      a LLaMA checkpoint directory, loaded with LlamaForCausalLM.from_pretrained
--adapter   an adapter directory moelora wrote: its logits through PeftModel.from_pretrained, and
            after merge_and_unload() (PEFT's own merge), as NAME and NAME/merge_and_unload
--merged    a checkpoint directory moelora's merge wrote: its logits through from_pretrained, as NAME
--save-peft PEFT makes a LoRA of its own on the base (r 3, lora_alpha 12, target_modules as one regular
            expression, B drawn at random so it changes the output), saves it there with save_pretrained
            and reports its logits as peft_saved
Prints one JSON object: {"base": logits, NAME: logits, ...}, each logits a list of T rows of V floats.
"""
import argparse
import json
import sys

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import LlamaForCausalLM


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits[0].tolist()


def base_model(path):
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.float32)
    model.eval()
    return model


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--base", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--adapter", action="append", default=[])
    p.add_argument("--merged", action="append", default=[])
    p.add_argument("--save-peft")
    args = p.parse_args()
    ids = torch.tensor([[int(i) for i in args.ids.split(",")]])
    out = {"base": logits(base_model(args.base), ids)}
    for spec in args.adapter:
        name, path = spec.split("=", 1)
        model = PeftModel.from_pretrained(base_model(args.base), path)
        model.eval()
        out[name] = logits(model, ids)
        out[name + "/merge_and_unload"] = logits(model.merge_and_unload(), ids)
    for spec in args.merged:
        name, path = spec.split("=", 1)
        out[name] = logits(base_model(path), ids)
    if args.save_peft:
        torch.manual_seed(7)
        config = LoraConfig(r=3, lora_alpha=12, lora_dropout=0.0, target_modules=r".*\.(q_proj|v_proj|down_proj)", task_type="CAUSAL_LM")
        model = get_peft_model(base_model(args.base), config)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(0.0, 0.3)
        model.eval()
        model.save_pretrained(args.save_peft)
        out["peft_saved"] = logits(model, ids)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
