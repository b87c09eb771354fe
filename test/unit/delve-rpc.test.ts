import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { DelveClient, JsonStreamSplitter } from '../../src/delve/rpcClient.js';

describe('JsonStreamSplitter', () => {
  it('splits values regardless of newlines and chunk boundaries', () => {
    const s = new JsonStreamSplitter();
    expect(s.push('{"id":1,"result":{}}{"id":2,')).toEqual(['{"id":1,"result":{}}']);
    expect(s.push('"result":{"a":"}{\\"x"}}\n{"id"')).toEqual(['{"id":2,"result":{"a":"}{\\"x"}}']);
    expect(s.push(':3}')).toEqual(['{"id":3}']);
    expect(s.pendingLength).toBe(0);
  });

  it('keeps multi-byte characters split across chunks intact', () => {
    const s = new JsonStreamSplitter();
    const bytes = Buffer.from('{"v":"é€"}');
    expect(s.push(bytes.subarray(0, 7))).toEqual([]);
    expect(s.push(bytes.subarray(7))).toEqual(['{"v":"é€"}']);
  });

  it('rejects garbage between values', () => {
    expect(() => new JsonStreamSplitter().push('HTTP/1.1 400')).toThrow(/unexpected 'H'/);
  });
});

/** A fake dlv: sees the client's requests and answers whatever the test says. */
function fakeDelve() {
  const toServer = new PassThrough();
  const toClient = new PassThrough();
  const clientSide = Duplex.from({ readable: toClient, writable: toServer });
  const requests: { method: string; params: unknown[]; id: number }[] = [];
  const waiters: (() => void)[] = [];
  const splitter = new JsonStreamSplitter();
  toServer.on('data', (chunk: Buffer) => {
    for (const text of splitter.push(chunk)) {
      requests.push(JSON.parse(text));
      for (const w of waiters.splice(0)) w();
    }
  });
  return {
    clientSide,
    requests,
    async nextRequest(n: number) {
      while (requests.length < n) await new Promise<void>((r) => waiters.push(r));
      return requests[n - 1]!;
    },
    answer(id: number, result: unknown, error: string | null = null) {
      // Split the answer in two writes to exercise the streaming parser.
      const text = JSON.stringify({ id, result, error });
      toClient.write(text.slice(0, 5));
      toClient.write(`${text.slice(5)}\n`);
    },
    close() {
      toClient.end();
    },
  };
}

describe('DelveClient', () => {
  it('sends JSON-RPC 1.0 requests with params in a one-element array', async () => {
    const dlv = fakeDelve();
    const client = new DelveClient(dlv.clientSide);
    const pending = client.listFunctions('^main\\.');
    const req = await dlv.nextRequest(1);
    expect(req).toEqual({ method: 'RPCServer.ListFunctions', params: [{ Filter: '^main\\.' }], id: 1 });
    dlv.answer(1, { Funcs: ['main.main'] });
    expect(await pending).toEqual(['main.main']);
  });

  it('matches answers by id, so a halt can overtake an outstanding continue', async () => {
    const dlv = fakeDelve();
    const client = new DelveClient(dlv.clientSide);
    const controller = new AbortController();
    const cont = client.continue({ signal: controller.signal });
    const c = await dlv.nextRequest(1);
    expect(c.params).toEqual([{ name: 'continue' }]);
    expect(client.running).toBe(true);
    // Anything needing the target lock is refused while running (it would wedge Delve's read loop).
    await expect(client.listBreakpoints()).rejects.toThrow(/while the target is running/);
    controller.abort();
    const h = await dlv.nextRequest(2);
    expect(h.params).toEqual([{ name: 'halt' }]);
    dlv.answer(h.id, { State: { Running: false } });
    dlv.answer(c.id, { State: { Running: false, Threads: [] } });
    const result = await cont;
    expect(result).toMatchObject({ halted: true, haltReason: 'abort' });
    expect(client.running).toBe(false);
  });

  it('halts when a continue exceeds its timeout', async () => {
    const dlv = fakeDelve();
    const client = new DelveClient(dlv.clientSide);
    const cont = client.continue({ timeoutMs: 20 });
    const h = await dlv.nextRequest(2);
    expect(h.params).toEqual([{ name: 'halt' }]);
    dlv.answer(h.id, { State: {} });
    dlv.answer(1, { State: { Running: false } });
    expect(await cont).toMatchObject({ halted: true, haltReason: 'timeout' });
  });

  it("turns Delve's errors into delve errors with hints", async () => {
    const dlv = fakeDelve();
    const client = new DelveClient(dlv.clientSide);
    const pending = client.createBreakpoint({ functionName: 'x.Y' });
    dlv.answer((await dlv.nextRequest(1)).id, null, 'could not find function x.Y\n');
    const error = await pending.catch((e: unknown) => e);
    expect(error).toMatchObject({ kind: 'delve', message: expect.stringMatching(/could not find function/) });
    expect((error as { hint?: string }).hint).toMatch(/sets check/);
  });

  it('times out a call that gets no answer, and ignores the late answer', async () => {
    const dlv = fakeDelve();
    const client = new DelveClient(dlv.clientSide, { timeoutMs: 20 });
    await expect(client.getVersion()).rejects.toThrow(/did not answer RPCServer\.GetVersion within 20 ms/);
    dlv.answer(1, { APIVersion: 2 });
    const next = client.getVersion();
    dlv.answer((await dlv.nextRequest(2)).id, { APIVersion: 2 });
    expect((await next).APIVersion).toBe(2);
  });

  it('rejects outstanding and later calls when the stream closes', async () => {
    const dlv = fakeDelve();
    const client = new DelveClient(dlv.clientSide, { endpoint: 'test' });
    const pending = client.state();
    await dlv.nextRequest(1);
    dlv.close();
    await expect(pending).rejects.toThrow(/Delve \(test\) closed the connection/);
    await expect(client.getVersion()).rejects.toThrow(/closed the connection/);
    expect(client.closed).toBe(true);
  });

  it('treats the connection closing after Detach as success', async () => {
    const dlv = fakeDelve();
    const client = new DelveClient(dlv.clientSide);
    const pending = client.detach(false);
    const req = await dlv.nextRequest(1);
    expect(req.params).toEqual([{ Kill: false }]);
    dlv.close();
    await expect(pending).resolves.toBeUndefined();
  });
});
