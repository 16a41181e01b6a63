/**
 * JSON with object keys sorted (by code unit, as `Array.prototype.sort` does) and no
 * whitespace: equal values give equal bytes, which is what lets a retried write prove it
 * computed the same artifact. Rejects values JSON cannot represent exactly (NaN, Infinity,
 * undefined inside arrays, functions) instead of silently turning them into null.
 */
export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, path: string): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: ${path} is ${value}, which JSON cannot represent`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i ? ',' : '') + write(value[i], `${path}[${i}]`);
    return out + ']';
  }
  if (typeof value === 'object') {
    let out = '{';
    let first = true;
    for (const key of Object.keys(value).sort()) {
      const field = (value as Record<string, unknown>)[key];
      if (field === undefined) continue;
      out += (first ? '' : ',') + JSON.stringify(key) + ':' + write(field, `${path}.${key}`);
      first = false;
    }
    return out + '}';
  }
  throw new TypeError(`canonicalJson: ${path} is a ${typeof value}, which JSON cannot represent`);
}
