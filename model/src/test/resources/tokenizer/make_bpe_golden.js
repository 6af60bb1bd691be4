// Regenerates the BPE fixtures BpeTokenizerTest compares against, all produced by the Hugging Face
// `tokenizers` library itself (its Node binding, the Rust implementation):
//
//   bpe-sentencepiece-tokenizer.json  LLaMA-style: Prepend("▁") + Replace(" ", "▁") normalizer, no
//                                     pre-tokenizer, byte_fallback with <0x00>..<0xFF>, <unk> <s> </s>,
//                                     "<s> $A" template, Replace/ByteFallback/Fuse/Strip decoder,
//                                     merges as [a, b] pairs
//   bpe-bytelevel-tokenizer.json      GPT-2-style: ByteLevel pre-tokenizer, post-processor and decoder,
//                                     <|endoftext|>, merges as "a b" strings
//   bpe-golden.jsonl                  ids and decoded text for both files and for variants of them
//
//   npm install --prefix /tmp/tokref tokenizers@0.23.2
//   cd model/src/test/resources/tokenizer && NODE_PATH=/tmp/tokref/node_modules node make_bpe_golden.js /work/shared/data/llm-adapters/dataset .
//
// Vocabularies: the library's BpeTrainer (default settings) learns merges from the first 400 boolq
// train instructions, once with a Metaspace and once with a ByteLevel pre-tokenizer; the first 600
// merges are kept, so the files stay small and many inputs need several merges, byte fallback or
// single characters. The SentencePiece vocabulary is laid out as LLaMA's is (<unk> <s> </s>, the 256
// byte tokens, merged tokens in merge order, then single characters) with "▁▁" and "▁▁▁▁" as the first
// merges, as in LLaMA; "\n" is left out of it so that newlines take the byte fallback, as in LLaMA.
//
// golden lines, in order:
//   {"variant", "file", "overrides"}  a tokenizer: the committed file with top-level or dotted fields
//                                     ("model.byte_fallback") replaced by the given JSON values
//   {"variant", "text", "ids", "plain"?, "decoded"?, "decodedSkippingSpecial"?}
//       ids = encode(text) with the post-processor's special tokens, plain = without them (every
//       fourth case and every case containing a special token), decoded = decode(ids, false) and
//       decodedSkippingSpecial = decode(ids, true), each left out when it equals the input text
//   {"variant", "decodeIds", "decoded", "decodedSkippingSpecial"}  decoding of hand-picked id sequences
const fs = require('fs');
const os = require('os');
const path = require('path');
const { Tokenizer, BPE, metaspacePreTokenizer, byteLevelPreTokenizer, byteLevelAlphabet } = require('tokenizers');

const [datasetDir, outDir] = process.argv.slice(2);
const load = (name, split) => JSON.parse(fs.readFileSync(path.join(datasetDir, name, split + '.json'), 'utf8'));
const MERGES_KEPT = 600;

const trainingFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bpe-golden-')), 'train.txt');
fs.writeFileSync(trainingFile, load('boolq', 'train').slice(0, 400).map((r) => r.instruction).join('\n'));

function trainedMerges(preTokenizer) {
  const trainer = new Tokenizer(BPE.empty());
  trainer.setPreTokenizer(preTokenizer);
  trainer.train([trainingFile]);
  const saved = path.join(path.dirname(trainingFile), 'trained.json');
  trainer.save(saved);
  return JSON.parse(fs.readFileSync(saved, 'utf8')).model.merges;
}

/** The first `count` merges whose parts are both available, growing `tokens` with each result. */
function keepMerges(candidates, tokens, count) {
  const kept = [];
  for (const [a, b] of candidates) {
    if (kept.length === count) break;
    if (tokens.has(a) && tokens.has(b) && !tokens.has(a + b)) {
      kept.push([a, b]);
      tokens.add(a + b);
    }
  }
  return kept;
}

function addedToken(id, content, normalized) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized, special: true };
}

function sentencePieceTokenizer() {
  const trained = trainedMerges(metaspacePreTokenizer('▁', 'always', true));
  const alphabet = [...new Set(trained.flat().flatMap((t) => Array.from(t)))].filter((c) => c !== '\n');
  const tokens = new Set(alphabet);
  const merges = keepMerges([['▁', '▁'], ['▁▁', '▁▁'], ...trained], tokens, MERGES_KEPT);
  const vocab = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab['<0x' + b.toString(16).toUpperCase().padStart(2, '0') + '>'] = 3 + b;
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  for (const c of alphabet) vocab[c] = Object.keys(vocab).length;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(0, '<unk>', false), addedToken(1, '<s>', false), addedToken(2, '</s>', false)],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: '▁' },
        { type: 'Replace', pattern: { String: ' ' }, content: '▁' },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges,
    },
  };
}

function byteLevelTokenizer() {
  const trained = trainedMerges(byteLevelPreTokenizer(false, true));
  const alphabet = byteLevelAlphabet().sort((x, y) => x.codePointAt(0) - y.codePointAt(0));
  const merges = keepMerges(trained, new Set(alphabet), MERGES_KEPT);
  const vocab = {};
  for (const c of alphabet) vocab[c] = Object.keys(vocab).length;
  for (const [a, b] of merges) vocab[a + b] = Object.keys(vocab).length;
  const eot = Object.keys(vocab).length;
  vocab['<|endoftext|>'] = eot;
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [addedToken(eot, '<|endoftext|>', true)],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '',
      fuse_unk: false, byte_fallback: false, vocab, merges: merges.map(([a, b]) => a + ' ' + b),
    },
  };
}

const metaspace = (scheme, split) => ({ type: 'Metaspace', replacement: '▁', prepend_scheme: scheme, split });
const template = (single, specials) => ({
  type: 'TemplateProcessing',
  single: single.map((p) => (p === '$A' ? { Sequence: { id: 'A', type_id: 0 } } : { SpecialToken: { id: p, type_id: 0 } })),
  pair: [],
  special_tokens: Object.fromEntries(specials.map(([t, id]) => [t, { id: t, ids: [id], tokens: [t] }])),
});

const SP = 'bpe-sentencepiece-tokenizer.json';
const BL = 'bpe-bytelevel-tokenizer.json';
const files = { [SP]: sentencePieceTokenizer(), [BL]: byteLevelTokenizer() };
const eot = files[BL].model.vocab['<|endoftext|>'];
const variants = [
  { variant: 'sentencepiece', file: SP, overrides: {}, share: 1 },
  // Mistral's newer form: a Metaspace pre-tokenizer that adds "▁" only at the very start of the input.
  { variant: 'sentencepiece-metaspace-first', file: SP, share: 5, overrides: {
    normalizer: null, pre_tokenizer: metaspace('first', false) } },
  { variant: 'sentencepiece-metaspace-always-split-eos', file: SP, share: 5, overrides: {
    normalizer: null, pre_tokenizer: metaspace('always', true), decoder: metaspace('always', true),
    post_processor: template(['<s>', '$A', '</s>'], [['<s>', 1], ['</s>', 2]]) } },
  { variant: 'sentencepiece-unk-fused', file: SP, share: 5, overrides: { 'model.byte_fallback': false } },
  { variant: 'sentencepiece-unk-not-fused', file: SP, share: 5, overrides: { 'model.byte_fallback': false, 'model.fuse_unk': false } },
  { variant: 'bytelevel', file: BL, overrides: {}, share: 1 },
  { variant: 'bytelevel-prefix-space-eos', file: BL, share: 5, overrides: {
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    post_processor: template(['$A', '<|endoftext|>'], [['<|endoftext|>', eot]]) } },
  { variant: 'bytelevel-no-regex', file: BL, share: 5, overrides: {
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false } } },
];

/** Up to `max` code points of `s` without the prompt's fixed opening, cut so as never to split a surrogate pair. */
const cut = (s, max) => Array.from(s.replace(/^Please [^:]*: /, '')).slice(0, max).join('');

const datasetTexts = [];
const boolq = load('boolq', 'test');
for (let i = 0; i < boolq.length && datasetTexts.length < 40; i += 79) datasetTexts.push(cut(boolq[i].instruction, 120));
for (const name of ['gsm8k', 'SVAMP', 'ARC-Easy', 'piqa']) {
  const records = load(name, 'test');
  for (let i = 0; i < 12; i++) datasetTexts.push(cut(records[i * 29].instruction, 120));
  for (const r of records.filter((r) => /[^\x00-\x7f]/.test(r.instruction)).slice(0, 8)) {
    const at = Array.from(r.instruction).findIndex((c) => c.codePointAt(0) > 0x7f);
    datasetTexts.push(Array.from(r.instruction).slice(Math.max(0, at - 30), at + 70).join(''));
  }
}
const edgeTexts = [
  '', ' ', '  ', '\n', '   x', 'x   ', ' leading', 'trailing ', 'multiple   spaces  here', '  two leading, two trailing  ',
  'line one\nline two\n\nthree', 'tabs\tand\r\nCRLF', 'Hello world!', "don't stop: it's, we'll, I'd, they've, you're, I'm",
  "DON'T 'S 's 'll", '中文字符 and 日本語のかな', '한국어 텍스트', 'Привет, мир!', 'مرحبا بالعالم', 'emoji 😀🚀 mixed 👩‍👩‍👧',
  'naïve café résumé', 'e\u0301 o\u0308', 'nbsp\u00a0here\u2028ls\u3000ideo\u0085nel\u000bvt\u000cff', 'a\u0000b\u0007c\u200bd',
  'mixed runs: a \u00a0b c\u00a0 d e \u3000 f g\t\u2003h i \u2028j k  \u0085l m\u00a0\u00a0n', 'x  \n  y \t\n z', 'a\ud800b', '1234567890 3.14159 1,000,000', '$5.00 — «quoted» ¿qué? 100%', '▁ literal meta ▁▁ and ▁x', '<0x41> is not a byte',
  'x'.repeat(300), 'ab '.repeat(60), '          indented ten', 'the the the the', '!!!???...,,,', 'snake_case and kebab-case',
  '<s>', '</s>', '<unk>', '<s>hello</s>', 'a <s> b', '<s><s>', ' <s>', '<s> ', '</s', '<s >', '<S>',
  '<|endoftext|>', 'a<|endoftext|>b', ' <|endoftext|> ', '<|endoftext|><|endoftext|>', '<|endoftext', 'x\n<|endoftext|>\ny',
];
const texts = [...edgeTexts, ...datasetTexts];

function decodeCases(tokenizer, name) {
  const id = (t) => {
    const found = tokenizer.tokenToId(t);
    if (found === null || found === undefined) throw new Error(`${name}: no token ${t}`);
    return found;
  };
  if (name.startsWith('sentencepiece')) {
    return [
      [], ['<0xE4>'], ['<0xE4>', '<0xB8>', '<0xAD>'], ['<0xE4>', '<0xB8>'], ['<0xE4>', '▁the'], ['▁the', '<0xFF>', 't'],
      ['▁▁', '▁the'], ['▁', '▁'], ['<s>', '▁▁', 'e'], ['</s>'], ['<unk>', '▁the', '<unk>'], ['t', '▁▁', '▁'],
    ].map((ts) => ts.map(id));
  }
  return [[], ['ÿ'], ['ä'], ['ä', '¸', '*'], ['Ġthe', 'ÿ', 't'], ['<|endoftext|>'], ['Ġ', 'Ġ', 'Ċ'], ['e', '<|endoftext|>', 'Ġthe']]
    .map((ts) => ts.map(id));
}

function applyOverrides(base, overrides) {
  const copy = JSON.parse(JSON.stringify(base));
  for (const [key, value] of Object.entries(overrides)) {
    const parts = key.split('.');
    let node = copy;
    for (const p of parts.slice(0, -1)) node = node[p];
    node[parts[parts.length - 1]] = value;
  }
  return copy;
}

/** Leaves out decoded texts equal to the input, to keep the file small. */
function withDecoded(line, text, decoded, decodedSkippingSpecial) {
  if (decoded !== text) line.decoded = decoded;
  if (decodedSkippingSpecial !== text) line.decodedSkippingSpecial = decodedSkippingSpecial;
  return line;
}

const hasSpecial = (text) => /<s>|<\/s>|<unk>|<\|endoftext\|>/.test(text);

(async () => {
  // Written through the library, so the committed file is its own serialization.
  Tokenizer.fromString(JSON.stringify(files[SP])).save(path.join(outDir, SP), true);
  fs.writeFileSync(path.join(outDir, BL), JSON.stringify(files[BL], null, 1) + '\n');

  const lines = [];
  for (const { variant, file, overrides, share } of variants) {
    lines.push(JSON.stringify({ variant, file, overrides }));
    const base = JSON.parse(fs.readFileSync(path.join(outDir, file), 'utf8'));
    const tokenizer = Tokenizer.fromString(JSON.stringify(applyOverrides(base, overrides)));
    const chosen = texts.filter((t, i) => i < edgeTexts.length || (i - edgeTexts.length) % share === 0);
    for (let i = 0; i < chosen.length; i++) {
      const text = chosen[i];
      const ids = (await tokenizer.encode(text)).getIds();
      const line = { variant, text, ids };
      if (i % 4 === 0 || hasSpecial(text)) {
        line.plain = (await tokenizer.encode(text, null, { addSpecialTokens: false })).getIds();
      }
      lines.push(JSON.stringify(withDecoded(line, text, await tokenizer.decode(ids, false), await tokenizer.decode(ids, true))));
    }
    for (const ids of decodeCases(tokenizer, variant)) {
      const line = { variant, decodeIds: ids };
      lines.push(JSON.stringify(withDecoded(line, null, await tokenizer.decode(ids, false), await tokenizer.decode(ids, true))));
    }
  }
  fs.writeFileSync(path.join(outDir, 'bpe-golden.jsonl'), lines.join('\n') + '\n');
})();
