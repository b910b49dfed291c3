/**
 * A least-recently-used map of rendered images bounded by their total bytes
 * (not their count: a 2000 px PNG weighs a hundred 64 px ones). An entry
 * larger than the whole bound is not kept.
 */
export class ByteLruCache {
  private readonly entries = new Map<string, Buffer>();
  private used = 0;

  constructor(private readonly maxBytes: number) {}

  get(key: string): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, hit);
    return hit;
  }

  set(key: string, value: Buffer): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.used -= old.length;
    }
    if (value.length > this.maxBytes) return;
    this.entries.set(key, value);
    this.used += value.length;
    for (const [k, v] of this.entries) {
      if (this.used <= this.maxBytes) break;
      this.entries.delete(k);
      this.used -= v.length;
    }
  }

  get bytes(): number {
    return this.used;
  }

  get size(): number {
    return this.entries.size;
  }
}
