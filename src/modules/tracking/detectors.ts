import { distanceM, LatLng } from './geo';

/** A truck within this distance of where it stood counts as not moving. */
export const STOP_RADIUS_M = 50;

export interface TrackFix extends LatLng {
  speed: number | null;
  heading?: number | null;
  recordedAt: Date;
}

export interface DetectorState {
  overspeeding: boolean;
  stop: { lat: number; lng: number; since: string; reported: boolean } | null;
}

export interface DetectorConfig {
  arrivalRadiusM: number;
  overspeedLimitMps: number;
  stoppedMinutes: number;
}

export interface DetectedEvent {
  type: 'ARRIVAL' | 'OVERSPEED' | 'STOPPED';
  at: Date;
  data: Record<string, unknown>;
}

export function readDetectorState(raw: unknown): DetectorState {
  const s = raw as Partial<DetectorState> | null;
  return { overspeeding: !!s?.overspeeding, stop: s?.stop ?? null };
}

/**
 * Runs the detectors over the new points that extend the track (in time
 * order, after `previous`): arrival within a radius of the end point and
 * stops longer than the configured time while IN_TRANSIT; overspeed (the
 * reported speed, or the implied one) in any active state. Each episode is
 * reported once.
 */
export function detect(
  input: { status: string; end: LatLng; previous: TrackFix | null; points: readonly TrackFix[]; state: DetectorState },
  cfg: DetectorConfig,
): { events: DetectedEvent[]; arrive: boolean; state: DetectorState } {
  const events: DetectedEvent[] = [];
  const state: DetectorState = {
    overspeeding: input.state.overspeeding,
    stop: input.state.stop ? { ...input.state.stop } : null,
  };
  const inTransit = input.status === 'IN_TRANSIT';
  let arrive = false;
  let prev = input.previous;
  for (const p of input.points) {
    let speed = p.speed;
    if (speed === null && prev) {
      const dt = (p.recordedAt.getTime() - prev.recordedAt.getTime()) / 1000;
      speed = dt > 0 ? distanceM(prev, p) / dt : null;
    }
    if (speed !== null && speed > cfg.overspeedLimitMps) {
      if (!state.overspeeding) {
        events.push({
          type: 'OVERSPEED',
          at: p.recordedAt,
          data: { speedMps: Math.round(speed * 10) / 10, limitMps: cfg.overspeedLimitMps, lat: p.lat, lng: p.lng },
        });
      }
      state.overspeeding = true;
    } else if (speed !== null) {
      state.overspeeding = false;
    }

    if (inTransit) {
      if (!state.stop || distanceM(state.stop, p) > STOP_RADIUS_M) {
        state.stop = { lat: p.lat, lng: p.lng, since: p.recordedAt.toISOString(), reported: false };
      } else if (!state.stop.reported) {
        const stoppedMs = p.recordedAt.getTime() - Date.parse(state.stop.since);
        if (stoppedMs >= cfg.stoppedMinutes * 60_000) {
          state.stop.reported = true;
          events.push({
            type: 'STOPPED',
            at: p.recordedAt,
            data: {
              since: state.stop.since,
              minutes: Math.round(stoppedMs / 6000) / 10,
              lat: state.stop.lat,
              lng: state.stop.lng,
            },
          });
        }
      }
      if (!arrive) {
        const toEnd = distanceM(p, input.end);
        if (toEnd <= cfg.arrivalRadiusM) {
          arrive = true;
          events.push({
            type: 'ARRIVAL',
            at: p.recordedAt,
            data: { lat: p.lat, lng: p.lng, distanceToEndM: Math.round(toEnd) },
          });
        }
      }
    } else {
      state.stop = null;
    }
    prev = p;
  }
  return { events, arrive, state };
}
