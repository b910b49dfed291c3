// Artillery processor for artillery.yml: builds driver ping batches, picks
// trips from list answers, counts what watchers receive, and ends sessions
// after their configured length.

/** Metres per second the simulated trucks move (north, along a line). */
const SPEED_MPS = 12;
const DEG_PER_M = 1 / 111_320;

/** A fix at time `t` (ms): a position that depends only on the time, so VUs sharing a trip agree. */
function fixAt(worldStart, t) {
  const metres = ((t - worldStart) / 1000) * SPEED_MPS;
  return {
    latitude: 22.72 + metres * DEG_PER_M,
    longitude: 75.86,
    timestamp: new Date(t).toISOString(),
    speed: SPEED_MPS,
    heading: 0,
    accuracy: 5,
  };
}

/** beforeRequest: the batch a driver app posts every 5 s, one fix a second (the last one now). */
function pingBatch(req, context, ee, next) {
  const now = Date.now();
  const worldStart = Number(context.vars.worldStart);
  const size = Number(context.vars.pingBatchSize || 5);
  // Fixes before worldStart (just after the trips were created) would be older than their trip: rejected.
  const times = Array.from({ length: size }, (_, i) => now - (size - 1 - i) * 1000).filter((t) => t >= worldStart);
  req.json = {
    tripId: context.vars.driverTripId,
    locations: (times.length ? times : [now]).map((t) => fixAt(worldStart, t)),
  };
  return next();
}

/** afterResponse: counts accepted, duplicate and rejected points. */
function countPings(req, res, context, ee, next) {
  if (res.statusCode === 200) {
    try {
      const { data } = JSON.parse(res.body);
      ee.emit('counter', 'ping.points_accepted', data.accepted);
      if (data.duplicates) ee.emit('counter', 'ping.points_duplicate', data.duplicates);
      if (data.rejected.length) ee.emit('counter', 'ping.points_rejected', data.rejected.length);
    } catch {
      ee.emit('counter', 'ping.unreadable_answer', 1);
    }
  }
  return next();
}

/** afterResponse on a trips list: a random trip of the page becomes `tripId` (the first one if none). */
function pickTrip(req, res, context, ee, next) {
  try {
    const { data } = JSON.parse(res.body);
    if (Array.isArray(data) && data.length) context.vars.tripId = data[Math.floor(Math.random() * data.length)].id;
  } catch {
    /* the status code already counts it */
  }
  return next();
}

/** Function step (socketio scenario): counts trip.location events and their lag behind the newest fix. */
function watchLocations(context, ee, next) {
  const socket = context.sockets && context.sockets[''];
  if (socket) {
    socket.on('trip.location', (event) => {
      ee.emit('counter', 'watcher.trip_location_events', 1);
      const points = (event && event.points) || [];
      const newest = points[points.length - 1];
      if (newest && newest.recordedAt) {
        ee.emit('histogram', 'watcher.location_lag_ms', Math.max(0, Date.now() - Date.parse(newest.recordedAt)));
      }
    });
  }
  return next();
}

/**
 * Function steps that open a session: it resumes with the access token the
 * setup wrote (`token`), and one session in `1 / loginShare` starts with a
 * password login instead (`login`), as an app that keeps its session logs in
 * rarely. A password hash (scrypt N=2^17, 128 MiB) costs hundreds of ms of
 * a core, so logging in on every session would measure little else.
 */
function session(context, token) {
  context.vars.token = token;
  context.vars.login = Math.random() < Number(context.vars.loginShare ?? 0.1);
  context.vars.sessionStartedAt = Date.now();
}
function asDriver(context, ee, next) {
  session(context, context.vars.driverToken);
  return next();
}
function asMerchant(context, ee, next) {
  session(context, context.vars.merchantToken);
  return next();
}
function asAccountant(context, ee, next) {
  session(context, context.vars.accountantToken);
  return next();
}

/** whileTrue: a driver's ping loop goes on until the session is `driverSessionSeconds` old. */
function sessionGoesOn(context, next) {
  const seconds = Number(context.vars.driverSessionSeconds || 60);
  return next(Date.now() - Number(context.vars.sessionStartedAt || 0) < seconds * 1000);
}

module.exports = { pingBatch, countPings, pickTrip, watchLocations, asDriver, asMerchant, asAccountant, sessionGoesOn };
