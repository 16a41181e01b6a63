/**
 * The restricted value format in which return values leave the sandbox (see python/values.py).
 * Values reaching TypeScript were re-encoded by the trusted supervisor from genuine built-in
 * objects, and are compared here, outside any process that ran untrusted code.
 */
export type PyValue =
  | ['N']
  | ['B', boolean]
  | ['I', string]
  | ['F', string]
  | ['C', string, string]
  | ['S', string]
  | ['Y', string]
  | ['L' | 'T' | 'E' | 'Z', PyValue[]]
  | ['D', [PyValue, PyValue][]];

function float(text: string): number {
  if (text === 'inf') return Infinity;
  if (text === '-inf') return -Infinity;
  if (text === 'nan' || text === '-nan') return NaN;
  return Number(text);
}

function containsNaN(v: PyValue): boolean {
  switch (v[0]) {
    case 'F':
      return Number.isNaN(float(v[1]));
    case 'C':
      return Number.isNaN(float(v[1])) || Number.isNaN(float(v[2]));
    case 'L':
    case 'T':
    case 'E':
    case 'Z':
      return v[1].some(containsNaN);
    case 'D':
      return v[1].some(([k, x]) => containsNaN(k) || containsNaN(x));
    default:
      return false;
  }
}

/** A string equal for exactly the values Python's `==` deems equal (NaN-free values only). */
function key(v: PyValue): string {
  switch (v[0]) {
    case 'F':
      return `F${float(v[1]) === 0 ? 0 : float(v[1])}`;
    case 'C':
      return `C${float(v[1]) === 0 ? 0 : float(v[1])},${float(v[2]) === 0 ? 0 : float(v[2])}`;
    case 'I':
      return `I${BigInt(v[1])}`;
    case 'L':
    case 'T':
      return `${v[0]}[${v[1].map(key).join(',')}]`;
    case 'E':
    case 'Z':
      return `${v[0]}{${v[1].map(key).sort().join(',')}}`;
    case 'D':
      return `D{${v[1].map(([k, x]) => `${key(k)}:${key(x)}`).sort().join(',')}}`;
    default:
      return JSON.stringify(v);
  }
}

/**
 * Python equality restricted to identical types: `True` is not `1`, `1` is not `1.0`, a tuple is
 * not a list, a set is not a frozenset. Values containing NaN are never equal (objects rebuilt in
 * another process are never identical, so Python's identity shortcut does not apply).
 */
export function pyEquals(a: PyValue, b: PyValue): boolean {
  if (containsNaN(a) || containsNaN(b)) return false;
  return key(a) === key(b);
}

const tags = new Set(['N', 'B', 'I', 'F', 'C', 'S', 'Y', 'L', 'T', 'E', 'Z', 'D']);

/** Structural check of a value from JSON (e.g. a stored Mistake Book test); throws TypeError if malformed. */
export function asPyValue(data: unknown, depth = 0): PyValue {
  if (depth > 64 || !Array.isArray(data) || !tags.has(data[0] as string)) throw new TypeError('not a PyValue');
  const [tag, a, b] = data as [string, unknown, unknown];
  const ok =
    (tag === 'N' && data.length === 1) ||
    (tag === 'B' && typeof a === 'boolean') ||
    (tag === 'I' && typeof a === 'string' && /^-?\d+$/.test(a)) ||
    (tag === 'F' && typeof a === 'string') ||
    (tag === 'C' && typeof a === 'string' && typeof b === 'string') ||
    ((tag === 'S' || tag === 'Y') && typeof a === 'string');
  if (ok) return data as PyValue;
  if ('LTEZ'.includes(tag) && Array.isArray(a)) {
    a.forEach((x) => asPyValue(x, depth + 1));
    return data as PyValue;
  }
  if (tag === 'D' && Array.isArray(a)) {
    for (const pair of a) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError('not a PyValue');
      asPyValue(pair[0], depth + 1);
      asPyValue(pair[1], depth + 1);
    }
    return data as PyValue;
  }
  throw new TypeError('not a PyValue');
}
