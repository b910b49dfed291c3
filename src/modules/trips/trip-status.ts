/** The life of a trip. */
export const TRIP_STATUSES = ['PLANNED', 'LOADING', 'IN_TRANSIT', 'ARRIVED', 'COMPLETED', 'CANCELLED'] as const;
export type TripStatus = (typeof TRIP_STATUSES)[number];

/** A driver or a truck has at most one trip in these states. Pings are taken only in them. */
export const ACTIVE_STATUSES: readonly TripStatus[] = ['LOADING', 'IN_TRANSIT', 'ARRIVED'];

const NEXT: Record<TripStatus, readonly TripStatus[]> = {
  PLANNED: ['LOADING', 'CANCELLED'],
  LOADING: ['IN_TRANSIT', 'CANCELLED'],
  IN_TRANSIT: ['ARRIVED', 'CANCELLED'],
  ARRIVED: ['COMPLETED'],
  COMPLETED: [],
  CANCELLED: [],
};

/**
 * True when a trip may move from `from` to `to`:
 * PLANNED → LOADING → IN_TRANSIT → ARRIVED → COMPLETED, and CANCELLED from
 * any state before ARRIVED. Staying in the same state is not a move.
 */
export function canTransition(from: TripStatus, to: TripStatus): boolean {
  return NEXT[from].includes(to);
}

export function isActive(status: TripStatus): boolean {
  return ACTIVE_STATUSES.includes(status);
}

/** Moves a driver may make on their own trip; the rest is for the orgs' staff. */
export const DRIVER_MOVES: readonly TripStatus[] = ['LOADING', 'IN_TRANSIT', 'ARRIVED'];
