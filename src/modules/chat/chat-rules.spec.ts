import {
  decodeMessageCursor,
  encodeMessageCursor,
  isAccountThreadMember,
  messageBody,
  parseThreadFields,
  projectThread,
  threadScope,
} from './chat-rules';

describe('chat rules', () => {
  it('stores the body trimmed, 1..4000 characters (code points)', () => {
    expect(messageBody('  hi \n', 0)).toBe('hi');
    expect(messageBody('😀'.repeat(4000), 0)).toHaveLength(8000);
    expect(() => messageBody('😀'.repeat(4001), 0)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    expect(() => messageBody(' '.repeat(5) + 'a'.repeat(4001), 0)).toThrow();
  });

  it('allows an empty body only with attachments', () => {
    expect(() => messageBody('   ', 0)).toThrow(
      expect.objectContaining({ details: [expect.objectContaining({ path: 'body' })] }),
    );
    expect(messageBody('   ', 1)).toBe('');
  });

  it('puts every role but DRIVER in trip threads and ledger roles in account threads', () => {
    const scope = threadScope(
      [
        { orgId: 'o1', role: 'OWNER' },
        { orgId: 'o2', role: 'STAFF' },
        { orgId: 'o3', role: 'ACCOUNTANT' },
        { orgId: 'o4', role: 'DRIVER' },
      ],
      ['d1'],
    );
    expect(scope).toEqual({ tripOrgIds: ['o1', 'o2', 'o3'], driverIds: ['d1'], accountOrgIds: ['o1', 'o3'] });
    expect(isAccountThreadMember(['STAFF', 'DRIVER'])).toBe(false);
    expect(isAccountThreadMember(['STAFF', 'ACCOUNTANT'])).toBe(true);
  });

  it('selects thread fields, refusing unknown ones', () => {
    expect(parseThreadFields(undefined)).toBeNull();
    expect(parseThreadFields('id, unreadCount')).toEqual(['id', 'unreadCount']);
    expect(() => parseThreadFields('id,nope')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    const t = {
      id: '1',
      tripId: null,
      accountId: 'a',
      title: null,
      unreadCount: 2,
      lastMessageAt: null,
      createdAt: 'x',
    };
    expect(projectThread(t, ['id', 'unreadCount'])).toEqual({ id: '1', unreadCount: 2 });
    expect(projectThread(t, null)).toBe(t);
  });

  it('round-trips the message cursor and refuses a tampered one', () => {
    expect(decodeMessageCursor(encodeMessageCursor('12345'))).toBe('12345');
    for (const bad of [
      '',
      'xyz',
      Buffer.from('m0').toString('base64url'),
      Buffer.from('m1;drop').toString('base64url'),
    ])
      expect(() => decodeMessageCursor(bad)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
  });
});
