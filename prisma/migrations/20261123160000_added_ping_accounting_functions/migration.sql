-- A ping flush in one statement: `SELECT * FROM ping_insert(...)` inserts the
-- rows (skipping a (trip, time) already stored) and moves each trip's
-- `distance_km` by exactly what the new points change in its track.
--
-- Why here and not after the flush: the distance is the length of the track
-- through every stored point in time order. When one trip's points arrive at
-- two nodes (or two flushes of one node) at once, a delta computed later from
-- a read of the trip row sees a different set of stored points than the one
-- already counted, and the sum drifts. Under the trip rows' locks, taken in
-- id order by every writer of those rows, each flush sees all points stored
-- before it and counts its own against exactly those: the sum is exact
-- whatever the order or node of arrival.
--
-- For each trip of the flush, the stretch from the stored point before its
-- earliest new point to the stored point after its latest new point is
-- measured twice, with and without the new points; the difference is added.
-- Distances are haversine on a sphere of radius 6,371,008.8 m, as in
-- src/modules/tracking/geo.ts.
--
-- `trips_track_update` is the after-flush write of latest location and
-- detector state for many trips: it takes the same row locks in the same
-- (id) order first, so it and concurrent flushes never deadlock.
CREATE FUNCTION geo_distance_m(lat1 float8, lng1 float8, lat2 float8, lng2 float8)
RETURNS float8 LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT 2 * 6371008.8 * asin(least(1, sqrt(
    power(sin(radians(lat2 - lat1) / 2), 2)
    + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lng2 - lng1) / 2), 2))))
$$;

CREATE FUNCTION ping_insert(
  p_trip uuid[], p_at timestamptz[], p_lat float8[], p_lng float8[], p_accuracy float8[],
  p_speed float8[], p_heading float8[], p_altitude float8[], p_batch text[])
RETURNS TABLE (trip_id uuid, ms float8) LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  v_trip_ids uuid[];
  v_ins_trip uuid[];
  v_ins_at timestamptz[];
BEGIN
  -- Every writer of a trip's points or track columns holds the trip's row
  -- lock, taken in id order (as trips_track_update does): no deadlock. NO KEY
  -- UPDATE leaves the pings' foreign-key checks (KEY SHARE) free.
  SELECT array_agg(t.id ORDER BY t.id) INTO v_trip_ids
    FROM (SELECT t.id FROM trips t WHERE t.id = ANY (p_trip) ORDER BY t.id FOR NO KEY UPDATE) t;

  WITH ins AS (
    INSERT INTO trip_pings (trip_id, recorded_at, lat, lng, accuracy, speed, heading, altitude, batch_id)
    SELECT * FROM unnest(p_trip, p_at, p_lat, p_lng, p_accuracy, p_speed, p_heading, p_altitude, p_batch)
    ON CONFLICT ON CONSTRAINT trip_pings_pkey DO NOTHING
    RETURNING trip_pings.trip_id, trip_pings.recorded_at)
  SELECT array_agg(ins.trip_id), array_agg(ins.recorded_at) INTO v_ins_trip, v_ins_at FROM ins;

  IF v_ins_trip IS NULL THEN
    RETURN;
  END IF;

  -- The new rows are visible from here on (a later statement of this transaction).
  WITH fresh AS (
    SELECT f.trip_id, f.recorded_at FROM unnest(v_ins_trip, v_ins_at) AS f(trip_id, recorded_at)),
  span AS (
    SELECT f.trip_id,
      coalesce((SELECT max(p.recorded_at) FROM trip_pings p
                WHERE p.trip_id = f.trip_id AND p.recorded_at < min(f.recorded_at)), min(f.recorded_at)) AS lo,
      coalesce((SELECT min(p.recorded_at) FROM trip_pings p
                WHERE p.trip_id = f.trip_id AND p.recorded_at > max(f.recorded_at)), max(f.recorded_at)) AS hi
    FROM fresh f GROUP BY f.trip_id),
  stretch AS (
    -- One index range per trip (the primary key), new rows marked by a hash join.
    SELECT s.trip_id, p.recorded_at, p.lat, p.lng, (f.trip_id IS NOT NULL) AS is_new
    FROM span s
    CROSS JOIN LATERAL (
      SELECT p.recorded_at, p.lat, p.lng FROM trip_pings p
      WHERE p.trip_id = s.trip_id AND p.recorded_at BETWEEN s.lo AND s.hi) p
    LEFT JOIN fresh f ON f.trip_id = s.trip_id AND f.recorded_at = p.recorded_at),
  with_new AS (
    SELECT trip_id, geo_distance_m(lag(lat) OVER w, lag(lng) OVER w, lat, lng) AS d
    FROM stretch WINDOW w AS (PARTITION BY trip_id ORDER BY recorded_at)),
  without_new AS (
    SELECT trip_id, geo_distance_m(lag(lat) OVER w, lag(lng) OVER w, lat, lng) AS d
    FROM stretch WHERE NOT is_new WINDOW w AS (PARTITION BY trip_id ORDER BY recorded_at)),
  delta AS (
    SELECT a.trip_id, a.m - coalesce(b.m, 0) AS m
    FROM (SELECT trip_id, coalesce(sum(d), 0) AS m FROM with_new GROUP BY trip_id) a
    LEFT JOIN (SELECT trip_id, coalesce(sum(d), 0) AS m FROM without_new GROUP BY trip_id) b USING (trip_id))
  UPDATE trips t SET distance_km = t.distance_km + delta.m / 1000
    FROM delta WHERE t.id = delta.trip_id AND delta.m <> 0;

  RETURN QUERY
    SELECT f.trip_id, extract(epoch FROM f.recorded_at)::float8 * 1000
    FROM unnest(v_ins_trip, v_ins_at) AS f(trip_id, recorded_at);
END;
$$;

CREATE FUNCTION trips_track_update(
  p_id uuid[], p_detector_state text[], p_rec timestamptz[], p_lat float8[], p_lng float8[],
  p_speed float8[], p_heading float8[])
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
  v_updated integer;
BEGIN
  PERFORM 1 FROM trips t WHERE t.id = ANY (p_id) ORDER BY t.id FOR NO KEY UPDATE;
  UPDATE trips AS t SET
    detector_state = u.detector_state::jsonb,
    latest_lat = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.lat ELSE t.latest_lat END,
    latest_lng = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.lng ELSE t.latest_lng END,
    latest_speed = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.speed ELSE t.latest_speed END,
    latest_heading = CASE WHEN u.rec IS NOT NULL AND (t.latest_recorded_at IS NULL OR t.latest_recorded_at < u.rec) THEN u.heading ELSE t.latest_heading END,
    latest_recorded_at = GREATEST(t.latest_recorded_at, u.rec),
    updated_at = now()
  FROM unnest(p_id, p_detector_state, p_rec, p_lat, p_lng, p_speed, p_heading)
    AS u(id, detector_state, rec, lat, lng, speed, heading)
  WHERE t.id = u.id;
  GET DIAGNOSTICS v_updated = ROW_COUNT;
  RETURN v_updated;
END;
$$;
