// The official Anthropic SDK and Claude Code through tollgate, against the
// fake upstream. Run by run-anthropic.sh, which sets:
//   TOLLGATE_URL                gateway root, e.g. http://127.0.0.1:3000
//   TOLLGATE_KEY                a gateway key
//   TOLLGATE_MODEL              a model served by an OpenAI-compatible upstream (translated)
//   TOLLGATE_PASSTHROUGH_MODEL  a model served by an `api: anthropic` upstream ("" skips)
//   CLAUDE_BIN                  the Claude Code binary ("" skips)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Anthropic from '@anthropic-ai/sdk';

const url = process.env.TOLLGATE_URL;
const key = process.env.TOLLGATE_KEY;
if (!url || !key) {
  throw new Error('set TOLLGATE_URL and TOLLGATE_KEY (run-anthropic.sh does)');
}
const modes = [['translated', process.env.TOLLGATE_MODEL || 'gpt-4o']];
if (process.env.TOLLGATE_PASSTHROUGH_MODEL) {
  modes.push(['passthrough', process.env.TOLLGATE_PASSTHROUGH_MODEL]);
} else {
  test('passthrough', { skip: 'no api: anthropic upstream in this build (TOLLGATE_PASSTHROUGH_MODEL unset)' }, () => {});
}

const client = new Anthropic({ apiKey: key, baseURL: url, maxRetries: 0 });
const weather = {
  name: 'get_weather',
  description: 'Weather for a city',
  input_schema: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

for (const [mode, model] of modes) {
  test(`${mode}: non-stream and stream agree`, async () => {
    const req = { model, max_tokens: 100, messages: [{ role: 'user', content: 'hello world' }] };
    const whole = await client.messages.create(req);
    assert.equal(whole.type, 'message');
    assert.equal(whole.role, 'assistant');
    assert.equal(whole.stop_reason, 'end_turn');
    assert.match(whole.content[0].text, /^echo: hello world/);
    assert.ok(whole.usage.input_tokens > 0, 'input_tokens');
    assert.ok(whole.usage.output_tokens > 0, 'output_tokens');

    const seen = [];
    const stream = client.messages.stream(req);
    stream.on('streamEvent', (e) => seen.push(e.type));
    const streamed = await stream.finalMessage();
    assert.equal(seen[0], 'message_start');
    assert.equal(seen.at(-1), 'message_stop');
    assert.equal(streamed.content[0].text, whole.content[0].text);
    assert.equal(streamed.stop_reason, whole.stop_reason);
    assert.deepEqual(
      [streamed.usage.input_tokens, streamed.usage.output_tokens],
      [whole.usage.input_tokens, whole.usage.output_tokens],
    );
  });

  test(`${mode}: streamed tool use, then the tool result`, async () => {
    const first = await client.messages
      .stream({ model, max_tokens: 200, tools: [weather], messages: [{ role: 'user', content: 'Paris' }] })
      .finalMessage();
    assert.equal(first.stop_reason, 'tool_use');
    const call = first.content.find((b) => b.type === 'tool_use');
    assert.ok(call, JSON.stringify(first.content));
    assert.equal(call.name, 'get_weather');
    assert.deepEqual(call.input, { input: 'Paris' });

    const second = await client.messages.create({
      model,
      max_tokens: 200,
      tools: [weather],
      messages: [
        { role: 'user', content: 'Paris' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: 'sunny' }] },
      ],
    });
    assert.equal(second.stop_reason, 'end_turn');
    assert.equal(second.content[0].type, 'text');
  });

  test(`${mode}: upstream errors in Anthropic's shape`, async () => {
    await assert.rejects(
      client.messages.create(
        { model, max_tokens: 10, messages: [{ role: 'user', content: 'x' }] },
        { headers: { 'X-Fake-Status': '429', 'X-Fake-Retry-After': '0' } },
      ),
      (err) => {
        assert.ok(err instanceof Anthropic.RateLimitError, String(err));
        assert.equal(err.error?.type, 'error');
        assert.equal(err.error?.error?.type, 'rate_limit_error');
        return true;
      },
    );
  });
}

test('translated: a tool name OpenAI rejects comes back as sent', async () => {
  const name = 'mcp__server.with.dots__' + 'x'.repeat(60);
  const msg = await client.messages
    .stream({
      model: modes[0][1],
      max_tokens: 100,
      tools: [{ ...weather, name }],
      tool_choice: { type: 'tool', name },
      messages: [{ role: 'user', content: 'go' }],
    })
    .finalMessage();
  assert.equal(msg.content.find((b) => b.type === 'tool_use')?.name, name);
});

test('gateway refusals in Anthropic shape', async () => {
  const bad = new Anthropic({ apiKey: 'tg-not-a-key', baseURL: url, maxRetries: 0 });
  await assert.rejects(bad.messages.create({ model: modes[0][1], max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }), (err) => {
    assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
    assert.equal(err.error?.error?.type, 'authentication_error');
    return true;
  });
  await assert.rejects(client.messages.create({ model: modes[0][1], messages: [{ role: 'user', content: 'x' }] }), (err) => {
    assert.ok(err instanceof Anthropic.BadRequestError, String(err));
    assert.equal(err.error?.error?.type, 'invalid_request_error');
    return true;
  });
});

test('the key as Authorization: Bearer works too', async () => {
  const bearer = new Anthropic({ authToken: key, apiKey: null, baseURL: url, maxRetries: 0 });
  const msg = await bearer.messages.create({ model: modes[0][1], max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(msg.type, 'message');
});

test('count_tokens', async (t) => {
  let res;
  try {
    res = await client.messages.countTokens({ model: modes[0][1], messages: [{ role: 'user', content: 'hello world' }] });
  } catch (err) {
    if (err.status === 404) {
      t.skip('count_tokens is not answered locally by this engine build yet (proxy.LocalAnswer)');
      return;
    }
    throw err;
  }
  assert.ok(res.input_tokens >= 4, JSON.stringify(res));
});

test('Claude Code headless', { skip: process.env.CLAUDE_BIN ? false : 'CLAUDE_BIN unset (Claude Code not installed)', timeout: 120_000 }, () => {
  for (const [mode, model] of modes) {
    const home = mkdtempSync(join(tmpdir(), 'claude-home-'));
    const r = spawnSync(process.env.CLAUDE_BIN, ['-p', 'say hello', '--output-format', 'json', '--max-turns', '4'], {
      cwd: home,
      encoding: 'utf8',
      timeout: 100_000,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        ANTHROPIC_BASE_URL: url,
        ANTHROPIC_API_KEY: key,
        ANTHROPIC_MODEL: model,
        ANTHROPIC_DEFAULT_HAIKU_MODEL: model,
        ANTHROPIC_SMALL_FAST_MODEL: model,
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        DISABLE_ERROR_REPORTING: '1',
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      },
    });
    assert.equal(r.status, 0, `${mode}: claude exited ${r.status}: ${r.stderr}\n${r.stdout}`);
    const out = JSON.parse(r.stdout);
    assert.equal(out.is_error, false, r.stdout);
    assert.match(out.result, /^echo: /);
    assert.ok(out.usage.input_tokens + out.usage.cache_read_input_tokens > 0, r.stdout);
    assert.ok(out.usage.output_tokens > 0, r.stdout);
  }
});
