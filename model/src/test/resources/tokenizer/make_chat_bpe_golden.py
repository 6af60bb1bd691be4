# Regenerates the fixtures BpeTokenizerChatTest compares against, all produced by the Hugging Face
# `tokenizers` library itself (Python binding 0.23.2, the same Rust code as the Node binding that
# make_bpe_golden.js uses), chat texts by `transformers` 5.18 (apply_chat_template):
#
#   bpe-llama3-tokenizer.json   Llama 3.1's pipeline: no normalizer; Sequence[Split(Llama 3 regex, Isolated),
#                               ByteLevel(add_prefix_space false, use_regex false)]; post-processor
#                               Sequence[ByteLevel, TemplateProcessing "<|begin_of_text|> $A"]; ByteLevel
#                               decoder; <|begin_of_text|>, <|end_of_text|>, <|start_header_id|>,
#                               <|end_header_id|>, <|eom_id|>, <|eot_id|>, <|python_tag|>, reserved specials
#   bpe-qwen2-tokenizer.json    Qwen2.5's pipeline: NFC normalizer; Sequence[Split(Qwen2 regex, single digits,
#                               Isolated), ByteLevel(use_regex false)]; ByteLevel post-processor (no BOS) and
#                               decoder; <|endoftext|>, <|im_start|>, <|im_end|>, fim/vision specials, and
#                               the non-special <tool_call> </tool_call>
#   bpe-llama3-golden.jsonl     ids, pre-tokenizer pieces and decoded texts for the Llama 3 file and its variants
#   bpe-qwen2-golden.jsonl      the same for the Qwen2 file and its variants (SmolLM2's Digits pipeline among them)
#
#   cd model/src/test/resources/tokenizer && \
#     /tmp/peftvenv/bin/python make_chat_bpe_golden.py /work/shared/data/llm-adapters/dataset .
#
# (/tmp/peftvenv: python3 -m venv, then pip install tokenizers==0.23.2 transformers==5.18.0 jinja2.)
#
# Vocabularies: the library's BpeTrainer learns MERGES merges over the byte-level alphabet from the first
# 400 boolq train instructions, pre-tokenized by each file's own pipeline; the special tokens are then
# added with add_special_tokens, so their ids follow the vocabulary as in the real files.
#
# golden lines, in order:
#   {"variant", "file", "overrides", "decodings"?, "config"?}  a tokenizer: the committed file with
#                                     top-level fields replaced by the given JSON values; "decodings":
#                                     false when its lines record no decodings; with "config", a
#                                     tokenizer_config.json holding it sits beside it and the ids are
#                                     transformers' (AutoTokenizer.from_pretrained on that directory)
#   {"variant", "text", "ids", "plain"?, "pieces"?, "decoded"?, "decodedSkippingSpecial"?}
#       ids = encode(text) with the post-processor's special tokens, plain = without them (every fourth
#       case, chat texts, every case with a '<', and every case of a config variant), pieces = the
#       pre-tokenizer's output for the text (variants that record them), decoded = decode(ids, false)
#       and decodedSkippingSpecial = decode(ids, true) (variants that record them; the Split variants
#       do not, decoding does not depend on the pre-tokenizer), each left out when it equals the text
#   {"variant", "decodeIds", "decoded", "decodedSkippingSpecial"}  decoding of hand-picked id sequences
#   {"variant", "bos", "eos"}          transformers' bos_token_id and eos_token_id (config variants only)
import copy
import json
import os
import sys
import tempfile

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

dataset_dir, out_dir = sys.argv[1:3]
MERGES = 500


def load(name, split):
    with open(os.path.join(dataset_dir, name, split + '.json'), encoding='utf-8') as f:
        return json.load(f)


LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")

LLAMA3_SPECIALS = ['<|begin_of_text|>', '<|end_of_text|>', '<|reserved_special_token_0|>', '<|reserved_special_token_1|>',
                   '<|finetune_right_pad_id|>', '<|reserved_special_token_2|>', '<|start_header_id|>',
                   '<|end_header_id|>', '<|eom_id|>', '<|eot_id|>', '<|python_tag|>'] + \
                  ['<|reserved_special_token_%d|>' % k for k in range(3, 9)]
QWEN2_SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>',
                  '<|box_start|>', '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>',
                  '<|vision_pad|>', '<|image_pad|>', '<|video_pad|>']
QWEN2_NOT_SPECIAL = ['<tool_call>', '</tool_call>']
QWEN2_LATER_SPECIALS = ['<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>']

# Meta-Llama-3-8B-Instruct's chat template, literally.
LLAMA3_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}")
# Qwen2.5-Instruct's chat template without its tool-calling branches (messages here have no tools).
QWEN2_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n"
    "{%- else %}\n"
    "    {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n"
    "{%- endif %}\n"
    "{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == \"assistant\") %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- endif %}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n"
    "    {{- '<|im_start|>assistant\\n' }}\n"
    "{%- endif %}\n")


def byte_level(add_prefix_space=False, use_regex=False):
    return pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space, use_regex=use_regex)


def trained(pre_tokenizer, normalizer, corpus):
    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizer
    tokenizer.pre_tokenizer = pre_tokenizer
    trainer = trainers.BpeTrainer(vocab_size=256 + MERGES, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(corpus, trainer)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer


def special(content, special=True):
    return AddedToken(content, single_word=False, lstrip=False, rstrip=False, normalized=False, special=special)


def llama3(corpus):
    tokenizer = trained(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(LLAMA3_REGEX), 'isolated', invert=False),
                                                 byte_level()]), None, corpus)
    tokenizer.add_special_tokens([special(t) for t in LLAMA3_SPECIALS])
    bos = '<|begin_of_text|>'
    tokenizer.post_processor = processors.Sequence([
        processors.ByteLevel(add_prefix_space=True, trim_offsets=False, use_regex=True),
        processors.TemplateProcessing(single=bos + ':0 $A:0', pair=bos + ':0 $A:0 ' + bos + ':1 $B:1',
                                      special_tokens=[(bos, tokenizer.token_to_id(bos))])])
    return tokenizer


def qwen2(corpus):
    tokenizer = trained(pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN2_REGEX), 'isolated', invert=False),
                                                 byte_level()]), normalizers.NFC(), corpus)
    tokenizer.add_special_tokens([special(t) for t in QWEN2_SPECIALS])
    tokenizer.add_tokens([special(t, special=False) for t in QWEN2_NOT_SPECIAL])
    tokenizer.add_special_tokens([special(t) for t in QWEN2_LATER_SPECIALS])
    tokenizer.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    return tokenizer


def split(pattern, behavior, invert=False):
    return {'type': 'Split', 'pattern': pattern, 'behavior': behavior, 'invert': invert}


def sequence(*steps):
    return {'type': 'Sequence', 'pretokenizers': list(steps)}


BYTE_LEVEL_NO_REGEX = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': False}
BYTE_LEVEL_PREFIX = {'type': 'ByteLevel', 'add_prefix_space': True, 'trim_offsets': True, 'use_regex': False}
BYTE_LEVEL_REGEX = {'type': 'ByteLevel', 'add_prefix_space': False, 'trim_offsets': True, 'use_regex': True}


def with_flags(added_tokens, flags):
    """The added_tokens array with the given flags set on the tokens named."""
    result = copy.deepcopy(added_tokens)
    for token in result:
        token.update(flags.get(token['content'], {}))
    return result


def corpus_texts():
    return [r['instruction'] for r in load('boolq', 'train')[:400]]


def dataset_texts():
    def cut(s, n):
        s = s.split(': ', 1)[1] if s.startswith('Please ') and ': ' in s else s
        return s[:n]
    texts = []
    boolq = load('boolq', 'test')
    texts += [cut(boolq[i]['instruction'], 160) for i in range(0, len(boolq), 131)][:24]
    for name in ['gsm8k', 'SVAMP', 'ARC-Easy', 'mathqa']:
        records = load(name, 'test')
        texts += [cut(records[i * 37]['instruction'], 160) for i in range(8)]
        for r in [r for r in records if any(ord(c) > 0x7f for c in r['instruction'])][:6]:
            at = next(i for i, c in enumerate(r['instruction']) if ord(c) > 0x7f)
            texts.append(r['instruction'][max(0, at - 30):at + 70])
    return texts


EDGE_TEXTS = [
    '', ' ', '  ', '\n', '\n\n', '\r\n', '\r\n\r\n', ' \r\n x', 'a\r\r\nb', '\n\n\n  \n', '  \n  ', 'x  \n  y \t\n z',
    'line one\nline two\n\nthree', 'tabs\tand\r\nCRLF', '\t\t', 'trailing   ', '   leading', 'a  b   c    d',
    'Hello world!', "don't stop: it's, we'll, I'd, they've, you're, I'm",
    "I'M YOU'RE THEY'LL WE'VE SHE'D IT'S DON'T", "'S 'T 'Re 'vE 'M 'Ll 'D", "x's x'S x'ſ x'ﬅ x'İ x'K x'ſt it'ſs",
    "''s 's's ’s", '12345678901234567890', '1 22 333 4444 55555', '3.14159265358979', '$100,000.50 and 1,000,000',
    '٠١٢٣٤٥٦٧٨٩ and ۱۲۳', 'x²³ ½ Ⅻ ①②', '१२३ देवनागरी', 'nbsp\u00a0here\u2028ls\u3000ideo\u0085nel\u000bvt\u000cff',
    'a\u00a0b \u00a0c\u00a0 d', 'em\u2003space\u2009thin\u202fnarrow\u205fmath\u1680ogham', 'zwsp\u200bhere bom\ufeffhere',
    'mongolian\u180evowel', 'a \u3000 b\u3000\u3000c', ' \u00a0\n\u00a0 ', '中文字符 and 日本語のかな', '한국어 텍스트',
    'Привет, мир! ПРИВЕТ', 'مرحبا بالعالم', 'ภาษาไทย ไม่มีเว้นวรรค', 'हिन्दी भाषा', 'emoji 😀🚀 mixed 👩‍👩‍👧 👍🏽 🇫🇷',
    '😀😀😀', 'naïve café résumé', 'e\u0301 o\u0308 A\u030a', '\u1100\u1161\u11a8 hangul jamo', 'Å Ω ﬁ ｆｕｌｌ ㈱ ⑩',
    'x = y + 2 * (z - 1); // comment', 'def f(x):\n    return x ** 2\n', 'https://example.com/a?b=c&d=e#f',
    '...!!!???', '"quoted" «guillemets» ¿qué? 100%', 'snake_case and kebab-case and CamelCase', 'x' * 80,
    'ab ' * 20, 'the the the the',
]
SPECIAL_TEXTS = [
    '<|begin_of_text|>', '<|begin_of_text|>Hello', 'a<|eot_id|>b', ' <|eot_id|> ', '<|eot_id|><|eot_id|>',
    '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>', 'x  <|start_header_id|>  y', 'word<|end_header_id|>word',
    '<|reserved_special_token_5|> z', '<|begin_of_text', '<|BEGIN_OF_TEXT|>', '<|end_of_text|>',
    '<|im_start|>', '<|im_start|>user\nHi<|im_end|>\n', 'x  <|im_end|>  y', 'a<|endoftext|>b', '<|endoftext|><|endoftext|>',
    '<tool_call>{"name": "f"}</tool_call>', 'x <tool_call> y', 'word<tool_call>word', '<|im_start', '<|IM_START|>',
    '<|fim_prefix|>def<|fim_suffix|>\n<|fim_middle|>', 'caf\u00e9 cafe\u0301 <|im_end|>',
]
CONVERSATIONS = [
    [{'role': 'system', 'content': 'You are a helpful assistant.'},
     {'role': 'user', 'content': 'What is 12 + 30?'},
     {'role': 'assistant', 'content': '12 + 30 = 42.'},
     {'role': 'user', 'content': "Thanks! And 1234 * 5678? Don't guess."}],
    [{'role': 'user', 'content': 'Traduis « bonjour » en 中文, s’il te plaît.\n\nMerci 🙂'}],
    [{'role': 'user', 'content': '  Please answer:   is the sky blue?  '},
     {'role': 'assistant', 'content': 'Yes.\r\nIt is.'}],
]


def chat_texts(template, bos_token):
    backend = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE()), bos_token=bos_token)
    texts = []
    for messages in CONVERSATIONS:
        for prompt in (False, True):
            texts.append(backend.apply_chat_template(messages, chat_template=template, tokenize=False,
                                                     add_generation_prompt=prompt))
    return texts


def apply_overrides(base, overrides):
    tree = copy.deepcopy(base)
    tree.update(copy.deepcopy(overrides))
    return tree


def without_unchanged(line, text, decoded, skipping):
    if decoded != text:
        line['decoded'] = decoded
    if skipping != text:
        line['decodedSkippingSpecial'] = skipping
    return line


def main():
    corpus = corpus_texts()
    files = {'bpe-llama3-tokenizer.json': llama3(corpus), 'bpe-qwen2-tokenizer.json': qwen2(corpus)}
    trees = {}
    for name, tokenizer in files.items():
        tokenizer.save(os.path.join(out_dir, name), pretty=True)
        with open(os.path.join(out_dir, name), encoding='utf-8') as f:
            trees[name] = json.load(f)
    l3, q2 = 'bpe-llama3-tokenizer.json', 'bpe-qwen2-tokenizer.json'
    l3_added, q2_added = trees[l3]['added_tokens'], trees[q2]['added_tokens']
    l3_template = trees[l3]['post_processor']['processors'][1]

    data = dataset_texts()
    llama_chats = chat_texts(LLAMA3_CHAT_TEMPLATE, '<|begin_of_text|>')
    qwen_chats = chat_texts(QWEN2_CHAT_TEMPLATE, None)
    common = EDGE_TEXTS + SPECIAL_TEXTS

    # variant, file, overrides, texts, every how many dataset texts (0: none), whether to record pieces and
    # decodings, and a tokenizer_config.json, if any; each goes to the golden file of its base file.
    def v(variant, file, overrides, texts, share=0, pieces=False, decoded=True, config=None):
        return dict(variant=variant, file=file, overrides=overrides, texts=texts, share=share, pieces=pieces,
                    decoded=decoded, config=config)
    split_variant = lambda name, pre_tokenizer, extra=(), file=l3: v(name, file, {'pre_tokenizer': pre_tokenizer},
                                                                       EDGE_TEXTS + list(extra), pieces=True, decoded=False)
    # A normalized added token whose content NFKC changes: matched in its normalized form, in normalized text.
    fullwidth_tool = {'id': max(t['id'] for t in q2_added) + 1, 'content': '<ｔｏｏｌ>', 'single_word': False, 'lstrip': False,
                      'rstrip': False, 'normalized': True, 'special': True}
    variants = [
        v('llama3', l3, {}, common + llama_chats + qwen_chats[:2], share=1, pieces=True),
        v('llama3-template-only', l3, {'post_processor': l3_template}, common[::3] + llama_chats[:2], share=8),
        v('llama3-added-token-flags', l3, {'added_tokens': with_flags(l3_added, {
            '<|start_header_id|>': {'lstrip': True},
            '<|end_header_id|>': {'rstrip': True},
            '<|eot_id|>': {'lstrip': True, 'rstrip': True},
            '<|reserved_special_token_5|>': {'single_word': True},
            '<|end_of_text|>': {'single_word': True, 'rstrip': True},
            '<|begin_of_text|>': {'normalized': True}})}, common + llama_chats),
        split_variant('split-removed-string', sequence(split({'String': ' '}, 'Removed'), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-removed-regex-characters-as-string',
                      sequence(split({'String': '.*'}, 'Removed'), BYTE_LEVEL_NO_REGEX), ['a.*b.*.*c', '.*', 'x.y*z']),
        split_variant('split-merged-with-previous', sequence(split({'Regex': r'[\s\p{P}]'}, 'MergedWithPrevious'), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-merged-with-next', sequence(split({'Regex': r'\d'}, 'MergedWithNext'), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-contiguous', sequence(split({'Regex': r'[\p{P}\p{S}]'}, 'Contiguous'), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-isolated-inverted', sequence(split({'Regex': r'\p{L}+'}, 'Isolated', True), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-removed-inverted', sequence(split({'Regex': r'\S+'}, 'Removed', True), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-merged-with-next-inverted',
                      sequence(split({'Regex': r'[\p{Lu}]'}, 'MergedWithNext', True), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-contiguous-inverted', sequence(split({'Regex': r'\s'}, 'Contiguous', True), BYTE_LEVEL_NO_REGEX)),
        split_variant('split-then-prefix-space', sequence(split({'Regex': r'\n'}, 'Isolated'), BYTE_LEVEL_PREFIX)),
        split_variant('split-then-metaspace-first', sequence(split({'Regex': r'(?<=\.) |\d'}, 'Removed'),
            {'type': 'Metaspace', 'replacement': '\u2581', 'prepend_scheme': 'first', 'split': True}, BYTE_LEVEL_NO_REGEX),
            ['One. Two. 3 Four.']),
        # add_bos_token as the template already does it: transformers 5.18 leaves a tokenizer.json's post-processor
        # as it is anyway (add_bos_token/add_eos_token that contradict it are refused by BpeTokenizer instead).
        v('llama3-instruct-config', l3, {}, SPECIAL_TEXTS[:6] + EDGE_TEXTS[:12] + llama_chats[:2], config={
            'bos_token': {'__type': 'AddedToken', 'content': '<|begin_of_text|>', 'lstrip': False, 'normalized': False,
                          'rstrip': False, 'single_word': False},
            'eos_token': '<|eot_id|>', 'add_bos_token': True, 'tokenizer_class': 'PreTrainedTokenizerFast'}),
        v('qwen2', q2, {}, common + qwen_chats + llama_chats[:2], share=1, pieces=True),
        v('qwen2-added-token-flags', q2, {'added_tokens': with_flags(q2_added, {
            '<|im_start|>': {'lstrip': True},
            '<|im_end|>': {'rstrip': True, 'lstrip': True},
            '<tool_call>': {'single_word': True},
            '</tool_call>': {'normalized': True},
            '<|endoftext|>': {'normalized': True, 'single_word': True}})}, common + qwen_chats),
        v('smollm2', q2, {'normalizer': None, 'pre_tokenizer': sequence(
            {'type': 'Digits', 'individual_digits': True}, BYTE_LEVEL_REGEX)}, common + qwen_chats, share=3, pieces=True),
        v('digits-contiguous', q2, {'normalizer': None, 'pre_tokenizer': sequence(
            {'type': 'Digits', 'individual_digits': False}, BYTE_LEVEL_REGEX)}, EDGE_TEXTS, pieces=True, decoded=False),
        v('qwen2-nfkc', q2, {'normalizer': {'type': 'NFKC'}}, EDGE_TEXTS),
        v('qwen2-nfd', q2, {'normalizer': {'type': 'NFD'}}, EDGE_TEXTS),
        v('qwen2-nfkd', q2, {'normalizer': {'type': 'NFKD'}}, EDGE_TEXTS),
        v('qwen2-normalizer-sequence', q2, {'normalizer': {'type': 'Sequence', 'normalizers': [
            {'type': 'NFKD'}, {'type': 'Replace', 'pattern': {'String': '\r\n'}, 'content': '\n'}, {'type': 'NFC'}]}},
          EDGE_TEXTS + SPECIAL_TEXTS),
        v('qwen2-nfkc-normalized-token', q2, {'normalizer': {'type': 'NFKC'}, 'added_tokens': q2_added + [fullwidth_tool]},
          SPECIAL_TEXTS + ['<tool> and <ｔｏｏｌ>', 'x<ｔｏｏｌ>y', '<ｔｏｏｌ', '< tool>']),
        # Oniguruma's iteration over empty matches, and '.' (not \n only), which Java's default line terminators would change.
        split_variant('split-empty-matches-merged-with-previous',
                      sequence(split({'Regex': ' *'}, 'MergedWithPrevious'), BYTE_LEVEL_NO_REGEX), file=q2),
        split_variant('split-empty-matches-contiguous', sequence(split({'Regex': r'\d*'}, 'Contiguous'), BYTE_LEVEL_NO_REGEX),
                      ['a1b22c', '12 34'], file=q2),
        split_variant('split-dot-isolated', sequence(split({'Regex': '.{1,4}'}, 'Isolated'), BYTE_LEVEL_NO_REGEX),
                      ['a\rb\u0085c\u2028d\u2029e\r\nf'], file=q2),
        v('qwen2-instruct-config', q2, {}, SPECIAL_TEXTS + qwen_chats[:2], config={
            'bos_token': None, 'eos_token': '<|im_end|>', 'pad_token': '<|endoftext|>', 'tokenizer_class': 'Qwen2Tokenizer',
            'model_max_length': 131072, 'split_special_tokens': False}),
    ]

    lines = {l3: [], q2: []}
    for spec in variants:
        variant, file, config = spec['variant'], spec['file'], spec['config']
        tree = apply_overrides(trees[file], spec['overrides'])
        out = lines[file]
        header = {'variant': variant, 'file': file, 'overrides': spec['overrides']}
        if not spec['decoded']:
            header['decodings'] = False
        if config is not None:
            header['config'] = config
        out.append(header)
        tokenizer = Tokenizer.from_str(json.dumps(tree))
        chosen = list(spec['texts']) + (data[::spec['share']] if spec['share'] else [])
        if config is not None:
            directory = tempfile.mkdtemp(prefix='chat-golden-')
            with open(os.path.join(directory, 'tokenizer.json'), 'w', encoding='utf-8') as f:
                json.dump(tree, f)
            with open(os.path.join(directory, 'tokenizer_config.json'), 'w', encoding='utf-8') as f:
                json.dump(config, f)
            hf = AutoTokenizer.from_pretrained(directory)
            out.append({'variant': variant, 'bos': hf.bos_token_id, 'eos': hf.eos_token_id})
            for text in chosen:
                ids = hf.encode(text, add_special_tokens=True)
                line = {'variant': variant, 'text': text, 'ids': ids, 'plain': hf.encode(text, add_special_tokens=False)}
                out.append(without_unchanged(line, text, hf.decode(ids, skip_special_tokens=False),
                                             hf.decode(ids, skip_special_tokens=True)))
            continue
        for i, text in enumerate(chosen):
            ids = tokenizer.encode(text).ids
            line = {'variant': variant, 'text': text, 'ids': ids}
            if i % 4 == 0 or '<' in text or text in llama_chats or text in qwen_chats:
                line['plain'] = tokenizer.encode(text, add_special_tokens=False).ids
            if spec['pieces']:
                line['pieces'] = [p for p, _ in tokenizer.pre_tokenizer.pre_tokenize_str(text)]
            if spec['decoded']:
                line = without_unchanged(line, text, tokenizer.decode(ids, skip_special_tokens=False),
                                         tokenizer.decode(ids, skip_special_tokens=True))
            out.append(line)
        for tokens in decode_cases(variant) if spec['decoded'] else []:
            ids = [tokenizer.token_to_id(t) for t in tokens]
            assert None not in ids, (variant, tokens)
            out.append(without_unchanged({'variant': variant, 'decodeIds': ids}, None,
                                         tokenizer.decode(ids, skip_special_tokens=False),
                                         tokenizer.decode(ids, skip_special_tokens=True)))
    for file, golden in (('bpe-llama3-golden.jsonl', lines[l3]), ('bpe-qwen2-golden.jsonl', lines[q2])):
        with open(os.path.join(out_dir, file), 'w', encoding='utf-8') as f:
            for line in golden:
                f.write(json.dumps(line, ensure_ascii=False, separators=(',', ':')) + '\n')


def decode_cases(variant):
    if variant.startswith('llama3') or variant.startswith('split'):
        return [[], ['<|begin_of_text|>'], ['<|begin_of_text|>', 'Ġthe', '<|eot_id|>'], ['ä', '¸'], ['Ġthe', 'ÿ', 't'],
                ['<|start_header_id|>', 'Ġ', '<|end_header_id|>', 'Ċ', 'Ċ'], ['<|reserved_special_token_8|>']]
    if variant.startswith('qwen2') or variant.startswith('smollm2') or variant.startswith('digits'):
        return [[], ['<|im_start|>', 'Ġthe', '<|im_end|>'], ['<tool_call>', 'Ġ', '</tool_call>'], ['ä', '¸', '*'],
                ['<|endoftext|>'], ['<|fim_prefix|>', 'Ċ', '<|file_sep|>']]
    return []


if __name__ == '__main__':
    main()
