// Regenerates minilm-golden.jsonl: ids from the Hugging Face `tokenizers` library itself (its Node
// binding, the Rust implementation), the independent reference WordPieceTokenizerTest compares against.
//
//   npm install --prefix /tmp/tokref tokenizers@0.23.2
//   NODE_PATH=/tmp/tokref/node_modules node make_golden.js \
//       /path/to/all-minilm-l6-v2-tokenizer.json /work/shared/data/llm-adapters/dataset > minilm-golden.jsonl
//
// Inputs: boolq/test.json instructions (every 16th, 120 of them), the first 10 instructions holding
// non-ASCII text from five other LLM-Adapters test sets, hand-written edge cases, and boolq
// (instruction, output) pairs at several maxLengths, some swapped so the longer side varies.
// Each line is {"text", "maxLength", "ids"} or {"first", "second", "maxLength", "ids", "typeIds"}.
const fs = require('fs');
const path = require('path');
const { Tokenizer } = require('tokenizers');

const [tokenizerFile, datasetDir] = process.argv.slice(2);
const load = (name) => JSON.parse(fs.readFileSync(path.join(datasetDir, name, 'test.json'), 'utf8'));

const boolq = load('boolq');
const singles = [];
for (let i = 0; i < boolq.length && singles.length < 120; i += 16) singles.push(boolq[i].instruction);
for (const name of ['gsm8k', 'mathqa', 'AQuA', 'ARC-Easy', 'piqa']) {
  singles.push(...load(name).map((r) => r.instruction).filter((s) => /[^\x00-\x7f]/.test(s)).slice(0, 10));
}
singles.push(
  'Hello world!', 'Héllo WORLD', "don't stop", '中文字符 and 日本語のかな', '한국어 텍스트', 'Ελληνικά ΟΔΟΣ ΣΑΣ σας',
  'Привет, мир!', 'مرحبا بالعالم', 'naïve café résumé Øresund Straße ẞ', 'ﬁne ﬂow', 'İstanbul ǅungla',
  'a\u0000b\u0007c\u200bd\ufeffe\ue000f\ufffdg', 'tab\tnew\nline\rcr\u00a0nbsp\u2028ls\u3000ideo',
  '\u0085nel\u000bvt\u001cfs', 'emoji 😀🚀 mixed', 'x'.repeat(100), 'x'.repeat(101), 'é'.repeat(101), 'unaffable',
  'hello [MASK] world[SEP]x [mask] [CLS][PAD]', '[UNK]', '', '   ', '$5.00 — «quoted» ¿qué? 1,234.5%',
  'a\u{2B820}b\u{2B920}c\u{20000}d', 'ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ', 'e\u0301 o\u0308', 'under_score hyphen-ated', 'a\ud800b',
);

const pairs = [];
const pairLengths = [512, 64, 32, 24, 16, 12, 9, 8, 5, 3];
for (let i = 0; i < 40; i++) {
  const r = boolq[i * 41];
  const [first, second] = i % 2 === 0 ? [r.instruction, r.output] : [r.output, r.instruction];
  pairs.push([first, second, pairLengths[i % pairLengths.length]]);
}
pairs.push(['', 'hello', 8], ['hello world', '', 3], ['a b c d', 'e f g h', 8], ['a b c d e f', 'g h', 7], ['a b c d e f', 'g h i j', 10]);

(async () => {
  const tokenizer = Tokenizer.fromFile(tokenizerFile);
  tokenizer.disablePadding();
  const lines = [];
  for (let i = 0; i < singles.length; i++) {
    const maxLength = [512, 512, 512, 32, 16][i % 5];
    tokenizer.setTruncation(maxLength);
    const e = await tokenizer.encode(singles[i]);
    lines.push(JSON.stringify({ text: singles[i], maxLength, ids: e.getIds() }));
  }
  for (const [first, second, maxLength] of pairs) {
    tokenizer.setTruncation(maxLength);
    const e = await tokenizer.encode(first, second);
    lines.push(JSON.stringify({ first, second, maxLength, ids: e.getIds(), typeIds: e.getTypeIds() }));
  }
  process.stdout.write(lines.join('\n') + '\n');
})();
