import { PrismaPg } from '@prisma/adapter-pg';
import { newTrackerToken } from '../common/auth/tracker-token';
import { PrismaClient } from '../generated/prisma/client';
import { PasswordHasher } from '../modules/auth/password-hasher';
import { loadConfig } from '../infra/config/config';

/**
 * Demo data for a development database: two trading orgs with an owner each
 * (password `waybill-demo`), a truck and a driver. Safe to run twice.
 */
async function main(): Promise<void> {
  const config = loadConfig(process.env);
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

main().catch((err: Error) => {
  process.stderr.write(`seed failed: ${err.message}\n`);
  process.exit(1);
});
