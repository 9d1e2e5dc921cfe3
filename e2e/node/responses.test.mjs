// The official OpenAI Node SDK's responses.create, plain and streamed, with
// function calls, through tollgate in front of a fake upstream that speaks
// only chat completions. Run by run-responses.sh (or with TOLLGATE_URL and
// TOLLGATE_KEY pointing at a running gateway).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';

const baseURL = (process.env.TOLLGATE_URL ?? 'http://127.0.0.1:3000') + '/v1';
const client = new OpenAI({ baseURL, apiKey: process.env.TOLLGATE_KEY ?? 'unused', maxRetries: 0 });
const model = process.env.TOLLGATE_MODEL ?? 'gpt-4o';
const tools = [{
  type: 'function', name: 'get_weather', description: 'Weather of a city', strict: false,
  parameters: { type: 'object', properties: { input: { type: 'string' } } },
}];

test('responses.create with a function call, then its result', async () => {
  const first = await client.responses.create({ model, input: 'weather in Oslo?', tools, store: false });
  assert.equal(first.status, 'completed');
  assert.match(first.id, /^resp_/);
  const call = first.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(first.output));
  assert.equal(call.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.arguments), { input: 'weather in Oslo?' });
  assert.ok(first.usage.input_tokens > 0);
  assert.equal(typeof first.usage.input_tokens_details.cached_tokens, 'number');
  assert.equal(typeof first.usage.output_tokens_details.reasoning_tokens, 'number');

  const second = await client.responses.create({
    model, store: false,
    input: [
      { role: 'user', content: 'weather in Oslo?' },
      { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
      { type: 'function_call_output', call_id: call.call_id, output: 'sunny' },
    ],
  });
  assert.equal(second.output_text, 'echo: weather in Oslo?');
});

test('responses.create streamed: text deltas and a final response.completed', async () => {
  const stream = await client.responses.create({ model, input: 'stream me', stream: true, store: false });
  const types = [];
  let text = '';
  let final;
  for await (const ev of stream) {
    types.push(ev.type);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed') final = ev.response;
  }
  assert.equal(types[0], 'response.created');
  assert.equal(types.at(-1), 'response.completed');
  assert.match(text, /^echo: stream me( ok)*$/); // the fake pads short replies with " ok"
  assert.ok(types.includes('response.output_text.done'));
  assert.equal(final.output[0].content[0].text, text);
  assert.ok(final.usage.output_tokens > 0);
});

test('responses.stream helper with a function call assembles the arguments', async () => {
  const stream = client.responses.stream({ model, input: 'call the tool', tools, store: false });
  let args = '';
  stream.on('response.function_call_arguments.delta', (ev) => { args += ev.delta; });
  const final = await stream.finalResponse();
  const call = final.output.find((o) => o.type === 'function_call');
  assert.equal(call.arguments, args);
  assert.deepEqual(JSON.parse(args), { input: 'call the tool' });
});

test('store:true is refused with a 400 naming the parameter', async () => {
  await assert.rejects(client.responses.create({ model, input: 'x', store: true }), (err) => {
    assert.equal(err.status, 400);
    assert.equal(err.param, 'store');
    return true;
  });
});
