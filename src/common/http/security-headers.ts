import helmet from '@fastify/helmet';
import Fastify from 'fastify';

/**
 * The headers @fastify/helmet's defaults set, worked out once: helmet builds
 * them anew on every request (its CSP directives parsed each time, a dozen
 * middlewares run), though with the defaults (no nonces) they never differ.
 * Read by answering one request on a bare Fastify with the plugin registered,
 * so the set is helmet's own, whatever its version.
 */
export async function helmetDefaultHeaders(): Promise<Record<string, string>> {
  const probe = Fastify();
  probe.get('/', async () => '');
  const plain = Fastify();
  plain.get('/', async () => '');
  await probe.register(helmet);
  const [withHelmet, without] = await Promise.all([probe.inject('/'), plain.inject('/')]);
  await Promise.all([probe.close(), plain.close()]);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(withHelmet.headers)) {
    if (value === undefined || name in without.headers) continue;
    headers[name] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return headers;
}
