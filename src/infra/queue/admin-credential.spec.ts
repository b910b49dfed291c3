import { adminCredential } from './admin-credential';

describe('adminCredential', () => {
  const basic = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;

  it('reads a bearer token', () => {
    expect(adminCredential('Bearer abc.def')).toBe('abc.def');
    expect(adminCredential('bearer  abc')).toBe('abc');
  });

  it('reads the password of basic authentication, whatever the user name', () => {
    expect(adminCredential(basic('ops:s3cret:with:colons'))).toBe('s3cret:with:colons');
    expect(adminCredential(basic(':only-password'))).toBe('only-password');
  });

  it('finds none in anything else', () => {
    expect(adminCredential(undefined)).toBeUndefined();
    expect(adminCredential('')).toBeUndefined();
    expect(adminCredential(basic('no-colon'))).toBeUndefined();
    expect(adminCredential('Token abc')).toBeUndefined();
    expect(adminCredential('Bearer a b')).toBeUndefined();
  });
});
