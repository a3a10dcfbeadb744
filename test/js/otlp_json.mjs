// otlp_json.mjs: compare OTLP JSON documents by meaning.
//
// The same request may be written in several valid ways (the protobuf JSON mapping): a field
// holding its default value may be present or left out, an int64 may be a string or a number,
// ids are hex in either case. canonical() maps every valid spelling to one form so that
// assert.deepStrictEqual can compare the SDK's request with what the collector wrote:
//   - int64/uint64/fixed64 fields become decimal strings (exactly, via BigInt);
//   - doubles become numbers ("NaN", "Infinity" strings included);
//   - ids become lowercase hex; the default "" id is removed;
//   - fields holding the proto3 default (0, "", false, [], {}) are removed, except members of
//     a oneof (AnyValue's *Value, a data point's asInt/asDouble) and proto3 `optional` fields
//     (histogram sum/min/max), whose presence carries meaning.
// With strict set, an int64 written as a JSON number is an error (otelcol's encoder, like
// the protobuf JSON mapping, writes int64 as strings), and so is a non-hex id.

const INT64_KEYS = new Set([
    'startTimeUnixNano', 'endTimeUnixNano', 'timeUnixNano', 'observedTimeUnixNano',
    'intValue', 'asInt', 'count', 'bucketCounts', 'zeroCount',
]);
const DOUBLE_KEYS = new Set([
    'doubleValue', 'asDouble', 'sum', 'min', 'max', 'explicitBounds', 'zeroThreshold',
]);
const ID_KEYS = new Set(['traceId', 'spanId', 'parentSpanId']);
// Members of a oneof and proto3 optional fields: present even with a default value.
const KEEP_DEFAULT = new Set([
    'stringValue', 'boolValue', 'intValue', 'doubleValue', 'bytesValue', 'arrayValue',
    'kvlistValue', 'asInt', 'asDouble', 'sum', 'min', 'max',
]);

function int64(v, where, strict) {
    if (typeof v === 'string') {
        if (!/^-?\d+$/.test(v)) {
            throw new Error(`${where}: int64 "${v}" is not a decimal integer`);
        }
        return BigInt(v).toString();
    }
    if (typeof v === 'number') {
        if (strict) {
            throw new Error(`${where}: int64 written as a JSON number (${v}), expected a string`);
        }
        if (!Number.isSafeInteger(v) && !Number.isInteger(v)) {
            throw new Error(`${where}: int64 ${v} is not an integer`);
        }
        return BigInt(v).toString();
    }
    throw new Error(`${where}: int64 has type ${typeof v}`);
}

function double(v, where) {
    if (typeof v === 'number') {
        return v;
    }
    if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') {
        return Number(v);
    }
    if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) {
        return Number(v);
    }
    throw new Error(`${where}: double has type ${typeof v} (${JSON.stringify(v)})`);
}

function isDefault(key, v) {
    if (INT64_KEYS.has(key) && v === '0') {
        return true;
    }
    if (v === null || v === undefined || v === 0 || v === '' || v === false) {
        return true;
    }
    if (Array.isArray(v)) {
        return v.length === 0;
    }
    return typeof v === 'object' && Object.keys(v).length === 0;
}

function canonValue(key, v, where, strict) {
    if (INT64_KEYS.has(key)) {
        return Array.isArray(v) ? v.map((x, i) => int64(x, `${where}[${i}]`, strict))
                                : int64(v, where, strict);
    }
    if (DOUBLE_KEYS.has(key) && !(key === 'sum' && typeof v === 'object' && v !== null)) {
        return Array.isArray(v) ? v.map((x, i) => double(x, `${where}[${i}]`)) : double(v, where);
    }
    if (ID_KEYS.has(key)) {
        if (typeof v !== 'string' || (strict && !/^([0-9a-fA-F]{2})*$/.test(v))) {
            throw new Error(`${where}: id ${JSON.stringify(v)} is not a hex string`);
        }
        return v.toLowerCase();
    }
    if (key === 'arrayValue' || key === 'kvlistValue') {
        // An empty array/kvlist is still a value of that type: keep {values: []}.
        const inner = canonical(v ?? {}, where, strict);
        return { values: inner.values ?? [] };
    }
    return canonical(v, where, strict);
}

/** The canonical form of a parsed OTLP JSON value (see the file comment). */
export function canonical(v, where = '$', strict = false) {
    if (Array.isArray(v)) {
        return v.map((x, i) => canonical(x, `${where}[${i}]`, strict));
    }
    if (v === null || typeof v !== 'object') {
        return v;
    }
    const out = {};
    for (const [k, raw] of Object.entries(v)) {
        if (raw === undefined || raw === null) {
            continue;
        }
        const c = canonValue(k, raw, `${where}.${k}`, strict);
        if (!KEEP_DEFAULT.has(k) && isDefault(k, c)) {
            continue;
        }
        out[k] = c;
    }
    return out;
}

/**
 * Parse the bytes a JSON serializer of the SDK produced, as the reference for what went on the
 * wire. With exactDigits, int64 fields written as bare JSON numbers keep their exact digits
 * (JSON.parse would round them to a double): the SDK writes 2**60 as 1152921504606847000,
 * and a collector that reads that text exactly gets 1152921504606847000, not 2**60. Without
 * it, the numbers are the SDK's JS numbers, which its protobuf encoder writes exactly.
 */
export function parseJsonBytes(bytes, { exactDigits = false } = {}) {
    let text = new TextDecoder().decode(bytes);
    if (exactDigits) {
        const keys = [...INT64_KEYS].join('|');
        text = text.replace(new RegExp(`"(${keys})":(-?\\d+)(?=[,}\\]])`, 'g'), '"$1":"$2"');
        text = text.replace(/"bucketCounts":\[([-\d,]*)\]/g,
                            (_, list) => `"bucketCounts":[${list.split(',').filter((x) => x !== '')
                                .map((x) => `"${x}"`).join(',')}]`);
    }
    return JSON.parse(text);
}

/** "[sec, nsec]" HrTime to a decimal string of nanoseconds. */
export function hrToNanos(hr) {
    return (BigInt(hr[0]) * 1000000000n + BigInt(hr[1])).toString();
}

/** A short, stable key for a set of canonical attributes. */
export function attrKey(attrs) {
    return stableStringify(canonical(attrs ?? []));
}

/** JSON with object keys sorted, so that key order does not matter. */
export function stableStringify(v) {
    if (Array.isArray(v)) {
        return `[${v.map(stableStringify).join(',')}]`;
    }
    if (v !== null && typeof v === 'object') {
        const keys = Object.keys(v).sort();
        return `{${keys.map((k) => `${JSON.stringify(k)}:${stableStringify(v[k])}`).join(',')}}`;
    }
    return JSON.stringify(v);
}
