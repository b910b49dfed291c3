/* Waybill live: log in, pick an org, watch its trips move (Socket.IO rooms trip:<id> and org:<id>). */
(function () {
  'use strict';

  var API = '/api/v1';
  var STORE = 'waybill-live';
  // A coarse outline of India (lng, lat), for orientation only.
  var INDIA = [
    [68.2, 23.7], [69.5, 22.4], [70.6, 20.8], [72.8, 19.0], [73.7, 16.0], [74.8, 12.9], [76.3, 9.9], [77.5, 8.1],
    [78.3, 9.0], [79.8, 10.3], [80.3, 13.1], [80.1, 15.5], [82.3, 16.6], [84.0, 18.3], [85.8, 19.8], [87.0, 21.5],
    [88.8, 21.6], [89.0, 25.2], [92.2, 24.9], [92.5, 22.9], [93.3, 23.9], [94.6, 25.4], [95.4, 26.8], [97.4, 28.0],
    [96.0, 29.4], [94.4, 29.3], [91.7, 27.8], [89.8, 26.7], [88.2, 27.9], [88.0, 26.5], [84.1, 27.5], [81.0, 28.9],
    [80.4, 30.4], [78.9, 31.4], [78.8, 32.6], [79.5, 34.6], [77.8, 35.5], [74.5, 34.8], [73.9, 33.6], [74.6, 32.4],
    [74.6, 31.1], [73.4, 29.9], [71.9, 27.9], [70.2, 27.2], [69.5, 26.0], [70.4, 25.0], [68.8, 24.3],
  ];

  var state = {
    access: null,
    refresh: null,
    refreshing: null,
    refreshTimer: null,
    user: null,
    orgId: null,
    trips: new Map(), // id -> trip
    trails: new Map(), // id -> [[lat, lng], ...]
    lastSeq: new Map(), // room -> seq
    socket: null,
    frame: 0,
  };

  var $ = function (id) { return document.getElementById(id); };
  var SVG_NS = 'http://www.w3.org/2000/svg';

  function save() {
    sessionStorage.setItem(STORE, JSON.stringify({ access: state.access, refresh: state.refresh, orgId: state.orgId }));
  }

  function load() {
    try {
      var s = JSON.parse(sessionStorage.getItem(STORE) || 'null');
      if (s) { state.access = s.access; state.refresh = s.refresh; state.orgId = s.orgId; }
    } catch (e) { /* nothing stored */ }
  }

  function tokenExpiry(token) {
    try {
      var body = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      return JSON.parse(atob(body)).exp * 1000;
    } catch (e) { return 0; }
  }

  function setTokens(access, refresh) {
    state.access = access;
    if (refresh) state.refresh = refresh;
    save();
    clearTimeout(state.refreshTimer);
    var exp = tokenExpiry(access);
    if (exp) {
      // Refresh a little before the access token expires, so sockets and requests never see it expire.
      var wait = Math.max(5000, exp - Date.now() - 30000);
      state.refreshTimer = setTimeout(function () { refreshTokens().catch(function () {}); }, wait);
    }
    if (state.socket && state.socket.connected) state.socket.emit('auth', { token: access }, function () {});
  }

  function refreshTokens() {
    if (!state.refresh) return Promise.reject(new Error('not logged in'));
    if (state.refreshing) return state.refreshing;
    state.refreshing = fetch(API + '/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: state.refresh }),
    })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) { logout(); throw new Error('session ended'); }
          setTokens(body.data.accessToken, body.data.refreshToken);
        });
      })
      .finally(function () { state.refreshing = null; });
    return state.refreshing;
  }

  function api(method, path, body, retried) {
    var headers = { authorization: 'Bearer ' + state.access };
    if (body !== undefined) headers['content-type'] = 'application/json';
    return fetch(API + path, { method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body) })
      .then(function (res) {
        if (res.status === 401 && !retried && state.refresh) {
          return refreshTokens().then(function () { return api(method, path, body, true); });
        }
        return res.json().then(function (json) {
          if (!res.ok) throw new Error((json && json.error && json.error.message) || 'HTTP ' + res.status);
          return json;
        });
      });
  }

  // ---- login and orgs ------------------------------------------------------------------------------

  function show(panel) {
    $('login-panel').hidden = panel !== 'login';
    $('org-panel').hidden = panel === 'login';
    $('live-panel').hidden = panel !== 'live';
    $('logout').hidden = panel === 'login';
  }

  function login(ev) {
    ev.preventDefault();
    $('login-error').textContent = '';
    fetch(API + '/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ phone: $('phone').value.trim(), password: $('password').value }),
    })
      .then(function (res) {
        return res.json().then(function (body) {
          if (!res.ok) throw new Error((body.error && body.error.message) || 'login failed');
          setTokens(body.data.accessToken, body.data.refreshToken);
          return start();
        });
      })
      .catch(function (err) { $('login-error').textContent = err.message; });
  }

  function logout() {
    var refresh = state.refresh;
    clearTimeout(state.refreshTimer);
    if (state.socket) { state.socket.disconnect(); state.socket = null; }
    state.access = state.refresh = state.orgId = null;
    sessionStorage.removeItem(STORE);
    if (refresh) {
      fetch(API + '/auth/logout', {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ refreshToken: refresh }),
      }).catch(function () {});
    }
    setConnection(false);
    $('who').textContent = '';
    show('login');
  }

  function start() {
    return api('GET', '/me').then(function (res) {
      state.user = res.data.user;
      $('who').textContent = state.user.name + ' (' + state.user.phone + ')';
      var select = $('org');
      select.length = 1;
      res.data.memberships.forEach(function (m) {
        var opt = document.createElement('option');
        opt.value = m.orgId;
        opt.textContent = (m.orgName || m.orgId) + ' — ' + m.role;
        select.appendChild(opt);
      });
      show('org');
      connect();
      var known = res.data.memberships.some(function (m) { return m.orgId === state.orgId; });
      if (known) { select.value = state.orgId; pickOrg(); }
    });
  }

  function pickOrg() {
    var orgId = $('org').value;
    var previous = state.orgId;
    if (state.socket && previous) {
      state.socket.emit('unsubscribe', { room: 'org:' + previous }, function () {});
      state.trips.forEach(function (t) { state.socket.emit('unsubscribe', { room: 'trip:' + t.id }, function () {}); });
    }
    state.orgId = orgId || null;
    state.trips.clear();
    state.trails.clear();
    save();
    if (!orgId) { show('org'); return; }
    show('live');
    loadTrips();
  }

  var TRIP_FIELDS = 'id,status,startPoint,endPoint,latestLocation,updatedAt,truck.number,driver.name';

  function loadTrips() {
    var orgId = state.orgId;
    return api('GET', '/trips?orgId=' + encodeURIComponent(orgId) + '&limit=100&fields=' + TRIP_FIELDS).then(function (res) {
      if (orgId !== state.orgId) return;
      var seen = new Set();
      res.data.forEach(function (t) {
        seen.add(t.id);
        var old = state.trips.get(t.id);
        if (old && old.latestLocation && t.latestLocation && old.latestLocation.recordedAt > t.latestLocation.recordedAt) {
          t.latestLocation = old.latestLocation;
        }
        t.lastUpdate = (old && old.lastUpdate) || (t.latestLocation && t.latestLocation.recordedAt) || t.updatedAt;
        state.trips.set(t.id, t);
      });
      state.trips.forEach(function (_t, id) { if (!seen.has(id)) state.trips.delete(id); });
      subscribeAll();
      state.trips.forEach(function (t) { if (ACTIVE.indexOf(t.status) >= 0 && !state.trails.has(t.id)) loadTrail(t.id); });
      schedule();
    });
  }

  var ACTIVE = ['LOADING', 'IN_TRANSIT', 'ARRIVED'];

  /** The last three hours of an active trip's track, drawn behind its marker; live points append to it. */
  function loadTrail(tripId) {
    state.trails.set(tripId, []);
    var from = new Date(Date.now() - 3 * 3600 * 1000).toISOString();
    api('GET', '/tracking/trips/' + tripId + '/history?limit=2000&from=' + encodeURIComponent(from)).then(function (res) {
      var live = state.trails.get(tripId) || [];
      var past = res.data.map(function (p) { return [p.lat, p.lng]; });
      state.trails.set(tripId, past.concat(live));
      schedule();
    }).catch(function () { /* no track to draw */ });
  }

  // ---- realtime ------------------------------------------------------------------------------------

  function setConnection(online) {
    var el = $('connection');
    el.dataset.state = online ? 'online' : 'offline';
    el.textContent = online ? 'live' : 'offline';
  }

  function connect() {
    if (state.socket) return;
    // eslint-disable-next-line no-undef
    var socket = io({
      path: '/socket.io',
      transports: ['websocket'],
      auth: function (cb) { cb({ token: state.access }); },
    });
    state.socket = socket;
    socket.on('connect', function () { setConnection(true); subscribeAll(); });
    socket.on('disconnect', function () { setConnection(false); });
    socket.on('connect_error', function () {
      setConnection(false);
      // A refused handshake is most often an expired token: refresh, then Socket.IO's own retry uses the new one.
      if (tokenExpiry(state.access) - Date.now() < 60000) refreshTokens().then(function () { socket.connect(); }, function () {});
    });
    socket.on('auth.expired', function () { refreshTokens().catch(function () {}); });
    socket.on('trip.location', onLocation);
    socket.on('trip.status', onStatus);
    socket.on('trip.event', function (ev) { note(ev); touch(ev.tripId, ev.at); });
    socket.on('qr.scan', note);
  }

  function subscribe(room) {
    if (!state.socket || !state.socket.connected) return;
    var payload = { room: room };
    if (state.lastSeq.has(room)) payload.sinceSeq = state.lastSeq.get(room);
    state.socket.emit('subscribe', payload, function () {});
  }

  function subscribeAll() {
    if (!state.orgId) return;
    subscribe('org:' + state.orgId);
    state.trips.forEach(function (t) { subscribe('trip:' + t.id); });
  }

  function note(ev) {
    if (ev && ev.room && typeof ev.seq === 'number') state.lastSeq.set(ev.room, ev.seq);
  }

  function touch(tripId, at) {
    var t = state.trips.get(tripId);
    if (!t) return;
    t.lastUpdate = at || new Date().toISOString();
    schedule();
  }

  function onLocation(ev) {
    note(ev);
    var t = state.trips.get(ev.tripId);
    if (!t || !ev.points || !ev.points.length) return;
    var trail = state.trails.get(t.id) || [];
    var newest = t.latestLocation;
    ev.points.forEach(function (p) {
      trail.push([p.lat, p.lng]);
      if (!newest || p.recordedAt >= newest.recordedAt) newest = p;
    });
    if (trail.length > 2000) trail.splice(0, trail.length - 2000);
    state.trails.set(t.id, trail);
    t.latestLocation = newest;
    t.lastUpdate = new Date().toISOString();
    schedule();
  }

  function onStatus(ev) {
    note(ev);
    var t = state.trips.get(ev.tripId);
    if (!t) { loadTrips(); return; } // a new trip of the org
    t.status = ev.status;
    t.lastUpdate = ev.at;
    schedule();
  }

  // ---- drawing -------------------------------------------------------------------------------------

  function schedule() {
    if (state.frame) return;
    state.frame = requestAnimationFrame(function () { state.frame = 0; render(); });
  }

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG_NS, name);
    Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function bounds() {
    var pts = [];
    state.trips.forEach(function (t) {
      if (t.startPoint) pts.push([t.startPoint.lat, t.startPoint.lng]);
      if (t.endPoint) pts.push([t.endPoint.lat, t.endPoint.lng]);
      if (t.latestLocation) pts.push([t.latestLocation.lat, t.latestLocation.lng]);
    });
    state.trails.forEach(function (trail) { trail.forEach(function (p) { pts.push(p); }); });
    if (!pts.length) pts = [[8, 68], [35.5, 97.4]];
    var b = { minLat: 90, maxLat: -90, minLng: 180, maxLng: -180 };
    pts.forEach(function (p) {
      b.minLat = Math.min(b.minLat, p[0]); b.maxLat = Math.max(b.maxLat, p[0]);
      b.minLng = Math.min(b.minLng, p[1]); b.maxLng = Math.max(b.maxLng, p[1]);
    });
    // At least ~1 degree across, and a margin around.
    var padLat = Math.max(0.5, (b.maxLat - b.minLat) * 0.12);
    var padLng = Math.max(0.5, (b.maxLng - b.minLng) * 0.12);
    b.minLat -= padLat; b.maxLat += padLat; b.minLng -= padLng; b.maxLng += padLng;
    return b;
  }

  function projection(b) {
    var k = Math.cos(((b.minLat + b.maxLat) / 2) * Math.PI / 180);
    var w = (b.maxLng - b.minLng) * k;
    var h = b.maxLat - b.minLat;
    var scale = 1000 / Math.max(w, h);
    var offX = (1000 - w * scale) / 2;
    var offY = (1000 - h * scale) / 2;
    return function (lat, lng) {
      return [offX + (lng - b.minLng) * k * scale, offY + (b.maxLat - lat) * scale];
    };
  }

  function fmt(n) { return Math.round(n * 10) / 10; }

  function ago(iso) {
    if (!iso) return '—';
    var s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return Math.round(s / 86400) + ' d ago';
  }

  function render() {
    var project = projection(bounds());
    $('outline').setAttribute('d', INDIA.map(function (p, i) {
      var xy = project(p[1], p[0]);
      return (i ? 'L' : 'M') + fmt(xy[0]) + ' ' + fmt(xy[1]);
    }).join(' ') + ' Z');

    var routes = $('routes'), trails = $('trails'), markers = $('markers');
    routes.textContent = ''; trails.textContent = ''; markers.textContent = '';
    var sorted = Array.from(state.trips.values()).sort(function (a, b) {
      return String(b.lastUpdate || '').localeCompare(String(a.lastUpdate || ''));
    });
    var cities = new Map();
    sorted.forEach(function (t) {
      if (t.status === 'COMPLETED' || t.status === 'CANCELLED') return;
      if (t.startPoint && t.endPoint) {
        var a = project(t.startPoint.lat, t.startPoint.lng), b = project(t.endPoint.lat, t.endPoint.lng);
        el('line', { class: 'route', x1: fmt(a[0]), y1: fmt(a[1]), x2: fmt(b[0]), y2: fmt(b[1]) }, routes);
        cities.set(t.startPoint.name, a); cities.set(t.endPoint.name, b);
      }
      var trail = state.trails.get(t.id);
      if (trail && trail.length > 1) {
        el('polyline', {
          class: 'trail',
          points: trail.map(function (p) { var xy = project(p[0], p[1]); return fmt(xy[0]) + ',' + fmt(xy[1]); }).join(' '),
        }, trails);
      }
      if (t.latestLocation) {
        var xy = project(t.latestLocation.lat, t.latestLocation.lng);
        var g = el('g', {
          class: 'marker' + (t.status === 'IN_TRANSIT' ? ' active' : ''),
          transform: 'translate(' + fmt(xy[0]) + ' ' + fmt(xy[1]) + ')',
          'data-trip-id': t.id,
          'data-lat': String(t.latestLocation.lat),
          'data-lng': String(t.latestLocation.lng),
          'data-x': String(fmt(xy[0])),
          'data-y': String(fmt(xy[1])),
        }, markers);
        el('circle', { r: 8 }, g);
        var label = el('text', { x: 11, y: 4 }, g);
        label.textContent = (t.truck && t.truck.number) || t.id.slice(0, 8);
      }
    });
    cities.forEach(function (xy, name) {
      var text = el('text', { class: 'city', x: fmt(xy[0] + 4), y: fmt(xy[1] - 4) }, routes);
      text.textContent = name;
      el('circle', { cx: fmt(xy[0]), cy: fmt(xy[1]), r: 3, fill: '#556' }, routes);
    });

    var list = $('trips');
    list.textContent = '';
    sorted.forEach(function (t) {
      var li = document.createElement('li');
      li.dataset.tripId = t.id;
      li.dataset.status = t.status;
      var route = document.createElement('div');
      route.className = 'route-name';
      var strong = document.createElement('strong');
      strong.textContent = (t.startPoint ? t.startPoint.name : '?') + ' → ' + (t.endPoint ? t.endPoint.name : '?');
      route.appendChild(strong);
      route.appendChild(document.createTextNode(' '));
      var badge = document.createElement('span');
      badge.className = 'status status-' + t.status;
      badge.textContent = t.status;
      route.appendChild(badge);
      var meta = document.createElement('div');
      meta.className = 'meta';
      var loc = t.latestLocation;
      meta.textContent = ((t.truck && t.truck.number) || '') + (t.driver && t.driver.name ? ' · ' + t.driver.name : '') +
        ' · updated ' + ago(t.lastUpdate) +
        (loc ? ' · ' + loc.lat.toFixed(4) + ', ' + loc.lng.toFixed(4) + (loc.speed != null ? ' · ' + Math.round(loc.speed * 3.6) + ' km/h' : '') : '');
      li.appendChild(route);
      li.appendChild(meta);
      list.appendChild(li);
    });
    $('trip-count').textContent = '(' + state.trips.size + ')';
  }

  // ---- boot ----------------------------------------------------------------------------------------

  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  $('org').addEventListener('change', pickOrg);
  setInterval(function () { if (state.trips.size) schedule(); }, 5000);
  // Trips the org gains without an org-room event (e.g. as the destination) show up on the next poll.
  setInterval(function () { if (state.orgId && state.access) loadTrips().catch(function () {}); }, 30000);

  load();
  if (state.refresh) {
    refreshTokens().then(start).catch(function () { show('login'); });
  } else {
    show('login');
  }
})();
