import {
  BeforeApplicationShutdown,
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnModuleInit,
} from '@nestjs/common';
import { APP_CONFIG, AppConfig } from '../../infra/config/config';
import type { SqlTx } from '../../infra/db/db.service';
import { TrackPoint, TripTrackState, TripTrackUpdate } from '../trips/trips.schemas';
import { TripsService } from '../trips/trips.service';
import { detect, readDetectorState, TrackFix } from './detectors';
import { pathLengthM } from './geo';
import { LatestLocations } from './latest-locations';
import { PingWriter } from './ping-writer';
import { TrackingRepository } from './tracking.repository';

/**
 * The after-flush round: counts stored points into their trips (distance,
 * latest location, detectors, trip events). It runs behind the answers, one
 * at a time on this node, over the trips a flush stored points of; and from
 * the backlog sweep.
 *
 * The round owns its transaction. In it, trips locks the rows and reads their
 * track state (`TripsService.lockTrackStates`), the round takes the backlog
 * and works out each trip's update, and trips writes the updates back
 * (`TripsService.applyTrackUpdates`, which announces status changes and
 * events once the transaction commits). Then the latest locations go to
 * `LatestLocations`.
 */
@Injectable()
export class TrackRound implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(TrackRound.name);
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | null = null;

  constructor(
    private readonly trips: TripsService,
    private readonly repo: TrackingRepository,
    private readonly writer: PingWriter,
    private readonly latest: LatestLocations,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    this.writer.onFlush((byTrip) => this.run([...byTrip.keys()]));
  }

  /** The backlog sweep: at start (after a crash) and every `pingBacklogSweepMs`. */
  onApplicationBootstrap(): void {
    const every = this.config.pingBacklogSweepMs;
    if (every <= 0) return;
    const run = () => {
      if (this.sweeping) return;
      this.sweeping = this.sweep()
        .then(() => undefined)
        .catch((err: Error) => this.logger.error(`backlog sweep failed: ${err.message}`))
        .finally(() => (this.sweeping = null));
    };
    this.sweepTimer = setInterval(run, every);
    this.sweepTimer.unref();
    run();
  }

  async beforeApplicationShutdown(): Promise<void> {
    clearInterval(this.sweepTimer);
    await this.sweeping;
  }

  /**
   * Counts every stored point of these trips not yet counted (their backlog,
   * whichever node stored it) in one transaction under the trips' row locks:
   * distance, latest location (never moved backwards by late points) and
   * detectors, written for all trips in one statement; then Redis. Because the
   * backlog says exactly which stored points are not yet counted, distance is
   * exact even when one trip's points reach several nodes at once. If the
   * round fails, the backlog stays for the next round or the sweep.
   */
  async run(tripIds: readonly string[]): Promise<void> {
    if (tripIds.length === 0) return;
    const updates = await this.repo.transaction(async (tx) => {
      const states = await this.trips.lockTrackStates(tx, tripIds);
      const backlog = await this.repo.takeBacklog(tx, tripIds);
      const out: TripTrackUpdate[] = [];
      for (const state of states) {
        const points = backlog.get(state.id);
        // None: another round (another node's, say) counted them first.
        if (points?.length) out.push(await this.planTripUpdate(tx, state, points));
      }
      await this.trips.applyTrackUpdates(tx, out);
      return out;
    });
    await this.latest.counted(
      updates.filter((u) => u.update.latest).map((u) => ({ tripId: u.state.id, point: u.update.latest! })),
    );
  }

  /**
   * Counts backlog left behind for longer than `pingBacklogSweepMs`: points of
   * a node that was killed between a commit and its round, with no later
   * points of the same trip to bring them along.
   */
  async sweep(): Promise<number> {
    const tripIds = await this.repo.tripsWithStaleBacklog(this.config.pingBacklogSweepMs, 500);
    if (tripIds.length) await this.run(tripIds);
    return tripIds.length;
  }

  /** One trip's update from its locked state and its backlog (`points`, in time order). */
  private async planTripUpdate(tx: SqlTx, state: TripTrackState, points: TrackFix[]): Promise<TripTrackUpdate> {
    const latestMs = state.latest?.recordedAt.getTime() ?? -Infinity;
    const newer = points.filter((p) => p.recordedAt.getTime() > latestMs);

    let deltaM: number;
    if (newer.length === points.length) {
      // The latest location is the newest counted point: these all come after it.
      deltaM = pathLengthM(state.latest ? [state.latest, ...points] : points);
    } else {
      // Late points: the counted track changes only between each run of new points' counted neighbours
      // (the last counted fix before it, the first after). With every point's two neighbours in a list,
      // each run sits between its own neighbours, and any other pair of consecutive fixes appears with or
      // without the new points alike: the difference of the two lengths is the change of the whole track.
      const fresh = new Set(points.map((p) => p.recordedAt.getTime()));
      const neighbours = (
        await this.repo.countedAround(
          tx,
          state.id,
          points.map((p) => p.recordedAt),
        )
      ).filter((f) => !fresh.has(f.recordedAt.getTime()));
      const withPoints = [...neighbours, ...points].sort((a, b) => a.recordedAt.getTime() - b.recordedAt.getTime());
      deltaM = pathLengthM(withPoints) - pathLengthM(neighbours);
    }

    const detected = detect(
      {
        status: state.status,
        end: { lat: state.endLat, lng: state.endLng },
        previous: state.latest ? { ...state.latest } : null,
        points: newer,
        state: readDetectorState(state.detectorState),
      },
      this.config,
    );
    const latest = newer.length ? newer[newer.length - 1] : null;
    const latestPoint: TrackPoint | null = latest
      ? {
          lat: latest.lat,
          lng: latest.lng,
          speed: latest.speed,
          heading: latest.heading ?? null,
          recordedAt: latest.recordedAt,
        }
      : null;
    return {
      state,
      update: {
        latest: latestPoint,
        distanceDeltaKm: deltaM / 1000,
        detectorState: detected.state,
        events: detected.events,
        arrive: detected.arrive,
      },
    };
  }
}
