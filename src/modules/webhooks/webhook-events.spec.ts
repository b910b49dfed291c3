import { eventBody, fanOut, isSuccess } from './webhook-events';

const row = (id: string, type: string, orgId: string) => ({ id, type, orgId, data: { x: 1 }, createdAt: new Date(0) });

describe('webhook fan-out', () => {
  it('sends each row to the endpoints of its org subscribed to its type', () => {
    const out = fanOut(
      [row('1', 'trip.status', 'A'), row('2', 'trip.status', 'B'), row('3', 'qr.scan', 'A')],
      [
        { id: 'eA', orgId: 'A', events: ['trip.status'] },
        { id: 'eA2', orgId: 'A', events: ['qr.scan', 'trip.status'] },
        { id: 'eB', orgId: 'B', events: ['ledger.invoice'] },
      ],
    );
    expect(out.map((d) => `${d.row.id}->${d.endpointId}`)).toEqual(['1->eA', '1->eA2', '3->eA2']);
  });

  it('builds the body {id, type, createdAt, orgId, data}', () => {
    expect(JSON.parse(eventBody(row('1', 'qr.scan', 'A')))).toEqual({
      id: '1',
      type: 'qr.scan',
      createdAt: '1970-01-01T00:00:00.000Z',
      orgId: 'A',
      data: { x: 1 },
    });
  });

  it('counts only 2xx as success', () => {
    expect([200, 204, 299, 301, 500, undefined].map(isSuccess)).toEqual([true, true, true, false, false, false]);
  });
});
