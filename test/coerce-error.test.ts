// coerceError (src/coerce-error.ts): whatever was thrown becomes an Error
// that says what it was, and turning it into one never throws. No database.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { coerceError } from '../src/coerce-error.js';

it('keeps an Error as it is and turns anything else into an Error saying what was thrown, without ever throwing', () => {
  const e = new TypeError('boom');
  assert.equal(coerceError(e), e);
  assert.equal(coerceError('plain text').message, 'non-error thrown: plain text');
  assert.equal(coerceError({ code: 'X1' }).message, 'non-error thrown: {"code":"X1"}');
  assert.equal(coerceError(undefined).message, 'non-error thrown: undefined');
  assert.equal(coerceError(42).message, 'non-error thrown: 42');
  const circular: Record<string, unknown> = {};
  circular['self'] = circular;
  assert.equal(coerceError(circular).message, 'non-error thrown: [object Object]');
  const hostile = { toJSON() { throw new Error('no'); } };
  assert.equal(coerceError(hostile).message, 'non-error thrown: [object Object]');
  assert.equal(coerceError(Symbol('s')).message, 'non-error thrown: Symbol(s)');
  assert.ok(coerceError('x'.repeat(5_000)).message.length <= 1_000);
});
