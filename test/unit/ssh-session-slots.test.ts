/** The SSH session waiting room on its own: no sshd needed. */
import { describe, expect, it } from 'vitest';
import { SessionSlots } from '../../src/nodes/ssh/sessionSlots.js';

const never = () => new Error('timed out');

describe('SessionSlots', () => {
  it('grants up to the limit at once, then queues in order, waking one waiter per release', async () => {
    const slots = new SessionSlots(2);
    const a = await slots.acquire(1000, never);
    const b = await slots.acquire(1000, never);
    expect(slots.inUse).toBe(2);
    const order: string[] = [];
    const c = slots.acquire(1000, never).then((s) => {
      order.push('c');
      return s;
    });
    const d = slots.acquire(1000, never).then((s) => {
      order.push('d');
      return s;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual([]);
    a.release();
    const granted = await c;
    expect(order).toEqual(['c']);
    b.release();
    await d;
    expect(order).toEqual(['c', 'd']);
    granted.release();
    granted.release(); // a second release is a no-op
    expect(slots.inUse).toBe(1);
  });

  it('times a waiter out with the error it was given, and forgets it', async () => {
    const slots = new SessionSlots(1);
    const held = await slots.acquire(1000, never);
    await expect(slots.acquire(20, () => new Error('no slot in 20 ms'))).rejects.toThrow('no slot in 20 ms');
    held.release();
    const next = await slots.acquire(20, never);
    expect(slots.inUse).toBe(1);
    next.release();
  });

  it('shrinks to the number of established channels when the server refuses one, and says so', async () => {
    const shrunk: number[] = [];
    const slots = new SessionSlots(10, (limit) => shrunk.push(limit));
    const open = await Promise.all([0, 1, 2].map(() => slots.acquire(1000, never)));
    for (const s of open) s.opened();
    const refused = await slots.acquire(1000, never);
    refused.release(); // the open failed
    expect(slots.shrink()).toBe(true);
    expect(shrunk).toEqual([3]);
    // Now a fourth waits until one of the three closes.
    let fourth = false;
    const waiting = slots.acquire(1000, never).then((s) => {
      fourth = true;
      return s;
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(fourth).toBe(false);
    open[0]?.release();
    await waiting;
    expect(fourth).toBe(true);
  });

  it('does not shrink when no channel is open (waiting would not help), and fails everyone on close', async () => {
    const slots = new SessionSlots(1);
    expect(slots.shrink()).toBe(false);
    const held = await slots.acquire(1000, never);
    const waiter = slots.acquire(1000, never);
    slots.failAll(new Error('connection closed'));
    await expect(waiter).rejects.toThrow('connection closed');
    await expect(slots.acquire(1000, never)).rejects.toThrow('connection closed');
    held.release();
  });
});
