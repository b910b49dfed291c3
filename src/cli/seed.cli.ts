import { PrismaPg } from '@prisma/adapter-pg';
import { newTrackerToken } from '../common/auth/tracker-token';
import { PrismaClient } from '../generated/prisma/client';
import { PasswordHasher } from '../modules/auth/password-hasher';
import { loadConfig } from '../infra/config/config';
import { parseFlags } from './cli-args';
import { seedBulk } from './seed-bulk';

/**
 * Demo data for a development database. Without flags: two trading orgs with
 * an owner each (password `waybill-demo`), a truck and a driver. With
 * `--orgs N --trips N --pings N`: a large generated data set (`seed-bulk.ts`),
 * every user's password also `waybill-demo`. Safe to run twice either way.
 */
async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2), { orgs: 'int', trips: 'int', pings: 'int' });
  const config = loadConfig(process.env);
  if (flags.orgs !== undefined || flags.trips !== undefined || flags.pings !== undefined) {
    await bulk(config.databaseUrl, config, {
      orgs: flags.orgs ?? 10,
      trips: flags.trips ?? 1000,
      pings: flags.pings ?? 20_000,
    });
    return;
  }
  const db = new PrismaClient({ adapter: new PrismaPg({ connectionString: config.databaseUrl }) });
  try {
    const passwordHash = await new PasswordHasher(config.passwordScrypt).hash('waybill-demo');
    const user = (phone: string, name: string) =>
      db.user.upsert({ where: { phone }, create: { phone, name, passwordHash }, update: {} });
    const [sharma, gupta, driver] = await Promise.all([
      user('+919800000001', 'Ramesh Sharma'),
      user('+919800000002', 'Sunita Gupta'),
      user('+919800000003', 'Raju Driver'),
    ]);
    const org = async (name: string, city: string, ownerId: string) => {
      const existing = await db.org.findFirst({ where: { name, memberships: { some: { userId: ownerId } } } });
      return (
        existing ?? db.org.create({ data: { name, city, memberships: { create: { userId: ownerId, role: 'OWNER' } } } })
      );
    };
    const source = await org('Sharma Traders', 'Jaipur', sharma.id);
    await org('Gupta Wholesale', 'Indore', gupta.id);
    await db.truck.upsert({
      where: { orgId_number: { orgId: source.id, number: 'RJ14 GA 1234' } },
      create: { orgId: source.id, number: 'RJ14 GA 1234', type: 'TRAILER', capacityKg: 25000 },
      update: {},
    });
    await db.membership.upsert({
      where: { orgId_userId: { orgId: source.id, userId: driver.id } },
      create: { orgId: source.id, userId: driver.id, role: 'DRIVER' },
      update: {},
    });
    // Every run issues the demo driver a new tracker token (only its digest is stored): print it for the tracking app.
    const tracker = newTrackerToken();
    await db.driverProfile.upsert({
      where: { orgId_userId: { orgId: source.id, userId: driver.id } },
      create: {
        orgId: source.id,
        userId: driver.id,
        licenseNo: 'RJ-1420110012345',
        deviceId: 'demo-device-1',
        trackerTokenHash: tracker.hash,
      },
      update: { trackerTokenHash: tracker.hash },
    });
    process.stdout.write('seeded: +919800000001 / +919800000002 / +919800000003, password waybill-demo\n');
    process.stdout.write(
      `demo driver's tracker token (the device identifier in Traccar Client / OsmAnd): ${tracker.token}\n`,
    );
  } finally {
    await db.$disconnect();
  }
}

async function bulk(
  databaseUrl: string,
  config: ReturnType<typeof loadConfig>,
  sizes: { orgs: number; trips: number; pings: number },
): Promise<void> {
  const tty = process.stdout.isTTY;
  let open = false;
  const log = (line: string, opts: { sameLine?: boolean } = {}) => {
    if (opts.sameLine && tty) {
      process.stdout.write(`\r\x1b[2K${line}`);
      open = true;
      return;
    }
    if (open) process.stdout.write('\n');
    open = false;
    process.stdout.write(`${line}\n`);
  };
  log(`seeding ${sizes.orgs} orgs, ${sizes.trips} trips, ${sizes.pings} pings`);
  const passwordHash = await new PasswordHasher(config.passwordScrypt).hash('waybill-demo');
  const result = await seedBulk(databaseUrl, { ...sizes, passwordHash }, log);
  const total = Object.values(result.added).reduce((a, b) => a + b, 0);
  log(
    total === 0
      ? `nothing to add: the data set is already there (${result.seconds} s)`
      : `done in ${result.seconds} s: ${Object.entries(result.added)
          .map(([k, v]) => `${k} +${v}`)
          .join(', ')}`,
  );
  log('owners log in as +917900000000, +917900000001, ... with password waybill-demo');
}

main().catch((err: Error) => {
  process.stderr.write(`seed failed: ${err.message}\n`);
  process.exit(1);
});
