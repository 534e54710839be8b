/**
 * stepErrorOfUnknown (activities/next-turn.ts): a folded turn's failure is returned as a step
 * error, not thrown, so the failure interceptor never mends it; its message (often a provider's
 * own error text, JSON-decoded) must come out well-formed, whatever was thrown.
 */
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { stepErrorOfUnknown } from '../../activities/next-turn';
import { ModelError } from '../../errors';

const bad = 'provider said \uD800 and \uDC00\uD800';
const mended = 'provider said \uFFFD and \uFFFD\uFFFD';

describe('stepErrorOfUnknown', () => {
  it.each([
    ['a Warden error', new ModelError('ERR_MODEL_PROTOCOL', bad), 'ERR_MODEL_PROTOCOL'],
    ['an ApplicationFailure', ApplicationFailure.create({ message: bad, type: 'ERR_MODEL_UNAVAILABLE' }), 'ERR_MODEL_UNAVAILABLE'],
    ['a plain Error', new Error(bad), 'ERR_UNKNOWN'],
    ['a thrown string', bad, 'ERR_UNKNOWN'],
  ])('makes the message of %s well-formed, keeping its code', (_label, error, code) => {
    expect(stepErrorOfUnknown(error)).toEqual({ code, message: mended });
  });
});
