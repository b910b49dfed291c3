import { checkWebhookUrl, isPublicAddress, unmapIPv4 } from './webhook-address';

describe('isPublicAddress', () => {
  it.each([
    '127.0.0.1',
    '10.0.0.5',
    '172.16.3.4',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::',
    '::1',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '64:ff9b::a00:1',
    '2002:a00:1::',
    'ff02::1',
    'not an ip',
  ])('refuses %s', (ip) => expect(isPublicAddress(ip)).toBe(false));

  it.each(['8.8.8.8', '1.1.1.1', '2001:4860:4860::8888', '::ffff:8.8.8.8', '[2606:4700::1111]'])('accepts %s', (ip) =>
    expect(isPublicAddress(ip)).toBe(true),
  );

  it('reads an IPv4-mapped IPv6 address as its IPv4 address', () => {
    expect(unmapIPv4('::ffff:7f00:1')).toBe('127.0.0.1');
    expect(unmapIPv4('::ffff:192.168.0.1')).toBe('192.168.0.1');
    expect(unmapIPv4('2001:db8::1')).toBe('2001:db8::1');
  });
});

describe('checkWebhookUrl', () => {
  it('accepts an https URL with a name', () => {
    const r = checkWebhookUrl('https://hooks.example.com/in?x=1', false);
    expect(r.ok && r.literalIp).toBeNull();
  });
  it.each(['ftp://example.com', 'example.com/hook', '/relative', 'javascript:alert(1)', 'https://u:p@example.com/'])(
    'refuses %s',
    (url) => expect(checkWebhookUrl(url, false).ok).toBe(false),
  );
  it('refuses private literals and localhost unless allowed', () => {
    for (const url of ['http://127.0.0.1:8080/', 'http://[::1]/', 'http://localhost/', 'http://0x7f000001/']) {
      expect(checkWebhookUrl(url, false).ok).toBe(false);
      expect(checkWebhookUrl(url, true).ok).toBe(true);
    }
  });
});
