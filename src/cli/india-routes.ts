/**
 * Indian cities and road-like routes between them, for the demo data
 * (`seed-bulk.ts`) and the fleet simulator (`demo.cli.ts`). No map data: a
 * route is the straight line bent by a deterministic curve and small wiggles,
 * which is enough to look like a highway on the live page.
 */
export interface City {
  name: string;
  /** Vehicle registration prefix of the city's state and district. */
  rto: string;
  lat: number;
  lng: number;
}

export const CITIES: readonly City[] = [
  { name: 'Jaipur', rto: 'RJ14', lat: 26.9124, lng: 75.7873 },
  { name: 'Delhi', rto: 'DL01', lat: 28.6139, lng: 77.209 },
  { name: 'Mumbai', rto: 'MH01', lat: 19.076, lng: 72.8777 },
  { name: 'Ahmedabad', rto: 'GJ01', lat: 23.0225, lng: 72.5714 },
  { name: 'Indore', rto: 'MP09', lat: 22.7196, lng: 75.8577 },
  { name: 'Pune', rto: 'MH12', lat: 18.5204, lng: 73.8567 },
  { name: 'Bengaluru', rto: 'KA01', lat: 12.9716, lng: 77.5946 },
  { name: 'Chennai', rto: 'TN01', lat: 13.0827, lng: 80.2707 },
  { name: 'Hyderabad', rto: 'TS09', lat: 17.385, lng: 78.4867 },
  { name: 'Kolkata', rto: 'WB02', lat: 22.5726, lng: 88.3639 },
  { name: 'Lucknow', rto: 'UP32', lat: 26.8467, lng: 80.9462 },
  { name: 'Kanpur', rto: 'UP78', lat: 26.4499, lng: 80.3319 },
  { name: 'Nagpur', rto: 'MH31', lat: 21.1458, lng: 79.0882 },
  { name: 'Surat', rto: 'GJ05', lat: 21.1702, lng: 72.8311 },
  { name: 'Bhopal', rto: 'MP04', lat: 23.2599, lng: 77.4126 },
  { name: 'Ludhiana', rto: 'PB10', lat: 30.901, lng: 75.8573 },
  { name: 'Agra', rto: 'UP80', lat: 27.1767, lng: 78.0081 },
  { name: 'Nashik', rto: 'MH15', lat: 19.9975, lng: 73.7898 },
  { name: 'Vadodara', rto: 'GJ06', lat: 22.3072, lng: 73.1812 },
  { name: 'Udaipur', rto: 'RJ27', lat: 24.5854, lng: 73.7125 },
  { name: 'Jodhpur', rto: 'RJ19', lat: 26.2389, lng: 73.0243 },
  { name: 'Kota', rto: 'RJ20', lat: 25.2138, lng: 75.8648 },
  { name: 'Raipur', rto: 'CG04', lat: 21.2514, lng: 81.6296 },
  { name: 'Patna', rto: 'BR01', lat: 25.5941, lng: 85.1376 },
  { name: 'Guwahati', rto: 'AS01', lat: 26.1445, lng: 91.7362 },
  { name: 'Coimbatore', rto: 'TN37', lat: 11.0168, lng: 76.9558 },
  { name: 'Kochi', rto: 'KL07', lat: 9.9312, lng: 76.2673 },
  { name: 'Visakhapatnam', rto: 'AP31', lat: 17.6868, lng: 83.2185 },
  { name: 'Chandigarh', rto: 'CH01', lat: 30.7333, lng: 76.7794 },
  { name: 'Amritsar', rto: 'PB02', lat: 31.634, lng: 74.8723 },
];

export const SURNAMES = [
  'Sharma',
  'Gupta',
  'Agarwal',
  'Jain',
  'Patel',
  'Shah',
  'Reddy',
  'Iyer',
  'Nair',
  'Singh',
  'Verma',
  'Mehta',
  'Bansal',
  'Goyal',
  'Khandelwal',
  'Maheshwari',
  'Chopra',
  'Kapoor',
  'Malhotra',
  'Desai',
  'Rao',
  'Pillai',
  'Mishra',
  'Tiwari',
  'Yadav',
  'Chauhan',
  'Rathore',
  'Joshi',
  'Kulkarni',
  'Deshmukh',
  'Banerjee',
  'Das',
];
export const TRADES = [
  'Traders',
  'Wholesale',
  'Mandi',
  'Agro',
  'Textiles',
  'Steel',
  'Cement',
  'Logistics',
  'Spices',
  'Grains',
  'Pharma',
  'Plastics',
  'Paper',
  'Oils',
  'Pulses',
  'Fruits',
];
export const FIRST_NAMES = [
  'Ramesh',
  'Suresh',
  'Mahesh',
  'Raju',
  'Vijay',
  'Sanjay',
  'Anil',
  'Sunil',
  'Manoj',
  'Rakesh',
  'Dinesh',
  'Mukesh',
  'Harpreet',
  'Gurpreet',
  'Arjun',
  'Karthik',
  'Murugan',
  'Venkatesh',
  'Abdul',
  'Imran',
  'Salim',
  'Prakash',
  'Sunita',
  'Anita',
  'Kavita',
  'Pooja',
  'Lakshmi',
  'Meena',
];

export interface LatLng {
  lat: number;
  lng: number;
}

const R_EARTH_M = 6_371_000;
const rad = (d: number) => (d * Math.PI) / 180;

export function haversineM(a: LatLng, b: LatLng): number {
  const dLat = rad(b.lat - a.lat);
  const dLng = rad(b.lng - a.lng);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.sin(dLng / 2) ** 2;
  return 2 * R_EARTH_M * Math.asin(Math.sqrt(h));
}

export function bearingDeg(a: LatLng, b: LatLng): number {
  const y = Math.sin(rad(b.lng - a.lng)) * Math.cos(rad(b.lat));
  const x =
    Math.cos(rad(a.lat)) * Math.sin(rad(b.lat)) -
    Math.sin(rad(a.lat)) * Math.cos(rad(b.lat)) * Math.cos(rad(b.lng - a.lng));
  return ((Math.atan2(y, x) * 180) / Math.PI + 360) % 360;
}

/**
 * The point at fraction `f` (0..1) of the road from `a` to `b`. `bend` (about
 * -0.15..0.15) bows the road sideways by that share of its length; two small
 * wiggles make it look like a highway. The same formula is written in SQL in
 * `seed-bulk.ts` (the pings' `side` and `pt`): keep them in step.
 */
export function routePoint(a: LatLng, b: LatLng, bend: number, f: number): LatLng {
  const dLat = b.lat - a.lat;
  const dLng = b.lng - a.lng;
  const side = Math.sin(Math.PI * f) * bend + Math.sin(Math.PI * f * 7) * 0.012 + Math.sin(Math.PI * f * 23) * 0.004;
  return { lat: a.lat + dLat * f - dLng * side, lng: a.lng + dLng * f + dLat * side };
}

/** A route as a polyline of `segments + 1` points, with its length in metres. */
export function routePolyline(
  a: LatLng,
  b: LatLng,
  bend: number,
  segments = 200,
): { points: LatLng[]; lengthM: number } {
  const points: LatLng[] = [];
  let lengthM = 0;
  for (let i = 0; i <= segments; i++) {
    const p = routePoint(a, b, bend, i / segments);
    if (i > 0) lengthM += haversineM(points[i - 1], p);
    points.push(p);
  }
  return { points, lengthM };
}

/** The point `distanceM` metres along a polyline (clamped to its ends), with the heading there. */
export function alongPolyline(points: readonly LatLng[], distanceM: number): LatLng & { heading: number } {
  let left = Math.max(0, distanceM);
  for (let i = 1; i < points.length; i++) {
    const seg = haversineM(points[i - 1], points[i]);
    if (left <= seg || i === points.length - 1) {
      const f = seg === 0 ? 1 : Math.min(1, left / seg);
      const a = points[i - 1];
      const b = points[i];
      return { lat: a.lat + (b.lat - a.lat) * f, lng: a.lng + (b.lng - a.lng) * f, heading: bearingDeg(a, b) };
    }
    left -= seg;
  }
  const last = points[points.length - 1];
  return { ...last, heading: 0 };
}
