// Measures the gateway's local count_tokens rule (internal/anthropic/count.go,
// textTokens, ported here line for line) against real tokenizers, offline:
//   node anthropic-count-measure.mjs
// @anthropic-ai/tokenizer is Anthropic's published (Claude 2 era) tokenizer;
// gpt-tokenizer gives o200k_base (GPT-4o/4.1/5) and cl100k_base.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { countTokens as claude } from '@anthropic-ai/tokenizer';
import { encode as o200k } from 'gpt-tokenizer/encoding/o200k_base';
import { encode as cl100k } from 'gpt-tokenizer/encoding/cl100k_base';

function local(s) {
  let t = 0; const re = /([A-Za-z0-9]+)|([ ]+)|([\t\n\r]+)|([\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]+)|([^\x00-\x7f])/gu;
  let m;
  while ((m = re.exec(s))) {
    if (m[1]) {
      const w = m[1]; let digits=0, changes=0;
      for (let i=0;i<w.length;i++){ const c=w[i]; if (c>='0'&&c<='9') digits++; if (i>0){ const up=c>='A'&&c<='Z', pu=w[i-1]>='A'&&w[i-1]<='Z'; if(up!==pu) changes++; } }
      if (digits===w.length) t += Math.ceil(w.length/2);
      else if (digits>0 || changes>2) t += Math.ceil(w.length*3/4);
      else t += Math.ceil(w.length/4) + (changes>0?1:0);
    }
    else if (m[2]) t += m[2].length === 1 ? 0 : Math.ceil(m[2].length / 3);
    else if (m[3]) t += m[3].length;
    else if (m[4]) t += Math.ceil(m[4].length / 1.5);
    else if (m[5]) t += 1.2;
  }
  return Math.ceil(t);
}
const root = new URL('../..', import.meta.url).pathname;
const samples = {
  'English prose (README.md)': readFileSync(join(root, 'README.md'), 'utf8'),
  'Go source (internal/anthropic/*.go)': readdirSync(join(root, 'internal/anthropic')).filter((f) => f.endsWith('.go'))
    .map((f) => readFileSync(join(root, 'internal/anthropic', f), 'utf8')).join('\n'),
  'JSON (testdata request)': readFileSync(join(root, 'internal/anthropic/testdata/request/claude_code.json'), 'utf8'),
  'Chinese prose': '网关把每一次调用的令牌和费用都记录下来，并在仪表盘上显示钱花在哪里。'.repeat(40),
  'digits and punctuation': Array.from({ length: 400 }, (_, i) => `${i * 7919 % 100003}:{[${i}]};`).join(' '),
  'go.sum (base64 hashes, first 20000 chars)': readFileSync(join(root, 'go.sum'), 'utf8').slice(0, 20000),
  'package-lock.json': readFileSync(join(root, 'e2e/node/package-lock.json'), 'utf8'),
  'hex / base64 noise': Array.from({ length: 300 }, (_, i) => ((i * 2654435761) >>> 0).toString(16) + ((i * 40503) >>> 0).toString(36)).join(''),
};
console.log('| sample | chars | local | claude (anthropic tokenizer) | o200k | cl100k | local / max |');
console.log('|---|---|---|---|---|---|---|');
for (const [name, s] of Object.entries(samples)) {
  const l = local(s), c = claude(s), o = o200k(s).length, k = cl100k(s).length;
  const m = Math.max(c, o, k);
  console.log(`| ${name} | ${[...s].length} | ${l} | ${c} | ${o} | ${k} | ${(l / m).toFixed(2)} |`);
}
